"""Playing recorded or simulated ticks into the tick store at real-time or N× speed."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from feature_store.store.base import TickStore


def play(
    ticks: pd.DataFrame,
    store: TickStore,
    *,
    speed: float = 1.0,
    interval_s: float = 0.1,
    stop: threading.Event | None = None,
    on_write: Callable[[pd.DataFrame], None] | None = None,
) -> int:
    """Write `ticks` (sorted by ts) into `store` as market time passes at `speed`× wall time.

    Every `interval_s` of wall time, the ticks whose market time (UTC, relative to the first tick) has
    been reached are written in one batch. Returns the number of ticks written; stops early on `stop`.
    """
    if speed <= 0:
        raise ValueError(f"speed must be > 0, got {speed}")
    if ticks.empty:
        return 0
    offsets = (ticks["ts"] - ticks["ts"].iloc[0]).dt.total_seconds().to_numpy() / speed
    started, done = time.monotonic(), 0
    while done < len(ticks) and not (stop and stop.is_set()):
        due = int(np.searchsorted(offsets, time.monotonic() - started, side="right"))
        if due > done:
            batch = ticks.iloc[done:due]
            store.write_ticks(batch)
            if on_write:
                on_write(batch)
            done = due
        if done < len(ticks):
            time.sleep(interval_s)
    return done
