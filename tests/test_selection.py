"""SHAP pruning: top-K by mean |TreeSHAP| of a probe, held-out days untouched, versioned feature sets."""

from __future__ import annotations

import numpy as np
import pytest

from feature_store.features import FeatureSet, direction_starter_v1
from pipelines import registry
from pipelines.selection import pruned_feature_set, shap_select
from pipelines.training import HORIZON_15M, HORIZON_30M

SMALL = {"num_boost_round": 30, "num_leaves": 15}


def test_keeps_the_top_k_by_mean_abs_shap(model_dataset):
    selection = shap_select(model_dataset, HORIZON_30M, direction_starter_v1, 5, params=SMALL)

    assert len(selection.kept) == 5
    assert list(selection.kept) == list(selection.importance.index[:5])
    assert selection.importance.is_monotonic_decreasing
    assert set(selection.kept) | set(selection.dropped) == set(direction_starter_v1.features)


def test_ranks_the_order_flow_the_simulator_plants_above_noise(model_dataset):
    selection = shap_select(model_dataset, HORIZON_30M, direction_starter_v1, 5, params=SMALL)

    rank = {f: i for i, f in enumerate(selection.importance.index)}
    assert min(rank["l1_imbalance_mean_30"], rank["flow_imbalance_180"]) < rank["spread_ticks"]


def test_held_out_rows_never_reach_the_probe(model_dataset):
    scrambled = model_dataset.copy()
    held = scrambled["holdout"].to_numpy()
    rng = np.random.default_rng(0)
    scrambled.loc[held, "label_15m"] = rng.permutation(scrambled.loc[held, "label_15m"].to_numpy())
    scrambled.loc[held, list(direction_starter_v1.features)] = 0.0

    a = shap_select(model_dataset, HORIZON_15M, direction_starter_v1, 6, params=SMALL)
    b = shap_select(scrambled, HORIZON_15M, direction_starter_v1, 6, params=SMALL)

    assert a.kept == b.kept
    assert np.array_equal(a.importance.to_numpy(), b.importance.to_numpy())


def test_pruned_set_keeps_catalogue_order_and_names_its_horizon(model_dataset):
    selection = shap_select(model_dataset, HORIZON_15M, direction_starter_v1, 4, params=SMALL)

    pruned = pruned_feature_set(selection, 3)

    assert pruned.name == "shap_15m_k4" and pruned.version == 3
    assert list(pruned.features) == [f for f in direction_starter_v1.features if f in selection.kept]


def test_k_must_be_positive(model_dataset):
    with pytest.raises(ValueError, match="k must be >= 1"):
        shap_select(model_dataset, HORIZON_15M, direction_starter_v1, 0)


def test_logged_selection_is_versioned_and_reused_when_identical(model_dataset, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    four = shap_select(model_dataset, HORIZON_30M, direction_starter_v1, 4, params=SMALL)
    # without the best feature, the top four differ but the set keeps its name (shap_30m_k4)
    fewer = FeatureSet("no_best", 1, tuple(f for f in direction_starter_v1.features if f != four.kept[0]))
    other = shap_select(model_dataset, HORIZON_30M, fewer, 4, params=SMALL)

    first, run_id = registry.log_selection(four)
    again, _ = registry.log_selection(four)
    changed, _ = registry.log_selection(other)

    assert (first.version, again.version, changed.version) == (1, 1, 2)
    assert first.name == changed.name == "shap_30m_k4" and first.features != changed.features
    artifacts = {a.path for a in registry.configure().list_artifacts(run_id)}
    assert {"shap_summary.png", "shap_kept_dropped.json", "feature_set.json"} <= artifacts
