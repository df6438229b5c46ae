"""Exchange-local trading day and session membership of UTC timestamps, vectorised, for validation."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from feature_store.instruments import Instrument

NS_PER_DAY = 86_400 * 1_000_000_000
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def local_day_and_time(instrument: Instrument, ts_ns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exchange-local date (days since 1970-01-01) and time of day (ns) of epoch-ns UTC timestamps."""
    local = pd.to_datetime(ts_ns, unit="ns", utc=True).tz_convert(instrument.tz).tz_localize(None)
    wall = np.asarray(local.as_unit("ns").asi8, dtype=np.int64)
    day = wall // NS_PER_DAY
    return day, wall - day * NS_PER_DAY


def _ns(t: dt.time) -> int:
    if t == dt.time.max:  # the instruments file's "24:00"
        return NS_PER_DAY
    return ((t.hour * 60 + t.minute) * 60 + t.second) * 1_000_000_000 + t.microsecond * 1_000


def outside_session(instrument: Instrument, day: np.ndarray, tod: np.ndarray) -> np.ndarray:
    """True where a local (day, time of day) is not in the session: another weekday, before open, at or
    after close, or inside a break ([start, end) like the session itself)."""
    weekday = (day + 3) % 7  # 1970-01-01 was a Thursday
    out = (
        ~np.isin(weekday, instrument.weekdays) | (tod < _ns(instrument.open)) | (tod >= _ns(instrument.close))
    )
    for start, end in instrument.breaks:
        out |= (tod >= _ns(start)) & (tod < _ns(end))
    return out


def session_detail(instrument: Instrument, day: int, tod: int) -> str:
    """Why local (day, time of day) is outside `instrument`'s session, with the local time."""
    date = dt.date(1970, 1, 1) + dt.timedelta(days=int(day))
    local = (pd.Timestamp(date) + pd.Timedelta(int(tod), "ns")).isoformat()
    weekday = WEEKDAYS[date.weekday()]
    if date.weekday() not in instrument.weekdays:
        return f"{local} {instrument.timezone} is a {weekday}: no {instrument.venue} session"
    for start, end in instrument.breaks:
        if _ns(start) <= tod < _ns(end):
            return f"{local} {instrument.timezone} is inside the {instrument.venue} break {start:%H:%M}-{end:%H:%M}"
    close = "24:00" if instrument.close == dt.time.max else f"{instrument.close:%H:%M}"
    return (
        f"{local} {instrument.timezone} is outside the {instrument.venue} session "
        f"{instrument.open:%H:%M}-{close} of {instrument.symbol}"
    )


def day_text(day: np.ndarray) -> np.ndarray:
    """YYYY-MM-DD of day numbers (days since 1970-01-01)."""
    return np.datetime_as_string(day.astype("datetime64[D]"), unit="D").astype(object)
