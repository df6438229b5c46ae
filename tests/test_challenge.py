"""The challenge: Optuna studies per family inside purged folds, nested MLflow trials, either flavor served."""

from __future__ import annotations

import mlflow
import numpy as np
import pytest

from feature_store.features import direction_starter_v1
from pipelines import registry
from pipelines.challenge import ChallengeSpec, run_challenge
from pipelines.dataset import split_dataset
from pipelines.training import HORIZON_15M, matrix, train_direction_model
from pipelines.validation import WalkForward, walk_forward


@pytest.fixture
def fresh_mlflow(tmp_path, monkeypatch) -> str:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


def _folds(dataset, n=2):
    train, _, _ = split_dataset(dataset)
    return walk_forward(list(train["day"].unique()), WalkForward(folds=n))


def test_each_family_is_tuned_and_every_trial_is_a_nested_run(fresh_mlflow, model_dataset):
    folds = _folds(model_dataset)
    spec = ChallengeSpec(trials=3, timeout_s=120)

    with registry.start_challenge_run("direction-15m", HORIZON_15M) as parent:
        result = run_challenge(model_dataset, HORIZON_15M, direction_starter_v1, folds, spec)

    assert set(result.families) == {"lightgbm", "catboost"}
    for family in result.families.values():
        assert len(family.trials) == 3 and len(family.best_fold_log_loss) == len(folds)
        assert family.best_mean == min(t.mean for t in family.trials if t.state == "COMPLETE")
    assert result.winner.best_mean == min(f.best_mean for f in result.families.values())
    trials = mlflow.search_runs(filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert len(trials) == 6 and set(trials["tags.family"]) == {"lightgbm", "catboost"}
    complete = trials[trials["tags.state"] == "COMPLETE"]
    assert complete["metrics.mean_log_loss"].notna().all()
    summary = result.summary()
    assert summary["folds"] == [f.to_dict() for f in folds] and summary["rows"] == "all"


def test_a_bad_budget_is_refused():
    with pytest.raises(ValueError, match="trials must be >= 1"):
        ChallengeSpec(trials=0)
    with pytest.raises(KeyError, match="unknown model family 'xgboost'"):
        ChallengeSpec(families=("xgboost",))


@pytest.mark.parametrize("family", ["lightgbm", "catboost"])
def test_the_registered_version_of_either_family_loads_and_predicts_as_trained(
    fresh_mlflow, model_dataset, family
):
    params = {"iterations": 20} if family == "catboost" else {"num_boost_round": 20}
    trained = train_direction_model(
        model_dataset, HORIZON_15M, direction_starter_v1, family=family, params=params
    )
    version = registry.log_and_register(trained)

    loaded = registry.load_version(HORIZON_15M.model_name, version)

    held = model_dataset[model_dataset["holdout"]].iloc[:50]
    X = matrix(held, direction_starter_v1)
    assert loaded.flavor == family
    np.testing.assert_allclose(loaded.predict_proba(X), trained.predict_proba(X), rtol=1e-6, atol=1e-9)
    assert loaded.predict_proba(X).shape == (50, len(HORIZON_15M.classes))
    tags = registry.configure().get_model_version(HORIZON_15M.model_name, version).tags
    assert tags["flavor"] == family and len(tags["prior"]) > 2


def test_a_class_missing_from_training_still_gets_a_column(model_dataset):
    """Every family answers in the horizon's class order, even for a class it never saw."""
    trap = model_dataset["label_15m"].isin(["TRAP_UP", "TRAP_DOWN"]) & ~model_dataset["holdout"]
    for family in ("lightgbm", "catboost"):
        params = {"iterations": 10} if family == "catboost" else {"num_boost_round": 10}
        trained = train_direction_model(
            model_dataset[~trap].reset_index(drop=True),
            HORIZON_15M,
            direction_starter_v1,
            family=family,
            params=params,
        )
        proba = trained.predict_proba(matrix(model_dataset.iloc[:5], direction_starter_v1))

        assert proba.shape == (5, 5) and np.allclose(proba.sum(axis=1), 1)
