"""`shap_feature_sets`: per horizon, the top-K candidate features by TreeSHAP of a probe model."""

import dagster as dg
import pandas as pd
from pydantic import Field

from feature_store.features import feature_set
from orchestration.features.assets import DATASET
from orchestration.plots import figure_md
from orchestration.resources import MlflowResource
from orchestration.ticks.partitions import UNIVERSES
from pipelines.plots import plt
from pipelines.selection import shap_select, summary_figure
from pipelines.training import HORIZONS

DEFAULT_CANDIDATES = "direction_candidates_v1"  # the catalogue minus session-path and clock groups


class SelectionConfig(dg.Config):
    k: int = Field(default=71, description="Features to keep per horizon (top-K by mean |SHAP|)")
    candidates: str = Field(
        default=DEFAULT_CANDIDATES,
        description="Feature set to select from (see `tickml features list`); the default leaves out "
        "session-path and clock features, which let trees memorise a few days' paths",
    )


def _table_md(table: pd.DataFrame, rows: int = 40) -> dg.MetadataValue:
    head = table.head(rows)
    lines = ["| rank | feature | mean abs SHAP | kept |", "|---:|---|---:|:---:|"]
    lines += [
        f"| {r.rank} | {r.feature} | {r.mean_abs_shap:.4g} | {'yes' if r.kept else 'no'} |"
        for r in head.itertuples()
    ]
    if len(table) > rows:
        lines.append(f"| … | {len(table) - rows} more, all in MLflow | | |")
    return dg.MetadataValue.md("\n".join(lines))


@dg.asset(group_name="training", partitions_def=UNIVERSES, ins={"dataset": dg.AssetIn(DATASET)})
def shap_feature_sets(
    context: dg.AssetExecutionContext,
    config: SelectionConfig,
    dataset: pd.DataFrame,
    mlflow: MlflowResource,
) -> dg.Output[dict]:
    """The versioned, SHAP-pruned feature set of each horizon for a universe, chosen on training days only."""
    candidates = feature_set(config.candidates)
    chosen, metadata = {}, {"candidates": f"{candidates.key} ({len(candidates.features)} features)"}
    for horizon in HORIZONS.values():
        selection = shap_select(dataset, horizon, candidates, config.k)
        pruned, run_id = mlflow.log_selection(
            selection, lineage={"dagster_run_id": context.run_id, "universe": context.partition_key}
        )
        chosen[horizon.key] = {"feature_set": pruned.to_dict(), "selection_run_id": run_id}
        fig = summary_figure(selection)
        metadata[f"{horizon.key}_feature_set"] = (
            f"{pruned.name}@v{pruned.version} ({len(pruned.features)} kept)"
        )
        metadata[f"{horizon.key}_shap_summary"] = figure_md(fig)
        metadata[f"{horizon.key}_kept_dropped"] = _table_md(selection.table())
        plt.close("all")
        context.log.info(f"{horizon.model_name}: kept {len(pruned.features)} of {len(candidates.features)}")
    return dg.Output(chosen, metadata=metadata)
