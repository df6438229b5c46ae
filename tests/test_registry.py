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


# Deep trees on single rows and a huge learning rate: an overconfident, overfit model
# whose held-out log loss is far worse than a regularised one's.
OVERFIT = {
    "num_boost_round": 60,
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


def test_first_version_that_beats_the_prior_becomes_champion_with_its_numbers(fresh_mlflow, model_dataset):
    _, version, held = _register(model_dataset)

    decision = registry.gate_and_promote(HORIZON_15M.model_name, version, held)

    assert decision.promoted and decision.reason.startswith("passed: vs prior")
    assert decision.lower_bound > 0 and decision.candidate_log_loss < decision.prior_log_loss
    assert registry.champion_version(HORIZON_15M.model_name) == version
    tags = registry.configure().get_model_version(HORIZON_15M.model_name, version).tags
    assert tags["gate.decision"] == "passed"
    assert float(tags["gate.candidate_log_loss"]) < float(tags["gate.prior_log_loss"])
    assert float(tags["gate.lower_bound"]) == pytest.approx(decision.lower_bound, abs=1e-6)
    history = registry.alias_history(HORIZON_15M.model_name)
    assert [(h["version"], h["replaced"]) for h in history] == [(version, None)]


def test_a_first_version_that_does_not_beat_the_prior_is_refused_and_nothing_is_served(
    fresh_mlflow, model_dataset
):
    _, weak, held = _register(model_dataset, **OVERFIT)

    decision = registry.gate_and_promote(HORIZON_15M.model_name, weak, held)

    assert not decision.promoted and decision.reason.startswith("refused: vs prior")
    assert registry.champion_version(HORIZON_15M.model_name) is None
    assert registry.alias_history(HORIZON_15M.model_name) == []
    with pytest.raises(registry.NoChampion, match="no version has passed the promotion gate"):
        registry.load_champion(HORIZON_15M.model_name)


def test_worse_candidate_is_refused_against_the_champion_and_reason_recorded(fresh_mlflow, model_dataset):
    _, good, held = _register(model_dataset)
    registry.gate_and_promote(HORIZON_15M.model_name, good, held)
    _, weak, _ = _register(model_dataset, **OVERFIT)

    decision = registry.gate_and_promote(HORIZON_15M.model_name, weak, held)

    assert not decision.promoted
    assert decision.champion == good and decision.champion_log_loss < decision.candidate_log_loss
    assert registry.champion_version(HORIZON_15M.model_name) == good
    tags = registry.configure().get_model_version(HORIZON_15M.model_name, weak).tags
    assert tags["gate.decision"] == "refused" and f"vs champion v{good}" in tags["gate.reason"]
    assert float(tags["gate.lower_bound_vs_champion"]) < 0


def test_an_equal_candidate_cannot_take_the_alias(fresh_mlflow, model_dataset):
    _, first, held = _register(model_dataset)
    registry.gate_and_promote(HORIZON_15M.model_name, first, held)
    _, same, _ = _register(model_dataset)  # the same data and seed: the same model

    decision = registry.gate_and_promote(HORIZON_15M.model_name, same, held)

    assert not decision.promoted and registry.champion_version(HORIZON_15M.model_name) == first


def test_better_candidate_takes_the_alias_and_the_history_says_why(fresh_mlflow, model_dataset):
    _, weak, held = _register(model_dataset, num_boost_round=3, learning_rate=0.05, num_leaves=4)
    assert registry.gate_and_promote(HORIZON_15M.model_name, weak, held).promoted
    _, good, _ = _register(model_dataset)

    decision = registry.gate_and_promote(HORIZON_15M.model_name, good, held)

    assert decision.promoted and decision.champion == weak
    assert registry.champion_version(HORIZON_15M.model_name) == good
    history = registry.alias_history(HORIZON_15M.model_name)
    assert [(h["version"], h["replaced"]) for h in history] == [(weak, None), (good, weak)]
    assert f"vs champion v{weak}" in history[-1]["reason"]


def test_promotion_report_is_attached_to_the_version(fresh_mlflow, model_dataset):
    _, version, held = _register(model_dataset)

    decision = registry.gate_and_promote(HORIZON_15M.model_name, version, held)

    run_id = registry.configure().get_model_version(HORIZON_15M.model_name, version).run_id
    files = {a.path for a in registry.configure().list_artifacts(run_id, "promotion")}
    assert {
        "promotion/report.md",
        "promotion/reliability.png",
        "promotion/confusion_matrix.png",
        "promotion/block_differences.png",
    } <= files
    assert "| prior |" in decision.report and "reliability.png" in decision.report
    assert set(decision.figures) == {"reliability.png", "confusion_matrix.png", "block_differences.png"}


def test_a_champion_that_never_passed_the_gate_is_not_served(fresh_mlflow, model_dataset):
    _, version, _ = _register(model_dataset)
    registry.configure().set_registered_model_alias(HORIZON_15M.model_name, registry.CHAMPION, version)

    with pytest.raises(registry.NoChampion, match="never passed the promotion gate"):
        registry.load_champion(HORIZON_15M.model_name)


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
    registry.configure(fresh_mlflow)  # a registry that exists, with no version yet

    with pytest.raises(LookupError, match="has no 'champion'.*`tickml train`"):
        registry.load_champion(HORIZON_15M.model_name)


def test_a_missing_registry_is_read_without_creating_it(fresh_mlflow, tmp_path):
    with pytest.raises(LookupError, match="no MLflow registry at .*`tickml train`"):
        registry.load_champion(HORIZON_15M.model_name)

    assert not (tmp_path / "mlflow.db").exists()


def test_default_tracking_uri_is_sqlite_under_mlruns(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)

    assert registry.tracking_uri() == f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    assert os.environ.get("MLFLOW_TRACKING_URI") is None


def test_promotion_says_when_the_champion_trained_on_the_held_out_days(fresh_mlflow, model_dataset):
    _, first, held = _register(model_dataset)
    registry.gate_and_promote(HORIZON_15M.model_name, first, held)
    # the same days, split one day later: the champion's held-out day is now the challenger's too,
    # and the challenger's held-out day was one the champion trained on
    shifted = mark_holdout(model_dataset.drop(columns="holdout"), 6)
    _, second, shifted_held = _register(shifted)

    decision = registry.gate_and_promote(HORIZON_15M.model_name, second, shifted_held)

    assert "trained on 2 of these held-out days" in decision.reason and "in-sample" in decision.reason
