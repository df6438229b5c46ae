"""The `folds_purged` asset check: passes on the purged folds, fails when a split leaks."""

from __future__ import annotations

import dagster as dg
import numpy as np
import pandas as pd

import orchestration.training.folds as folds_module
from orchestration.training.folds import FoldsConfig, walk_forward_folds
from pipelines.validation import Split


def _round_the_clock(days: int = 6) -> pd.DataFrame:
    """A 24-hour market's dataset skeleton: a row every 5 minutes, labels crossing midnight."""
    ts = pd.date_range("2026-03-02", periods=days * 288, freq="5min", tz="UTC")
    frame = pd.DataFrame({"symbol": "BTCUSDT", "ts": ts, "seq": np.arange(len(ts)), "day": ts.date})
    frame["holdout"] = frame["day"] >= frame["day"].iloc[-1]
    frame["consensus"] = True
    return frame


def _run(dataset: pd.DataFrame) -> tuple[list, dg.AssetCheckResult]:
    context = dg.build_asset_context(partition_key="default")
    events = list(walk_forward_folds(context=context, config=FoldsConfig(folds=2), dataset=dataset))
    output = next(e for e in events if isinstance(e, dg.Output))
    return output.value, next(e for e in events if isinstance(e, dg.AssetCheckResult))


def test_the_purged_folds_pass_the_check():
    folds, check = _run(_round_the_clock())

    assert len(folds) == 2 and check.passed


def test_a_split_without_the_purge_fails_the_check(monkeypatch):
    unpurged = folds_module.split_rows

    def leaky(dataset, fold, **kwargs):
        split = unpurged(dataset, fold, **kwargs)
        train = np.flatnonzero(dataset["day"].isin(fold.train_days).to_numpy())
        return Split(fold, train, split.test, 0, 0)

    monkeypatch.setattr(folds_module, "split_rows", leaky)

    _, check = _run(_round_the_clock())

    assert not check.passed
    leaking = check.metadata["overlapping_training_rows"].value
    assert leaking == {"fold 0": 6, "fold 1": 6, "final (held-out days)": 6}
