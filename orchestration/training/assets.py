"""One model asset and one champion asset per horizon and universe, built by the same factory."""

import dagster as dg
import pandas as pd
from pydantic import Field

from feature_store.features import FeatureSet, feature_set
from feature_store.instruments import get_universe
from orchestration.features.assets import DATASET
from orchestration.plots import figure_md
from orchestration.resources import MlflowResource
from orchestration.ticks.partitions import UNIVERSES
from pipelines.plots import confusion_figure
from pipelines.training import HORIZON_15M, HORIZON_30M, Horizon, train_direction_model

SHAP = "shap"


class ModelConfig(dg.Config):
    feature_set: str = Field(
        default=SHAP,
        description="'shap' trains on this horizon's SHAP-pruned set from shap_feature_sets; "
        "or name a feature set (see `tickml features list`)",
    )
    num_boost_round: int = Field(default=200, description="LightGBM boosting rounds")
    learning_rate: float = Field(default=0.05, description="LightGBM learning rate")
    num_leaves: int = Field(default=31, description="LightGBM leaves per tree")


def _partitions_tag(dataset: pd.DataFrame) -> str:
    """'SYMBOL first..last (n days)' per symbol of the dataset: the symbol-day partitions it came from."""
    spans = []
    for symbol, days in dataset.groupby("symbol")["day"]:
        unique = sorted(days.unique())
        spans.append(f"{symbol} {unique[0]}..{unique[-1]} ({len(unique)} days)")
    return "; ".join(spans)


def model_assets(horizon: Horizon) -> list[dg.AssetsDefinition]:
    """`direction_<h>_model` (train + register a version) and `direction_<h>_champion` (promotion)."""
    prefix = horizon.model_name.replace("-", "_")

    @dg.asset(
        name=f"{prefix}_model",
        partitions_def=UNIVERSES,
        group_name="training",
        ins={"training_dataset": dg.AssetIn(DATASET)},
    )
    def model(
        context: dg.AssetExecutionContext,
        config: ModelConfig,
        training_dataset: pd.DataFrame,
        shap_feature_sets: dict,
        mlflow: MlflowResource,
    ) -> dg.Output[dict]:
        """A newly registered version of the universe's model, trained on its dataset's training days."""
        universe = get_universe(context.partition_key)
        selected = shap_feature_sets[horizon.key]
        use_shap = config.feature_set == SHAP
        features = (
            FeatureSet.from_dict(selected["feature_set"]) if use_shap else feature_set(config.feature_set)
        )
        trained = train_direction_model(
            training_dataset,
            horizon,
            features,
            params={
                "num_boost_round": config.num_boost_round,
                "learning_rate": config.learning_rate,
                "num_leaves": config.num_leaves,
            },
        )
        version = mlflow.register(
            trained,
            universe,
            symbols=sorted(training_dataset["symbol"].unique()),
            selection_run_id=selected["selection_run_id"] if use_shap else None,
            lineage={
                "dagster_run_id": context.run_id,
                "dataset": f"{DATASET}[{universe.name}]",
                "partitions": _partitions_tag(training_dataset),
                "days": ",".join(str(d) for d in trained.train_days + trained.holdout_days),
            },
        )
        name = universe.model_name(horizon.model_name)
        context.log.info(f"{name} v{version}: {trained.metrics}")
        return dg.Output(
            {"name": name, "version": version, "holdout_days": [d.isoformat() for d in trained.holdout_days]},
            metadata={
                "model": name,
                "version": version,
                "universe": universe.name,
                "symbols": sorted(training_dataset["symbol"].unique()),
                "feature_set": f"{trained.feature_set.name}@v{trained.feature_set.version}",
                **{f"holdout_{k}": v for k, v in trained.metrics.items()},
                "holdout_days": [d.isoformat() for d in trained.holdout_days],
                "train_class_balance": trained.train_balance,
                "confusion_matrix": figure_md(
                    confusion_figure(trained.confusion, horizon.classes, f"{name} v{version}")
                ),
            },
        )

    @dg.asset(
        name=f"{prefix}_champion",
        partitions_def=UNIVERSES,
        group_name="training",
        ins={"candidate": dg.AssetIn(f"{prefix}_model"), "training_dataset": dg.AssetIn(DATASET)},
    )
    def champion(candidate: dict, training_dataset: pd.DataFrame, mlflow: MlflowResource) -> dg.Output[dict]:
        """The universe's version behind the `champion` alias after comparing the candidate on the same
        held-out days."""
        holdout = training_dataset[training_dataset["holdout"]]
        name = candidate["name"]
        decision = mlflow.promote(name, candidate["version"], holdout)
        champion_version = mlflow.champion_version(name)
        return dg.Output(
            {"champion": champion_version, "promoted": decision.promoted, "reason": decision.reason},
            metadata={
                "model": name,
                "champion_version": champion_version,
                "candidate_version": candidate["version"],
                "promoted": decision.promoted,
                "reason": decision.reason,
                "candidate_log_loss": decision.challenger_log_loss,
                "previous_champion_log_loss": decision.champion_log_loss,
            },
        )

    return [model, champion]


MODEL_ASSETS = model_assets(HORIZON_15M) + model_assets(HORIZON_30M)
