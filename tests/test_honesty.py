"""Honesty on simulated markets: nothing found in a random walk, most of a planted signal recovered."""

from __future__ import annotations

from feature_store.instruments import get_instrument
from pipelines.challenge import ChallengeSpec
from pipelines.honesty import honesty, latent_dataset
from pipelines.simulate import DEMO_SIGNAL
from tests.fixtures_models import FIRST_DAY

NIFTY = get_instrument("NIFTY")
SMALL = ChallengeSpec(trials=2, timeout_s=60)


def test_the_latent_state_is_returned_for_evaluation_and_never_a_feature():
    dataset, latent = latent_dataset(NIFTY, FIRST_DAY, 2, seed=3, signal=1.0, stride=50, holdout_days=1)

    assert len(latent) == len(dataset) and latent["imbalance"].notna().all()
    assert "imbalance" not in dataset.columns and latent["imbalance"].std() > 0.3


def test_on_a_random_walk_nothing_is_found_and_the_gate_refuses():
    rows = honesty(NIFTY, FIRST_DAY, signal=0.0, days=8, holdout_days=3, folds=2, spec=SMALL)

    for row in rows:
        assert row.balanced_accuracy <= row.chance + 0.01, row
        assert not row.gate_passed, row


def test_at_the_demo_signal_the_model_recovers_most_of_the_oracle_gain():
    rows = honesty(NIFTY, FIRST_DAY, signal=DEMO_SIGNAL, days=8, holdout_days=3, folds=2, spec=SMALL)

    for row in rows:
        assert row.oracle_log_loss < row.prior_log_loss, row  # there is something to find
        assert row.recovery >= 0.6, row
