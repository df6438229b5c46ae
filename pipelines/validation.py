"""Purged walk-forward validation: folds by trading day, training rows purged by their label intervals.

Written here rather than taken from a library: skfolio's `WalkForward` and `CombinatorialPurgedCV` purge
a number of *observations*, and ticks arrive irregularly, so a count is not a time; `purgedcv` is an
alpha (0.0.x) release. What this needs is small — folds are whole trading days, a training row is
purged when its label interval [ts, ts + horizon] (UTC) reaches a test block's span, and an embargo of
wall-clock time follows each block — and `tests/test_validation.py` checks it against a brute force.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

LABEL_HORIZON = pd.Timedelta(minutes=30)  # the longest label horizon: every row's label ends by ts + this


@dataclass(frozen=True)
class WalkForward:
    """How to cut the training days into walk-forward folds.

    `folds` test blocks of `test_days` trading days each, the last ones of the training days, in time
    order. `mode` "expanding" trains each fold on every earlier day; "rolling" on the `train_days`
    days before its block. `embargo` (wall-clock) follows each test block: no training row starts in
    it. Both purge and embargo are at least `LABEL_HORIZON`.
    """

    folds: int = 3
    test_days: int = 1
    mode: Literal["expanding", "rolling"] = "expanding"
    train_days: int | None = None
    embargo: pd.Timedelta = LABEL_HORIZON
    min_train_days: int = 2

    def __post_init__(self) -> None:
        if self.folds < 1 or self.test_days < 1:
            raise ValueError(f"need folds >= 1 and test_days >= 1, got {self.folds} and {self.test_days}")
        if self.mode not in ("expanding", "rolling"):
            raise ValueError(f"mode must be 'expanding' or 'rolling', got {self.mode!r}")
        if self.mode == "rolling" and (self.train_days is None or self.train_days < 1):
            raise ValueError("a rolling walk-forward needs train_days >= 1")
        if pd.Timedelta(self.embargo) < LABEL_HORIZON:
            raise ValueError(
                f"embargo must be at least the label horizon {LABEL_HORIZON}, got {self.embargo}"
            )


@dataclass(frozen=True)
class Fold:
    """One walk-forward split: the trading days it trains on and the days it tests on."""

    number: int
    train_days: tuple[dt.date, ...]
    test_days: tuple[dt.date, ...]

    def to_dict(self) -> dict:
        return {
            "fold": self.number,
            "train_days": [d.isoformat() for d in self.train_days],
            "test_days": [d.isoformat() for d in self.test_days],
        }

    @classmethod
    def from_dict(cls, data: dict) -> Fold:
        return cls(
            int(data["fold"]),
            tuple(dt.date.fromisoformat(d) for d in data["train_days"]),
            tuple(dt.date.fromisoformat(d) for d in data["test_days"]),
        )


def walk_forward(days: list[dt.date], spec: WalkForward) -> list[Fold]:
    """The folds of `spec` over the trading `days` (any order; duplicates ignored), oldest block first.

    Raises ValueError when the days cannot hold `spec.folds` blocks with `spec.min_train_days` training
    days before the first.
    """
    days = sorted(set(days))
    tested = spec.folds * spec.test_days
    first_train = len(days) - tested
    if first_train < spec.min_train_days:
        raise ValueError(
            f"{len(days)} trading days cannot hold {spec.folds} folds of {spec.test_days} test day(s) "
            f"after {spec.min_train_days} training days; use fewer folds or more days"
        )
    folds = []
    for k in range(spec.folds):
        start = first_train + k * spec.test_days
        lo = 0 if spec.mode == "expanding" else max(0, start - int(spec.train_days))
        folds.append(Fold(k, tuple(days[lo:start]), tuple(days[start : start + spec.test_days])))
    return folds


@dataclass(frozen=True)
class Split:
    """Row positions of one fold in a dataset, after the purge and the embargo."""

    fold: Fold
    train: np.ndarray  # positions of training rows kept
    test: np.ndarray  # positions of test rows
    purged: int  # training-day rows dropped because their label reaches a test block's span
    embargoed: int  # training-day rows dropped because they start inside an embargo


def as_ns(ts) -> np.ndarray:
    """Epoch nanoseconds (int64) of UTC timestamps, whatever unit they are held in."""
    return np.asarray(pd.DatetimeIndex(pd.to_datetime(pd.Series(ts), utc=True)).as_unit("ns").asi8)


def _blocks(test_ts: np.ndarray, horizon_ns: int) -> list[tuple[int, int]]:
    """Time spans [first ts, last ts + horizon] of runs of test rows, split where the gap exceeds a day."""
    if len(test_ts) == 0:
        return []
    ts = np.sort(test_ts)
    cuts = np.flatnonzero(np.diff(ts) > pd.Timedelta(days=1).value) + 1
    return [(int(run[0]), int(run[-1]) + horizon_ns) for run in np.split(ts, cuts)]


def split_rows(
    dataset: pd.DataFrame,
    fold: Fold,
    *,
    horizon: pd.Timedelta = LABEL_HORIZON,
    embargo: pd.Timedelta = LABEL_HORIZON,
) -> Split:
    """Training and test row positions of `fold` in `dataset` (columns `day`, `ts` UTC).

    A training-day row at `ts` is purged when [ts, ts + horizon] overlaps a test block's span [first
    test ts, last test ts + horizon], and embargoed when it starts inside (span end, span end + embargo].
    """
    ts = as_ns(dataset["ts"])
    day = dataset["day"].to_numpy()
    test = np.flatnonzero(np.isin(day, np.asarray(fold.test_days, dtype=object)))
    candidates = np.flatnonzero(np.isin(day, np.asarray(fold.train_days, dtype=object)))
    h, e = pd.Timedelta(horizon).value, pd.Timedelta(embargo).value
    purged = np.zeros(len(candidates), dtype=bool)
    embargoed = np.zeros(len(candidates), dtype=bool)
    start = ts[candidates]
    for lo, hi in _blocks(ts[test], h):
        purged |= (start + h >= lo) & (start <= hi)
        embargoed |= (start > hi) & (start <= hi + e)
    embargoed &= ~purged
    return Split(fold, candidates[~purged & ~embargoed], test, int(purged.sum()), int(embargoed.sum()))


def overlapping_labels(
    train_ts: pd.Series | np.ndarray, test_ts: pd.Series | np.ndarray, horizon: pd.Timedelta = LABEL_HORIZON
) -> int:
    """How many training rows have a label interval [ts, ts + horizon] overlapping some test row's.

    The check behind the `folds_purged` asset check: 0 on every split, or the folds leak the future.
    """
    train, test = as_ns(train_ts), np.sort(as_ns(test_ts))
    if len(train) == 0 or len(test) == 0:
        return 0
    h = pd.Timedelta(horizon).value
    # equal-length intervals overlap exactly when their starts are at most one horizon apart
    lo = np.searchsorted(test, train - h, side="left")
    hi = np.searchsorted(test, train + h, side="right")
    return int((hi > lo).sum())
