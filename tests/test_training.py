"""The dataset split, the training rows, and what the held-out scores are computed on."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from feature_store.features import direction_starter_v1
from pipelines.dataset import split_dataset
from pipelines.training import (
    HORIZON_15M,
    HORIZON_30M,
    brier,
    class_prior,
    train_direction_model,
    training_rows,
)
from tests.fixtures_models import SMALL_PARAMS


def test_training_days_keep_every_labelled_tick_like_live_scoring(model_dataset):
    train, held, held_days = split_dataset(model_dataset)

    assert (~train["consensus"]).any() and train["consensus"].any()
    assert not train["day"].isin(held_days).any() and set(held["day"]) == set(held_days)
    assert held["label_15m"].notna().all() and held["label_30m"].notna().all()


@pytest.mark.parametrize(
    ("rows", "weighted"), [("all", False), ("consensus", False), ("consensus_weight", True)]
)
def test_the_consensus_filter_is_a_training_option(model_dataset, rows, weighted):
    train, _, _ = split_dataset(model_dataset)

    fit_on, weight = training_rows(train, rows)

    assert len(fit_on) == (train["consensus"].sum() if rows == "consensus" else len(train))
    assert (weight is not None) is weighted
    if weighted:
        assert set(np.unique(weight)) == {1.0, 3.0}


def test_held_out_scores_cover_every_labelled_tick_whatever_the_training_rows(model_dataset):
    _, held, _ = split_dataset(model_dataset)
    for rows in ("all", "consensus"):
        trained = train_direction_model(
            model_dataset, HORIZON_30M, direction_starter_v1, params=SMALL_PARAMS, rows=rows
        )

        assert trained.metrics["rows"] == len(held) and trained.confusion.sum() == len(held)
        assert trained.metrics["consensus_rows"] == held["consensus"].sum() < len(held)
        assert trained.params["rows"] == rows


def test_training_on_every_tick_is_calibrated_to_the_live_mix_and_consensus_training_is_not(model_dataset):
    """The issue's cause, as a test: consensus rows hold far fewer FLAT labels than live ticks, so a
    model trained on them over-predicts moves; trained on every tick its mean forecast matches the mix."""
    _, held, _ = split_dataset(model_dataset)
    y = HORIZON_30M.codes(held["label_30m"])
    flat = HORIZON_30M.classes.index("FLAT")
    live_mix = np.bincount(y, minlength=3) / len(y)
    means = {}
    for rows in ("all", "consensus"):
        trained = train_direction_model(
            model_dataset, HORIZON_30M, direction_starter_v1, params=SMALL_PARAMS, rows=rows
        )
        means[rows] = trained.predict_proba(held[list(direction_starter_v1.features)].to_numpy()).mean(axis=0)

    assert abs(means["all"][flat] - live_mix[flat]) < abs(means["consensus"][flat] - live_mix[flat])


def test_brier_and_prior():
    y = np.array([0, 1, 1, 2])
    perfect = np.eye(3)[y]

    assert brier(perfect, y) == 0.0 and brier(np.full((4, 3), 1 / 3), y) == pytest.approx(2 / 3)
    prior = class_prior(pd.Series(["UP", "UP", "FLAT"]), HORIZON_15M)
    assert prior.sum() == pytest.approx(1) and prior[HORIZON_15M.classes.index("UP")] == pytest.approx(3 / 8)
