"""Batch engine: the feature kernel looped over one symbol's ticks (whole days) inside numba."""

from __future__ import annotations

import numpy as np
import pandas as pd

from feature_store.features import kernel
from feature_store.features.definitions import FEATURE_NAMES
from feature_store.features.sessions import epoch_ns, split_days
from feature_store.instruments import Instrument

KEY_COLUMNS: tuple[str, ...] = ("symbol", "ts", "seq")
_FLOAT_INPUTS: tuple[str, ...] = ("price", "size", "volume", "side", "bid", "ask", "bid_size", "ask_size")


def tick_arrays(ticks: pd.DataFrame) -> dict[str, np.ndarray]:
    """The kernel's inputs from a canonical tick frame: `ts` as UTC epoch ns, the rest as float64.

    Missing nullable book columns become NaN; raises ValueError unless ticks are sorted by `ts`.
    """
    ts = epoch_ns(ticks["ts"])
    if ts.size > 1 and (np.diff(ts) < 0).any():
        raise ValueError("ticks must be sorted by ts (then seq) before computing features")
    arrays = {"ts": ts}
    for col in _FLOAT_INPUTS:
        if col in ticks.columns:
            arrays[col] = ticks[col].to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            arrays[col] = np.full(len(ticks), np.nan)
    return arrays


def run_kernel(state: tuple, instrument: Instrument, arrays: dict[str, np.ndarray], current_day=None):
    """Run the kernel over `arrays` continuing from `state` (in trading day `current_day`, or None).

    Returns (features (n, F) float64, the trading day of the last tick). State resets at each new day.
    """
    new_day, open_ns, close_ns, last_day = split_days(instrument, arrays["ts"], current_day)
    out = np.empty((len(arrays["ts"]), len(FEATURE_NAMES)), dtype=np.float64)
    kernel.run(
        *state,
        float(instrument.tick_size),
        new_day,
        open_ns,
        close_ns,
        arrays["ts"],
        *(arrays[c] for c in _FLOAT_INPUTS),
        out,
    )
    return out, last_day


def compute_features(ticks: pd.DataFrame, instrument: Instrument) -> pd.DataFrame:
    """Features of every tick of ONE symbol (canonical ticks, sorted by ts then seq, any number of days).

    Returns columns symbol, ts, seq and then `FEATURE_NAMES` (float64), row-aligned with `ticks` (same
    index). Timestamps are UTC; state restarts at each trading day of `instrument` (its local date), so
    a tick's features depend only on it and the earlier ticks of its day.
    """
    symbols = ticks["symbol"].unique()
    if len(symbols) > 1:
        raise ValueError(f"compute_features takes one symbol at a time, got {sorted(map(str, symbols))}")
    if len(symbols) == 1 and symbols[0] != instrument.symbol:
        raise ValueError(f"ticks are for {symbols[0]!r} but the instrument is {instrument.symbol!r}")
    matrix, _ = run_kernel(kernel.new_state(), instrument, tick_arrays(ticks))
    # Wrap the kernel's matrix without copying it (pandas copies ndarrays by default, and a concat
    # would copy it again): at 200+ columns those copies cost more than computing the features.
    features = pd.DataFrame(matrix, index=ticks.index, columns=list(FEATURE_NAMES), copy=False)
    for position, column in enumerate(KEY_COLUMNS):
        features.insert(position, column, ticks[column])
    return features
