"""The promotion gate's statistics: blocks of held-out time and the lower bound of the improvement."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines import gate


def _ts(n: int, every_s: float = 10.0) -> pd.Series:
    return pd.Series(
        pd.Timestamp("2026-03-02 04:00", tz="UTC") + pd.to_timedelta(np.arange(n) * every_s, "s")
    )


def test_blocks_are_consecutive_spans_of_the_horizon():
    ts = _ts(720)  # two hours, a row every 10 s

    blocks = gate.time_blocks(ts, pd.Timedelta(minutes=30))

    assert blocks.max() == 3 and np.bincount(blocks).tolist() == [180] * 4
    assert (np.diff(blocks) >= 0).all()


def test_an_identical_candidate_has_no_improvement_and_is_refused():
    losses = np.random.default_rng(1).exponential(1.0, 3000)
    blocks = gate.time_blocks(_ts(3000))

    comparison = gate.compare(losses, losses.copy(), blocks, baseline="prior")

    assert comparison.improvement == 0 and comparison.lower_bound == 0 and not comparison.passed


def test_a_clearly_better_candidate_passes_and_a_noisy_tie_does_not():
    rng = np.random.default_rng(2)
    baseline = rng.exponential(1.0, 6000)
    blocks = gate.time_blocks(_ts(6000))
    better = gate.compare(baseline - 0.05, baseline, blocks, baseline="prior")
    # the same mean, plus block-level noise: some blocks better, some worse
    noise = rng.normal(0, 0.05, blocks.max() + 1)[blocks]
    tie = gate.compare(baseline + noise - noise.mean(), baseline, blocks, baseline="prior")

    assert better.passed and better.lower_bound == pytest.approx(0.05)
    assert not tie.passed and tie.lower_bound < 0 < tie.lower_bound + 0.05


def test_the_bound_is_over_blocks_not_rows():
    # one good block and one bad: thousands of rows, but two pieces of evidence
    baseline = np.ones(2000)
    candidate = np.r_[np.full(1000, 0.5), np.full(1000, 1.2)]
    blocks = np.r_[np.zeros(1000, int), np.ones(1000, int)]

    comparison = gate.compare(candidate, baseline, blocks, baseline="prior")

    assert comparison.blocks == 2 and not comparison.passed


def test_decide_needs_every_baseline_beaten():
    blocks = gate.time_blocks(_ts(3000))
    base = np.random.default_rng(3).exponential(1.0, 3000)
    vs_prior = gate.compare(base - 0.1, base, blocks, baseline="prior")
    vs_champion = gate.compare(base - 0.1, base - 0.1, blocks, baseline="champion v1")

    decision = gate.decide([vs_prior, vs_champion])

    assert not decision.passed and decision.reason.startswith("refused")
    assert "vs prior" in decision.reason and "vs champion v1" in decision.reason
    assert decision.lower_bound == vs_champion.lower_bound
    assert gate.decide([vs_prior]).passed


def test_every_held_out_tick_counts_once_so_a_tiny_block_cannot_carry_the_verdict():
    # 40 blocks of 100 rows with no gain, and one block of 3 rows with a huge one
    baseline = np.ones(4003)
    candidate = np.r_[np.ones(4000), np.full(3, 0.01)]
    blocks = np.r_[np.repeat(np.arange(40), 100), np.full(3, 40)]

    comparison = gate.compare(candidate, baseline, blocks, baseline="prior")

    assert comparison.improvement == pytest.approx(3 * 0.99 / 4003)
    assert comparison.block_differences.max() == pytest.approx(0.99) and not comparison.passed
