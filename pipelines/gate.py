"""The promotion gate: is a candidate's log loss better than a baseline's on the same held-out ticks?

Neighbouring ticks share most of their label horizon, so row-level differences are far from
independent. The held-out span is cut into blocks of wall-clock time at least one label horizon long;
the per-block mean difference in log loss (baseline minus candidate) is close to independent from block
to block. The improvement is the mean over rows (baseline minus candidate log loss); a bootstrap that
resamples whole blocks (scipy's BCa, paired block sums and sizes) gives its one-sided lower bound.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from pipelines.validation import LABEL_HORIZON, as_ns

CONFIDENCE = 0.95
RESAMPLES = 4999


@dataclass(frozen=True)
class Comparison:
    """The candidate against one baseline over the same held-out blocks."""

    baseline: str  # "prior" or "champion vN"
    candidate_log_loss: float
    baseline_log_loss: float
    improvement: float  # mean over held-out rows of (baseline - candidate) log loss
    lower_bound: float  # one-sided `CONFIDENCE` lower bound of `improvement`
    blocks: int
    block_differences: np.ndarray  # per block, in time order

    @property
    def passed(self) -> bool:
        return self.lower_bound > 0.0

    def as_dict(self) -> dict:
        return {
            "baseline": self.baseline,
            "candidate_log_loss": self.candidate_log_loss,
            "baseline_log_loss": self.baseline_log_loss,
            "improvement": self.improvement,
            "lower_bound": self.lower_bound,
            "blocks": self.blocks,
            "passed": self.passed,
        }


def time_blocks(ts: pd.Series, block: pd.Timedelta = LABEL_HORIZON) -> np.ndarray:
    """Block number of each row: UTC time cut into consecutive spans of `block` (at least the model's
    label horizon); numbers are consecutive over the blocks that hold rows."""
    if pd.Timedelta(block) <= pd.Timedelta(0):
        raise ValueError(f"blocks must be longer than zero, got {block}")
    raw = as_ns(ts) // pd.Timedelta(block).value
    return np.unique(raw, return_inverse=True)[1]


def compare(
    candidate_losses: np.ndarray,
    baseline_losses: np.ndarray,
    blocks: np.ndarray,
    *,
    baseline: str,
    confidence: float = CONFIDENCE,
    seed: int = 7,
) -> Comparison:
    """Paired comparison of per-row log losses over `blocks` (see the module docstring)."""
    candidate_losses, baseline_losses = np.asarray(candidate_losses), np.asarray(baseline_losses)
    if not (len(candidate_losses) == len(baseline_losses) == len(blocks)):
        raise ValueError("candidate, baseline and blocks must be row-aligned")
    count = int(blocks.max()) + 1 if len(blocks) else 0
    sizes = np.bincount(blocks, minlength=count).astype(np.float64)
    keep = sizes > 0
    sums, sizes = np.bincount(blocks, baseline_losses - candidate_losses, minlength=count)[keep], sizes[keep]
    diff = sums / sizes
    # the improvement is the row-weighted mean (every held-out tick counts once), resampled by block
    improvement = float(sums.sum() / sizes.sum()) if len(sums) else float("nan")
    if len(diff) < 2:
        lower = -np.inf
    elif np.allclose(diff, diff[0]):
        lower = float(diff[0])  # no spread to resample (a candidate identical to the baseline: 0)
    else:
        result = stats.bootstrap(
            (sums, sizes),
            _ratio,
            paired=True,
            vectorized=True,
            confidence_level=confidence,
            alternative="greater",
            n_resamples=RESAMPLES,
            method="BCa",
            rng=np.random.default_rng(seed),
        )
        lower = float(result.confidence_interval.low)
        if not np.isfinite(lower):  # BCa degenerates on tiny samples; fall back to the percentile bound
            lower = float(np.quantile(_resampled_ratios(sums, sizes, seed), 1 - confidence))
    return Comparison(
        baseline,
        float(candidate_losses.mean()),
        float(baseline_losses.mean()),
        improvement,
        lower,
        int(len(diff)),
        diff,
    )


def _ratio(sums: np.ndarray, sizes: np.ndarray, axis: int = -1) -> np.ndarray:
    return sums.sum(axis=axis) / sizes.sum(axis=axis)


def _resampled_ratios(sums: np.ndarray, sizes: np.ndarray, seed: int) -> np.ndarray:
    pick = np.random.default_rng(seed).integers(0, len(sums), (RESAMPLES, len(sums)))
    return sums[pick].sum(axis=1) / sizes[pick].sum(axis=1)


@dataclass(frozen=True)
class GateDecision:
    """Whether a candidate passed: its lower bound must be above zero against every baseline."""

    passed: bool
    reason: str
    comparisons: tuple[Comparison, ...]

    @property
    def lower_bound(self) -> float:
        return min(c.lower_bound for c in self.comparisons)


def decide(comparisons: list[Comparison]) -> GateDecision:
    """Pass only when every comparison's lower bound is above zero; the reason names each bound."""
    parts = [
        f"vs {c.baseline}: log loss {c.candidate_log_loss:.4f} vs {c.baseline_log_loss:.4f}, improvement "
        f"{c.improvement:+.4f}, {CONFIDENCE:.0%} lower bound {c.lower_bound:+.4f} over {c.blocks} blocks"
        for c in comparisons
    ]
    passed = all(c.passed for c in comparisons)
    verdict = "passed" if passed else "refused"
    return GateDecision(passed, f"{verdict}: " + "; ".join(parts), tuple(comparisons))
