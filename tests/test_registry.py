"""Registration and champion promotion against a real MLflow tracking store and registry."""

from __future__ import annotations

import os

import pytest

from feature_store.features import direction_starter_v1
from pipelines import registry
from pipelines.dataset import mark_holdout
from pipelines.training import HORIZON_15M, train_direction_model
from tests.fixtures_models import SMALL_PARAMS


@pytest.fixture
def fresh_mlflow(tmp_path, monkeypatch) -> str:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


# Deep trees on single rows, a huge learning rate and no early stopping: an overconfident, overfit model
# whose held-out log loss is far worse than a regularised one's.
OVERFIT = {
    "num_boost_round": 60,
    "early_stopping_rounds": 60,
    "learning_rate": 0.8,
    "num_leaves": 255,
    "min_data_in_leaf": 1,
    "lambda_l2": 0.0,
    "feature_fraction": 1.0,
    "bagging_fraction": 1.0,
}


def _register(dataset, **params):
    trained = train_direction_model(
        dataset, HORIZON_15M, direction_starter_v1, params={**SMALL_PARAMS, **params}
    )
    version = registry.log_and_register(trained, lineage={"dagster_run_id": "test-run"})
    return trained, version, dataset[dataset["holdout"]]


def test_first_version_becomes_champion(fresh_mlflow, model_dataset):
    _, version, held = _register(model_dataset)

    decision = registry.promote_if_better(HORIZON_15M.model_name, version, held)

    assert decision.promoted and decision.reason.startswith("first version")
    assert registry.champion_version(HORIZON_15M.model_name) == version


def test_worse_challenger_is_rejected_and_reason_recorded(fresh_mlflow, model_dataset):
    _, good, held = _register(model_dataset)
    registry.promote_if_better(HORIZON_15M.model_name, good, held)
    _, weak, _ = _register(model_dataset, **OVERFIT)

    decision = registry.promote_if_better(HORIZON_15M.model_name, weak, held)

    assert not decision.promoted
    assert decision.champion == good and decision.champion_log_loss < decision.challenger_log_loss
    assert registry.champion_version(HORIZON_15M.model_name) == good
    tags = registry.configure().get_model_version(HORIZON_15M.model_name, weak).tags
    assert tags["promotion.decision"] == "rejected" and "does not beat" in tags["promotion.reason"]


def test_better_challenger_takes_the_alias(fresh_mlflow, model_dataset):
    _, weak, held = _register(model_dataset, **OVERFIT)
    registry.promote_if_better(HORIZON_15M.model_name, weak, held)
    _, good, _ = _register(model_dataset)

    decision = registry.promote_if_better(HORIZON_15M.model_name, good, held)

    assert decision.promoted and decision.champion == weak
    assert registry.champion_version(HORIZON_15M.model_name) == good


def test_version_carries_feature_set_and_lineage(fresh_mlflow, model_dataset):
    trained, version, _ = _register(model_dataset)

    loaded = registry.load_version(HORIZON_15M.model_name, version)
    tags = registry.configure().get_model_version(HORIZON_15M.model_name, version).tags

    assert loaded.feature_set == direction_starter_v1
    assert loaded.classes == HORIZON_15M.classes
    assert tags["lineage.dagster_run_id"] == "test-run"
    assert tags["feature_set"] == direction_starter_v1.name
    proba = loaded.predict_proba(model_dataset[list(direction_starter_v1.features)].to_numpy()[:7])
    assert proba.shape == (7, 5) and abs(proba.sum(axis=1) - 1).max() < 1e-9


def test_load_champion_without_alias_says_how_to_get_one(fresh_mlflow):
    with pytest.raises(LookupError, match="no 'champion' alias"):
        registry.load_champion(HORIZON_15M.model_name)


def test_default_tracking_uri_is_sqlite_under_mlruns(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)

    assert registry.tracking_uri() == f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    assert os.environ.get("MLFLOW_TRACKING_URI") is None


def test_promotion_says_when_the_champion_trained_on_the_held_out_days(fresh_mlflow, model_dataset):
    _, first, held = _register(model_dataset)
    registry.promote_if_better(HORIZON_15M.model_name, first, held)
    # the same days, split one day later: the champion's held-out day is now the challenger's too,
    # and the challenger's held-out day was one the champion trained on
    shifted = mark_holdout(model_dataset.drop(columns="holdout"), 2)
    _, second, shifted_held = _register(shifted)

    decision = registry.promote_if_better(HORIZON_15M.model_name, second, shifted_held)

    assert "trained on 1 of these 2 days" in decision.reason and "in-sample" in decision.reason
