"""Labels of every tick from its future: the 15-minute (5-class) and 30-minute (3-class) direction.

Each trading day is labelled on its own and never looks past its session close (no leakage).
"""

from __future__ import annotations

import itertools

import numba
import numpy as np
import pandas as pd

from feature_store.instruments import Instrument
from feature_store.schema import LABELS_15M, LABELS_30M

LABEL_COLUMNS: tuple[str, ...] = ("symbol", "ts", "seq", "label_15m", "label_30m", "range_30m")
# Kernel codes are positions in the class tuples of feature_store.schema; -1 means unlabeled.
_UNLABELED = -1
_DOWN15, _TRAP_DOWN15, _FLAT15, _TRAP_UP15, _UP15 = (
    LABELS_15M.index(c) for c in ("DOWN", "TRAP_DOWN", "FLAT", "TRAP_UP", "UP")
)
_DOWN30, _FLAT30, _UP30 = (LABELS_30M.index(c) for c in ("DOWN", "FLAT", "UP"))


def label_ticks(ticks: pd.DataFrame, instrument: Instrument) -> pd.DataFrame:
    """Label every tick of one symbol (any number of days); row-aligned with `ticks` (same index).

    Returns columns symbol, ts, seq, label_15m, label_30m (str, NaN when unlabeled) and range_30m
    (float, NaN when unlabeled). For a tick at `ts0` (UTC) with price p0, only ticks with ts in
    (ts0, ts0 + horizon] of the same trading day count; if ts0 + horizon is after that day's session
    close the label is missing, never guessed. Thresholds are `instrument.labels`: T = target_15m,
    S = stop_15m, f = trap_fraction, T30 = target_30m, in price points.

    15 minutes:
    - UP: price reaches p0 + T, earlier than p0 - T if that is reached at all, and the adverse
      excursion until then, p0 - min(price up to that time), stays under S / 2. DOWN is the mirror.
    - TRAP_UP: otherwise, price first reaches p0 + f*T and later reaches p0 - S (a false breakout that
      reverses through the stop). TRAP_DOWN is the mirror. If both qualify, the earlier breakout wins.
    - FLAT: anything else.

    30 minutes: UP if price reaches p0 + T30 before p0 - T30, DOWN the mirror, FLAT if neither.
    range_30m is max - min of the prices in the 30-minute horizon, p0 included.
    """
    if ticks["symbol"].nunique() > 1:
        raise ValueError(f"label_ticks takes one symbol at a time, got {sorted(ticks['symbol'].unique())}")
    ts = ticks["ts"].to_numpy("datetime64[ns]").view(np.int64)  # tz-aware -> UTC epoch ns
    price = ticks["price"].to_numpy(np.float64)
    order = np.lexsort((ticks["seq"].to_numpy(), ts))
    ts, price = ts[order], price[order]
    days = instrument.trading_day(ticks["ts"]).to_numpy()[order]

    code15 = np.full(len(ts), _UNLABELED, dtype=np.int8)
    code30 = np.full(len(ts), _UNLABELED, dtype=np.int8)
    range30 = np.full(len(ts), np.nan)
    cfg = instrument.labels
    # Sorted by time, each trading day is one contiguous run of rows.
    edges = np.flatnonzero(np.r_[True, days[1:] != days[:-1], True]) if len(ts) else []
    for lo, hi in itertools.pairwise(edges):
        close_ns = instrument.session_bounds(days[lo])[1].value
        code15[lo:hi], code30[lo:hi], range30[lo:hi] = _label_day(
            ts[lo:hi], price[lo:hi], close_ns, cfg.horizon_15m.value, cfg.horizon_30m.value,
            cfg.target_15m, cfg.stop_15m, cfg.trap_fraction, cfg.target_30m,
        )  # fmt: skip

    back = np.empty_like(order)
    back[order] = np.arange(len(order))
    return pd.DataFrame(
        {
            "symbol": ticks["symbol"].astype("str"),
            "ts": ticks["ts"],
            "seq": ticks["seq"],
            "label_15m": _names(code15[back], LABELS_15M),
            "label_30m": _names(code30[back], LABELS_30M),
            "range_30m": range30[back],
        },
        index=ticks.index,
    )


def consensus_mask(labels: pd.DataFrame, instrument: Instrument) -> pd.Series:
    """Rows whose two horizons agree (boolean, aligned with `labels`); unlabeled rows are dropped.

    Kept: UP/UP, DOWN/DOWN, FLAT/FLAT with range_30m under the instrument's flat_range, TRAP_UP with a
    30-minute DOWN, TRAP_DOWN with a 30-minute UP. Everything else is a mixed signal.
    """
    l15, l30 = labels["label_15m"], labels["label_30m"]
    flat = (l15 == "FLAT") & (l30 == "FLAT") & (labels["range_30m"] < instrument.labels.flat_range)
    agree = ((l15 == "UP") & (l30 == "UP")) | ((l15 == "DOWN") & (l30 == "DOWN"))
    trap = ((l15 == "TRAP_UP") & (l30 == "DOWN")) | ((l15 == "TRAP_DOWN") & (l30 == "UP"))
    return (flat | agree | trap).fillna(False).astype(bool).rename("consensus")


def _names(codes: np.ndarray, classes: tuple[str, ...]) -> pd.api.extensions.ExtensionArray:
    """Class names for kernel codes, NaN for unlabeled (an array, so it never re-aligns on an index)."""
    names = np.array(classes, dtype=object)[np.maximum(codes, 0)]
    names[codes == _UNLABELED] = None
    return pd.array(names, dtype="str")


@numba.njit(cache=True)
def _label_day(
    ts: np.ndarray,
    price: np.ndarray,
    close_ns: int,
    horizon15: int,
    horizon30: int,
    target15: float,
    stop15: float,
    trap_fraction: float,
    target30: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Label codes (15m, 30m) and range_30m of one trading day's ticks, sorted by time (ts in UTC ns).

    Each definition is a handful of queries "first tick in (i, end] at or beyond a level" and "extreme
    over a span", answered in O(log n) from sparse tables, so a day costs O(n log n) whatever the paths.
    """
    n = len(ts)
    code15 = np.full(n, _UNLABELED, dtype=np.int8)
    code30 = np.full(n, _UNLABELED, dtype=np.int8)
    range30 = np.full(n, np.nan)
    if n == 0:
        return code15, code30, range30
    high, low = _sparse_tables(price)
    end15 = np.searchsorted(ts, ts + horizon15, side="right") - 1  # last tick inside each horizon
    end30 = np.searchsorted(ts, ts + horizon30, side="right") - 1
    for i in range(n):
        p0 = price[i]
        if ts[i] + horizon15 <= close_ns:
            e = end15[i]
            up = _first_at_or_above(high, price, i + 1, e, p0 + target15)
            down = _first_at_or_below(low, price, i + 1, e, p0 - target15)
            breakout_up = _first_at_or_above(high, price, i + 1, e, p0 + trap_fraction * target15)
            breakout_down = _first_at_or_below(low, price, i + 1, e, p0 - trap_fraction * target15)
            trap_up = 0 <= breakout_up < e and _span_min(low, breakout_up + 1, e) <= p0 - stop15
            trap_down = 0 <= breakout_down < e and _span_max(high, breakout_down + 1, e) >= p0 + stop15
            if up >= 0 and (down < 0 or up < down) and p0 - _span_min(low, i, up) < stop15 / 2:
                code15[i] = _UP15
            elif down >= 0 and (up < 0 or down < up) and _span_max(high, i, down) - p0 < stop15 / 2:
                code15[i] = _DOWN15
            elif trap_up and (not trap_down or breakout_up < breakout_down):
                code15[i] = _TRAP_UP15
            elif trap_down:
                code15[i] = _TRAP_DOWN15
            else:
                code15[i] = _FLAT15
        if ts[i] + horizon30 <= close_ns:
            e = end30[i]
            up = _first_at_or_above(high, price, i + 1, e, p0 + target30)
            down = _first_at_or_below(low, price, i + 1, e, p0 - target30)
            if up >= 0 and (down < 0 or up < down):
                code30[i] = _UP30
            elif down >= 0:
                code30[i] = _DOWN30
            else:
                code30[i] = _FLAT30
            range30[i] = _span_max(high, i, e) - _span_min(low, i, e)
    return code15, code30, range30


@numba.njit(cache=True)
def _sparse_tables(price: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """high[k, i] / low[k, i]: max / min of price[i : i + 2**k] (valid where i + 2**k <= n)."""
    n = len(price)
    levels = 1
    while (1 << levels) <= n:
        levels += 1
    high, low = np.empty((levels, n)), np.empty((levels, n))
    high[0], low[0] = price, price
    for k in range(1, levels):
        half = 1 << (k - 1)
        for i in range(n):
            j = min(i + half, n - 1)
            high[k, i] = max(high[k - 1, i], high[k - 1, j])
            low[k, i] = min(low[k - 1, i], low[k - 1, j])
    return high, low


@numba.njit(cache=True)
def _first_at_or_above(high: np.ndarray, price: np.ndarray, lo: int, hi: int, level: float) -> int:
    """Index of the first tick in [lo, hi] with price >= level, or -1."""
    j = lo
    # Skip whole blocks that stay below the level, largest first: the skips spell out the distance in binary.
    for k in range(high.shape[0] - 1, -1, -1):
        if j + (1 << k) - 1 <= hi and high[k, j] < level:
            j += 1 << k
    return j if j <= hi and price[j] >= level else -1


@numba.njit(cache=True)
def _first_at_or_below(low: np.ndarray, price: np.ndarray, lo: int, hi: int, level: float) -> int:
    """Index of the first tick in [lo, hi] with price <= level, or -1."""
    j = lo
    for k in range(low.shape[0] - 1, -1, -1):
        if j + (1 << k) - 1 <= hi and low[k, j] > level:
            j += 1 << k
    return j if j <= hi and price[j] <= level else -1


@numba.njit(cache=True)
def _span_max(high: np.ndarray, lo: int, hi: int) -> float:
    """max(price[lo..hi]) from two overlapping power-of-two blocks; lo <= hi."""
    k = _floor_log2(hi - lo + 1)
    return max(high[k, lo], high[k, hi - (1 << k) + 1])


@numba.njit(cache=True)
def _span_min(low: np.ndarray, lo: int, hi: int) -> float:
    """min(price[lo..hi]) from two overlapping power-of-two blocks; lo <= hi."""
    k = _floor_log2(hi - lo + 1)
    return min(low[k, lo], low[k, hi - (1 << k) + 1])


@numba.njit(cache=True)
def _floor_log2(length: int) -> int:
    """The largest k with 2**k <= length (length >= 1)."""
    k = 0
    while (2 << k) <= length:
        k += 1
    return k
