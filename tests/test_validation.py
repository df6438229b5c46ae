"""Purged walk-forward folds: the day layout, and the purge and embargo against a brute force."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from pipelines.validation import (
    LABEL_HORIZON,
    Fold,
    WalkForward,
    overlapping_labels,
    split_rows,
    walk_forward,
)

DAYS = [dt.date(2026, 3, 2) + dt.timedelta(days=i) for i in range(10)]


def test_expanding_folds_train_on_every_earlier_day_and_test_the_last_blocks_in_order():
    folds = walk_forward(DAYS, WalkForward(folds=3, test_days=2))

    assert [f.test_days for f in folds] == [tuple(DAYS[4:6]), tuple(DAYS[6:8]), tuple(DAYS[8:10])]
    assert [f.train_days for f in folds] == [tuple(DAYS[:4]), tuple(DAYS[:6]), tuple(DAYS[:8])]


def test_rolling_folds_keep_a_fixed_training_window():
    folds = walk_forward(DAYS, WalkForward(folds=2, test_days=1, mode="rolling", train_days=3))

    assert [f.train_days for f in folds] == [tuple(DAYS[5:8]), tuple(DAYS[6:9])]
    assert [f.test_days for f in folds] == [(DAYS[8],), (DAYS[9],)]


def test_folds_are_a_list_that_round_trips_through_json_shapes():
    folds = walk_forward(DAYS, WalkForward())

    assert [Fold.from_dict(f.to_dict()) for f in folds] == folds


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (dict(folds=0), "folds >= 1"),
        (dict(mode="sliding"), "mode must be"),
        (dict(mode="rolling"), "train_days >= 1"),
        (dict(embargo=pd.Timedelta(minutes=5)), "at least the label horizon"),
    ],
)
def test_bad_specs_are_refused_with_the_reason(spec, message):
    with pytest.raises(ValueError, match=message):
        WalkForward(**spec)


def test_too_few_days_for_the_folds_says_what_to_change():
    with pytest.raises(ValueError, match="cannot hold 5 folds .* use fewer folds or more days"):
        walk_forward(DAYS[:6], WalkForward(folds=5))


def _crypto_rows(days: list[dt.date], every_s: int = 60) -> pd.DataFrame:
    """One row a minute around the clock: a 24-hour market, where labels do cross midnight."""
    ts = pd.date_range(
        pd.Timestamp(days[0], tz="UTC"), periods=len(days) * 86_400 // every_s, freq=f"{every_s}s"
    )
    return pd.DataFrame({"ts": ts, "day": ts.date})


def _brute_force(frame: pd.DataFrame, fold: Fold, embargo: pd.Timedelta) -> np.ndarray:
    """Training positions by the definition, one row at a time."""
    test = frame[frame["day"].isin(fold.test_days)]
    lo, hi = test["ts"].min(), test["ts"].max() + LABEL_HORIZON
    keep = []
    for i, row in frame.iterrows():
        if row["day"] not in fold.train_days:
            continue
        start, end = row["ts"], row["ts"] + LABEL_HORIZON
        if end >= lo and start <= hi:  # purged: its label reaches the test span
            continue
        if hi < start <= hi + embargo:  # embargoed
            continue
        keep.append(i)
    return np.asarray(keep)


@pytest.mark.parametrize("embargo_min", [30, 90])
def test_purge_and_embargo_match_the_definition_in_a_24_hour_market(embargo_min):
    frame = _crypto_rows(DAYS[:4], every_s=300)
    embargo = pd.Timedelta(minutes=embargo_min)
    # train on the days around a test day: the purge acts before it, the embargo after it
    fold = Fold(0, (DAYS[0], DAYS[1], DAYS[3]), (DAYS[2],))

    split = split_rows(frame, fold, embargo=embargo)

    np.testing.assert_array_equal(split.train, _brute_force(frame, fold, embargo))
    # purged: 23:30..23:55 before the test day (labels reach into it) and 00:00..00:25 after it (they
    # start inside the span, which ends at the last test tick + 30 min); embargoed: the next `embargo`
    assert split.purged == 6 + 6
    assert split.embargoed == embargo_min // 5
    assert overlapping_labels(frame["ts"].iloc[split.train], frame["ts"].iloc[split.test]) == 0


def test_without_the_purge_the_overlap_check_finds_the_leaking_rows():
    frame = _crypto_rows(DAYS[:3], every_s=300)
    train, test = frame[frame["day"] != DAYS[2]], frame[frame["day"] == DAYS[2]]

    # rows from 23:30 on have labels that end inside the test day
    assert overlapping_labels(train["ts"], test["ts"]) == 6


def test_a_day_session_market_loses_no_row_to_the_purge():
    rows = []
    for day in DAYS[:3]:
        open_ = pd.Timestamp(f"{day} 03:45", tz="UTC")
        rows.append(pd.DataFrame({"ts": pd.date_range(open_, open_ + pd.Timedelta(hours=6), freq="1min")}))
    frame = pd.concat(rows, ignore_index=True)
    frame["day"] = frame["ts"].dt.date
    fold = walk_forward(DAYS[:3], WalkForward(folds=1))[0]

    split = split_rows(frame, fold)

    assert split.purged == split.embargoed == 0
    assert len(split.train) == (frame["day"].isin(fold.train_days)).sum()
