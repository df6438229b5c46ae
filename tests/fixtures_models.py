"""Fixtures with real MLflow: a temporary tracking store holding both direction models with champions."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator

import pandas as pd
import pytest

from feature_store.features import direction_starter_v1
from feature_store.instruments import get_instrument
from pipelines import registry
from pipelines.dataset import simulated_dataset
from pipelines.training import HORIZON_15M, HORIZON_30M, train_direction_model

SMALL_PARAMS = {"num_boost_round": 30, "num_leaves": 15}
FIRST_DAY = dt.date(2026, 10, 19)


def small_dataset(
    days: int = 8, *, seed: int = 11, signal: float = 2.0, stride: int = 10, holdout_days: int = 4
) -> pd.DataFrame:
    """A dataset over `days` simulated NIFTY sessions with a strong planted signal, so that a small
    model passes the promotion gate against the training prior."""
    return simulated_dataset(
        get_instrument("NIFTY"),
        FIRST_DAY,
        days,
        seed=seed,
        signal=signal,
        stride=stride,
        holdout_days=holdout_days,
    )


@pytest.fixture(scope="session")
def model_dataset() -> pd.DataFrame:
    return small_dataset()


@pytest.fixture(scope="session")
def champions(tmp_path_factory: pytest.TempPathFactory, model_dataset: pd.DataFrame) -> Iterator[str]:
    """Tracking URI of a fresh MLflow store where both models have a `champion` version."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlruns') / 'mlflow.db'}"
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    try:
        for horizon in (HORIZON_15M, HORIZON_30M):
            trained = train_direction_model(model_dataset, horizon, direction_starter_v1, params=SMALL_PARAMS)
            version = registry.log_and_register(trained, lineage={"test": "champions fixture"})
            held = model_dataset[model_dataset["holdout"]]
            assert registry.gate_and_promote(horizon.model_name, version, held).promoted
        yield uri
    finally:
        if previous is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous
