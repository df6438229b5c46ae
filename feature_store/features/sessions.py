"""Which trading day a UTC timestamp belongs to, and that day's session bounds, in epoch nanoseconds.

Both engines use this one definition, so they agree on when state resets and on the time features.
"""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

import numpy as np
import pandas as pd

from feature_store.instruments import Instrument


class TradingDay(NamedTuple):
    """A trading day as UTC epoch-ns bounds: [start, end) of the exchange-local date, and the session."""

    day: dt.date
    start_ns: int
    end_ns: int
    open_ns: int
    close_ns: int

    def contains(self, ts_ns: int) -> bool:
        return self.start_ns <= ts_ns < self.end_ns


def _local_midnight_ns(instrument: Instrument, day: dt.date) -> int:
    # Through zoneinfo rather than pandas so a midnight skipped by a DST change cannot raise.
    midnight = dt.datetime.combine(day, dt.time(), tzinfo=instrument.tz)
    return int(midnight.timestamp()) * 1_000_000_000


def trading_day_of(instrument: Instrument, ts_ns: int) -> TradingDay:
    """The trading day (exchange-local calendar date) of a UTC timestamp given in epoch nanoseconds."""
    seconds, _ = divmod(int(ts_ns), 1_000_000_000)
    day = dt.datetime.fromtimestamp(seconds, tz=instrument.tz).date()
    start = _local_midnight_ns(instrument, day)
    end = _local_midnight_ns(instrument, day + dt.timedelta(days=1))
    session_open, session_close = instrument.session_bounds(day)
    return TradingDay(day, start, end, session_open.value, session_close.value)


def split_days(
    instrument: Instrument, ts_ns: np.ndarray, current: TradingDay | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, TradingDay | None]:
    """Per-tick day bookkeeping for sorted UTC epoch-ns timestamps.

    Returns (new_day, open_ns, close_ns, last_day): `new_day[i]` is True where tick i starts a
    trading day other than the one before it (the first tick is compared with `current`, the day
    an engine's state is already in), and the session bounds of each tick's day.
    """
    n = len(ts_ns)
    new_day = np.zeros(n, dtype=np.bool_)
    open_ns = np.empty(n, dtype=np.int64)
    close_ns = np.empty(n, dtype=np.int64)
    day, i = current, 0
    while i < n:
        if day is None or not day.contains(int(ts_ns[i])):
            day = trading_day_of(instrument, int(ts_ns[i]))
            new_day[i] = True
        j = int(np.searchsorted(ts_ns, day.end_ns, side="left"))
        open_ns[i:j] = day.open_ns
        close_ns[i:j] = day.close_ns
        i = j
    return new_day, open_ns, close_ns, day


def epoch_ns(ts: pd.Series) -> np.ndarray:
    """UTC epoch nanoseconds of a tz-aware timestamp column."""
    return ts.dt.tz_convert("UTC").astype("datetime64[ns, UTC]").array.asi8.copy()
