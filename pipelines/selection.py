"""SHAP pruning: a probe model per horizon, TreeSHAP values, and the top-K features as a feature set."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from feature_store.features import FeatureSet
from pipelines.dataset import split_by_days, split_dataset
from pipelines.families import LightGBMFamily
from pipelines.plots import plt
from pipelines.training import Horizon, matrix


@dataclass(frozen=True)
class Selection:
    """What the probe saw: mean |SHAP| per candidate (largest first) and the kept feature names."""

    horizon: Horizon
    candidates: FeatureSet
    importance: pd.Series  # mean |SHAP| over rows and classes, indexed by feature, descending
    kept: tuple[str, ...]
    shap_values: np.ndarray  # (rows, classes, features) on the probe's out-of-sample day
    sample: pd.DataFrame  # the rows those values explain (candidate columns)

    @property
    def dropped(self) -> tuple[str, ...]:
        return tuple(f for f in self.importance.index if f not in self.kept)

    def table(self) -> pd.DataFrame:
        """Every candidate with its rank, mean |SHAP| and whether it was kept."""
        return pd.DataFrame(
            {
                "feature": self.importance.index,
                "rank": np.arange(1, len(self.importance) + 1),
                "mean_abs_shap": self.importance.to_numpy(),
                "kept": [f in self.kept for f in self.importance.index],
            }
        )


def shap_select(
    dataset: pd.DataFrame,
    horizon: Horizon,
    candidates: FeatureSet,
    k: int,
    *,
    params: dict | None = None,
    max_rows: int = 20_000,
) -> Selection:
    """Rank `candidates` by mean |TreeSHAP| of a probe LightGBM and keep the top `k`.

    The probe trains on the training days minus the last one, and is explained on that last day: out of
    sample, so a feature that only lets trees memorise the training days' paths earns no credit for it.
    The held-out days that promotion compares on are never touched. Features with zero attribution are
    dropped even when fewer than `k` remain.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    train, _, _ = split_dataset(dataset)
    fit, explain, _ = split_by_days(train, 1)
    probe = LightGBMFamily()
    booster = probe.fit(
        matrix(fit, candidates),
        horizon.codes(fit[horizon.label_column]),
        len(horizon.classes),
        {**probe.defaults(), **(params or {})},
    )
    sample = (
        explain.sample(min(max_rows, len(explain)), random_state=7) if len(explain) > max_rows else explain
    )
    features = len(candidates.features)
    # LightGBM's TreeSHAP: per class, one column per feature plus the expected value (dropped here).
    contrib = booster.predict(matrix(sample, candidates), pred_contrib=True)
    values = contrib.reshape(len(sample), len(horizon.classes), features + 1)[:, :, :features]
    importance = pd.Series(np.abs(values).mean(axis=(0, 1)), index=list(candidates.features))
    importance = importance.sort_values(ascending=False, kind="stable")
    kept = tuple(importance.index[: min(k, int((importance > 0).sum()))])
    return Selection(horizon, candidates, importance, kept, values, sample[list(candidates.features)])


def pruned_feature_set(selection: Selection, version: int) -> FeatureSet:
    """The kept features, in catalogue order, as `shap_<horizon>_k<K>` version `version`."""
    order = [f for f in selection.candidates.features if f in selection.kept]
    return FeatureSet(f"shap_{selection.horizon.key}_k{len(order)}", version, tuple(order))


def summary_figure(selection: Selection, max_display: int = 30) -> plt.Figure:
    """shap's summary bar plot: mean |SHAP| per feature, stacked by class, top `max_display`."""
    import shap

    per_class = [selection.shap_values[:, c, :] for c in range(selection.shap_values.shape[1])]
    shap.summary_plot(
        per_class,
        selection.sample,
        plot_type="bar",
        class_names=list(selection.horizon.classes),
        max_display=max_display,
        show=False,
    )
    fig = plt.gcf()
    fig.suptitle(f"{selection.horizon.model_name}: mean |SHAP| on an out-of-sample day (probe)", fontsize=10)
    return fig
