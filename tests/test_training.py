"""The dataset split and what the held-out scores are computed on."""

from __future__ import annotations

from feature_store.features import direction_starter_v1
from pipelines.dataset import split_dataset
from pipelines.training import HORIZON_30M, train_direction_model
from tests.fixtures_models import SMALL_PARAMS


def test_training_rows_are_consensus_rows_of_training_days_only(model_dataset):
    train, held, held_days = split_dataset(model_dataset)

    assert train["consensus"].all() and not train["day"].isin(held_days).any()
    assert set(held["day"]) == set(held_days)


def test_held_out_days_keep_every_labelled_tick_not_just_consensus_rows(model_dataset):
    _, held, _ = split_dataset(model_dataset)

    assert (~held["consensus"]).any() and held["consensus"].any()
    assert held["label_15m"].notna().all() and held["label_30m"].notna().all()


def test_held_out_scores_cover_every_labelled_tick_with_the_consensus_reading_beside_them(model_dataset):
    trained = train_direction_model(model_dataset, HORIZON_30M, direction_starter_v1, params=SMALL_PARAMS)
    _, held, _ = split_dataset(model_dataset)

    assert trained.metrics["rows"] == len(held)
    assert trained.metrics["consensus_rows"] == held["consensus"].sum() < len(held)
    assert trained.confusion.sum() == len(held)
