"""Combining the two horizons' probabilities into signal, confidence and agreement."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.signals import combine

#                 DOWN TRAP_DOWN FLAT TRAP_UP UP
P15_UP = np.array([0.05, 0.10, 0.15, 0.05, 0.65])
P15_DOWN = np.array([0.60, 0.05, 0.20, 0.10, 0.05])
P15_FLAT = np.array([0.10, 0.05, 0.70, 0.05, 0.10])
#                 DOWN FLAT  UP
P30_UP = np.array([0.10, 0.20, 0.70])
P30_DOWN = np.array([0.80, 0.15, 0.05])
P30_FLAT = np.array([0.20, 0.60, 0.20])


def test_both_horizons_up_give_up_with_the_mean_bullish_share_of_the_directional_mass() -> None:
    signal, confidence, agree = combine(P15_UP, P30_UP)

    assert (signal, agree) == ("UP", True)
    assert confidence == pytest.approx((0.75 / (0.75 + 0.10) + 0.70 / (0.70 + 0.10)) / 2)


def test_both_horizons_down_give_down_with_the_mean_bearish_share() -> None:
    signal, confidence, agree = combine(P15_DOWN, P30_DOWN)

    assert (signal, agree) == ("DOWN", True)
    assert confidence == pytest.approx((0.70 / (0.70 + 0.10) + 0.80 / (0.80 + 0.05)) / 2)


def test_calibrated_horizons_mostly_flat_still_lean_the_way_a_move_would_go() -> None:
    p15 = np.array([0.08, 0.04, 0.70, 0.04, 0.14])  # bullish 0.18 vs bearish 0.12
    p30 = np.array([0.10, 0.75, 0.15])  # FLAT is the largest class on both

    signal, confidence, agree = combine(p15, p30)

    assert (signal, agree) == ("UP", True)
    assert confidence == pytest.approx((0.18 / 0.30 + 0.15 / 0.25) / 2)


def test_failed_breakdown_counts_as_bullish() -> None:
    p15_trap_down = np.array([0.10, 0.45, 0.25, 0.05, 0.15])

    signal, _, agree = combine(p15_trap_down, P30_UP)

    assert (signal, agree) == ("UP", True)


def test_failed_breakout_counts_as_bearish() -> None:
    p15_trap_up = np.array([0.15, 0.05, 0.25, 0.45, 0.10])

    signal, _, _ = combine(p15_trap_up, P30_DOWN)

    assert signal == "DOWN"


def test_opposite_horizons_disagree_and_give_flat_with_flat_mass() -> None:
    signal, confidence, agree = combine(P15_UP, P30_DOWN)

    assert (signal, agree) == ("FLAT", False)
    assert confidence == pytest.approx((0.15 + 0.15) / 2)


def test_direction_against_flat_horizon_disagrees() -> None:
    signal, _, agree = combine(P15_UP, P30_FLAT)

    assert (signal, agree) == ("FLAT", False)


def test_both_flat_agree_on_flat() -> None:
    signal, confidence, agree = combine(P15_FLAT, P30_FLAT)

    assert (signal, agree) == ("FLAT", True)
    assert confidence == pytest.approx((0.70 + 0.60) / 2)


def test_tied_masses_resolve_to_flat() -> None:
    p15_tie = np.array([0.25, 0.10, 0.30, 0.10, 0.25])  # bullish 0.35 == bearish 0.35

    signal, _, _ = combine(p15_tie, P30_UP)

    assert signal == "FLAT"


def test_many_rows_match_row_by_row() -> None:
    rng = np.random.default_rng(3)
    p15 = rng.dirichlet(np.ones(5), size=200)
    p30 = rng.dirichlet(np.ones(3), size=200)

    signals, confidences, agrees = combine(p15, p30)

    expected = [combine(a, b) for a, b in zip(p15, p30, strict=True)]
    assert list(signals) == [e[0] for e in expected]
    np.testing.assert_allclose(confidences, [e[1] for e in expected])
    assert list(agrees) == [e[2] for e in expected]


@pytest.mark.parametrize(
    "p15, p30",
    [
        (np.ones(3) / 3, P30_UP),  # 15m needs 5 classes
        (P15_UP, np.ones(5) / 5),  # 30m needs 3 classes
        (np.ones((2, 5)) / 5, np.ones((3, 3)) / 3),  # row counts differ
        (P15_UP, np.ones((1, 3)) / 3),  # 1-D against 2-D
    ],
)
def test_wrong_shapes_are_rejected(p15: np.ndarray, p30: np.ndarray) -> None:
    with pytest.raises(ValueError, match="p15"):
        combine(p15, p30)
