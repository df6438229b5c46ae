"""Frame preparation shared by the tick store backends, so both accept and reject exactly the same input."""

from __future__ import annotations

import datetime as dt
import itertools

import numpy as np
import pandas as pd

from feature_store.instruments import get_instrument
from feature_store.schema import (
    QUARANTINE_REASONS,
    coerce_predictions,
    coerce_quarantine,
    coerce_ticks,
    validate_ticks,
)
from feature_store.store._validate import passes_tick_schema

QUARANTINE_KEY = ["source", "row"]
_TEXT = ("source", "symbol", "detail", "raw")


def prepare_ticks(ticks: pd.DataFrame) -> pd.DataFrame:
    """Canonical, validated ticks sorted by (symbol, ts, seq); raises pandera's SchemaErrors on bad rows."""
    frame = coerce_ticks(ticks)
    frame, unique = _sorted_by_key(frame)
    if not passes_tick_schema(frame, unique_key=unique):  # when in doubt pandera judges and names the checks
        frame = validate_ticks(frame)
    return frame.reset_index(drop=True)


def _sorted_by_key(frame: pd.DataFrame) -> tuple[pd.DataFrame, bool]:
    """`frame` sorted by (symbol, ts, seq) (not copied when it already is), and whether keys are unique.

    One linear pass over the keys answers both for a sorted frame (keys strictly increasing), which is
    what a file or a feed hands in; only an unsorted frame pays for a sort.
    """
    codes, _ = pd.factorize(frame["symbol"], sort=True)  # symbol order as integers
    ts = pd.DatetimeIndex(frame["ts"]).asi8
    seq = frame["seq"].to_numpy()
    if not _keys_increase(codes, ts, seq):
        order = np.lexsort((seq, ts, codes))  # stable: equal keys keep their order
        frame, codes, ts, seq = frame.take(order), codes[order], ts[order], seq[order]
    return frame, _keys_increase(codes, ts, seq)  # sorted now: not strictly increasing means a repeated key


def _keys_increase(codes: np.ndarray, ts: np.ndarray, seq: np.ndarray) -> bool:
    """Whether every (symbol code, ts, seq) is strictly greater than the one before it."""
    d_code, d_ts, d_seq = np.diff(codes), np.diff(ts), np.diff(seq)
    return bool(((d_code > 0) | ((d_code == 0) & ((d_ts > 0) | ((d_ts == 0) & (d_seq > 0))))).all())


def prepare_predictions(predictions: pd.DataFrame) -> pd.DataFrame:
    """Canonical prediction rows sorted by (symbol, ts, seq), the first of duplicate keys kept.

    Raises KeyError for a missing column or an unknown symbol and ValueError for a missing key value.
    """
    frame = coerce_predictions(predictions)
    missing_key = frame["symbol"].isna() | frame["ts"].isna()
    if missing_key.any():
        raise ValueError(f"{int(missing_key.sum())} prediction rows lack symbol or ts")
    for symbol in frame["symbol"].unique():
        get_instrument(symbol)  # every stored row must belong to a configured instrument
    frame = frame.drop_duplicates(["symbol", "ts", "seq"], keep="first")
    return frame.sort_values(["symbol", "ts", "seq"]).reset_index(drop=True)


def prepare_quarantine(rows: pd.DataFrame) -> pd.DataFrame:
    """Canonical quarantine rows sorted by (source, row), the first of duplicate keys kept.

    Raises KeyError for a missing column, ValueError for an unknown reason, a missing source or a `day`
    that is neither "" nor YYYY-MM-DD. NUL characters in text become U+FFFD: PostgreSQL text cannot hold
    them and both backends must store the same thing.
    """
    frame = coerce_quarantine(rows)
    if (frame["source"] == "").any():
        raise ValueError("quarantine rows need a source (the file or feed they came from)")
    bad_day = frame["day"][(frame["day"] != "") & ~frame["day"].str.fullmatch(r"\d{4}-\d{2}-\d{2}")]
    if not bad_day.empty:
        raise ValueError(f"quarantine day must be '' or YYYY-MM-DD, got {bad_day.iloc[0]!r}")
    for col in (*_TEXT, "reason"):
        if frame[col].str.contains("\0", regex=False).any():
            frame[col] = frame[col].str.replace("\0", "\ufffd", regex=False)
    frame = frame.drop_duplicates(QUARANTINE_KEY, keep="first")
    return frame.sort_values(QUARANTINE_KEY).reset_index(drop=True)


def stats_rows(ticks: dict[tuple[str, str], int], reasons: dict[tuple[str, str, str], int]) -> list[dict]:
    """The `TickStore.stats` list from tick counts by (symbol, day) and quarantine counts by (symbol, day, reason)."""
    order = {reason: i for i, reason in enumerate(QUARANTINE_REASONS)}
    by_day: dict[tuple[str, str], dict[str, int]] = {key: {} for key in ticks}
    for (symbol, day, reason), count in reasons.items():
        if count:
            by_day.setdefault((symbol, day), {})[reason] = int(count)
    return [
        {
            "symbol": symbol,
            "day": day,
            "ticks": int(ticks.get((symbol, day), 0)),
            "quarantined": sum(by_reason.values()),
            "reasons": {r: by_reason[r] for r in sorted(by_reason, key=order.__getitem__)},
        }
        for (symbol, day), by_reason in sorted(by_day.items())
    ]


def trading_days(frame: pd.DataFrame) -> np.ndarray:
    """Exchange-local trading day (datetime.date) of every row of a frame with `symbol` and UTC `ts`."""
    days = np.empty(len(frame), dtype=object)
    for symbol, rows in frame.groupby("symbol", sort=False).indices.items():
        days[rows] = get_instrument(symbol).trading_day(frame["ts"].iloc[rows]).to_numpy()
    return days


_DAY_NS = 86_400 * 10**9
_EPOCH = dt.date(1970, 1, 1).toordinal()


def day_runs(frame: pd.DataFrame) -> list[tuple[str, dt.date, int, int]]:
    """(symbol, trading day, start, stop) of each run of rows of one symbol-day in a sorted frame.

    `frame` is sorted by (symbol, ts, seq), as `prepare_ticks` and `prepare_predictions` leave it. A
    symbol's trading day never decreases as its ts grows, so each symbol-day is the contiguous slice
    frame.iloc[start:stop]: the writers cut slices, they never group and copy.
    """
    runs = []
    for symbol, rows in frame.groupby("symbol", sort=True).indices.items():
        lo, hi = int(rows[0]), int(rows[-1]) + 1  # contiguous: the frame is sorted by symbol
        ts = pd.DatetimeIndex(frame["ts"].iloc[lo:hi])
        # exchange-local wall-clock ns // one day: the local date as a day number, no date objects
        local = ts.tz_convert(get_instrument(symbol).tz).tz_localize(None).asi8 // _DAY_NS
        edges = [0, *(np.flatnonzero(np.diff(local)) + 1).tolist(), hi - lo]
        for start, stop in itertools.pairwise(edges):
            day = dt.date.fromordinal(_EPOCH + int(local[start]))
            runs.append((symbol, day, lo + start, lo + stop))
    return runs


def utc(ts: pd.Timestamp | str | None) -> pd.Timestamp | None:
    """`ts` as a UTC timestamp; a naive value is taken as UTC (as `coerce_ticks` does), None stays None."""
    if ts is None:
        return None
    ts = pd.Timestamp(ts)
    return ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")


def check_limit(limit: int | None) -> None:
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0 or None, got {limit}")
