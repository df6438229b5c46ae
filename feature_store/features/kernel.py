"""The one implementation of the starter features: a numba kernel that folds one tick into state.

The batch engine loops `step` over days inside numba (`run`); the online engine calls it per tick.
"""

from __future__ import annotations

import zlib

import numpy as np
from numba import njit

from feature_store.features.definitions import FEATURE_NAMES, FEATURES_BY_NAME

N_FEATURES = len(FEATURE_NAMES)

# Ring buffers hold the last CAP ticks of the session; CAP is a power of two so `& MASK` wraps.
CAP = 256
MASK = CAP - 1
LONG = 180  # the longest window; ret_180 and trade_intensity_180 also look at the tick before it
SHORT = 30
MID = 90
if max(f.warmup for f in FEATURES_BY_NAME.values()) > CAP:
    raise ValueError("a feature needs more history than the kernel's ring buffers keep")

# Ring channels (rows of the float ring).
C_PRICE, C_RET, C_SIGNED, C_SIZE, C_TRADE, C_L1 = range(6)
N_CHANNELS = 6
# Session accumulators.
S_PV, S_V, S_HIGH, S_LOW = range(4)
N_SESSION = 4
# Integer state: ticks seen this session, timestamp of the last one (UTC epoch ns).
K_N, K_LAST_TS = range(2)
N_COUNTS = 2

# Output slots, looked up by name so the kernel cannot drift from the order declared in FEATURES.
_SLOT = {name: i for i, name in enumerate(FEATURE_NAMES)}
RET_30 = _SLOT["ret_30"]
RET_90 = _SLOT["ret_90"]
RET_180 = _SLOT["ret_180"]
PRICE_SLOPE_180 = _SLOT["price_slope_180"]
RET_STD_30 = _SLOT["ret_std_30"]
RET_STD_180 = _SLOT["ret_std_180"]
RANGE_180_BPS = _SLOT["range_180_bps"]
VOL_RATIO_30_180 = _SLOT["vol_ratio_30_180"]
FLOW_IMBALANCE_30 = _SLOT["flow_imbalance_30"]
FLOW_IMBALANCE_180 = _SLOT["flow_imbalance_180"]
TRADE_INTENSITY_30 = _SLOT["trade_intensity_30"]
TRADE_INTENSITY_180 = _SLOT["trade_intensity_180"]
MEAN_TRADE_SIZE_30 = _SLOT["mean_trade_size_30"]
TRADE_SHARE_30 = _SLOT["trade_share_30"]
L1_IMBALANCE = _SLOT["l1_imbalance"]
L1_IMBALANCE_MEAN_30 = _SLOT["l1_imbalance_mean_30"]
SPREAD_TICKS = _SLOT["spread_ticks"]
MICROPRICE_DEV_TICKS = _SLOT["microprice_dev_ticks"]
PRICE_VS_MID_TICKS = _SLOT["price_vs_mid_ticks"]
SESSION_VWAP_DEV_BPS = _SLOT["session_vwap_dev_bps"]
SESSION_RANGE_POSITION = _SLOT["session_range_position"]
SESSION_VOLUME = _SLOT["session_volume"]
MINUTES_SINCE_OPEN = _SLOT["minutes_since_open"]
SESSION_FRAC_SIN = _SLOT["session_frac_sin"]
SESSION_FRAC_COS = _SLOT["session_frac_cos"]
if N_FEATURES != 25:
    raise ValueError("kernel.py computes 25 features; update it together with FEATURES")

# numba bakes globals into cached machine code and only re-checks this file, so a reorder of
# FEATURES in definitions.py alone would reuse stale slots; the fingerprint makes that loud.
LAYOUT_ID = zlib.crc32(",".join(FEATURE_NAMES).encode())

NAN = np.nan
BPS = 1e4
NS_PER_S = 1e9
NS_PER_MIN = 6e10
TWO_PI = 2.0 * np.pi

_JIT = {"cache": True, "nogil": True, "error_model": "numpy"}


@njit(**_JIT)
def compiled_layout_id() -> int:
    return LAYOUT_ID


def new_state() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fresh, reset kernel state: (ring, ts_ring, session, counts)."""
    state = (
        np.empty((N_CHANNELS, CAP), dtype=np.float64),
        np.empty(CAP, dtype=np.int64),
        np.empty(N_SESSION, dtype=np.float64),
        np.empty(N_COUNTS, dtype=np.int64),
    )
    reset(*state)
    return state


@njit(**_JIT)
def reset(ring, ts_ring, session, counts):
    """Forget everything: the next tick starts a session (windows and session features restart)."""
    ring[:, :] = NAN
    ts_ring[:] = 0
    session[S_PV] = 0.0
    session[S_V] = 0.0
    session[S_HIGH] = -np.inf
    session[S_LOW] = np.inf
    counts[K_N] = 0
    counts[K_LAST_TS] = np.iinfo(np.int64).min


@njit(**_JIT)
def _window(ring, n, w, price):
    """Sums over the last `w` ticks (n >= w): returns, flow, trades, price extremes and slope terms."""
    s_ret = 0.0
    s_ret2 = 0.0
    s_signed = 0.0
    s_size = 0.0
    trades = 0.0
    s_l1 = 0.0
    hi = -np.inf
    lo = np.inf
    s_y = 0.0
    s_xy = 0.0
    for k in range(w):
        j = (n - 1 - k) & MASK
        r = ring[C_RET, j]
        s_ret += r
        s_ret2 += r * r
        s_signed += ring[C_SIGNED, j]
        s_size += ring[C_SIZE, j]
        trades += ring[C_TRADE, j]
        s_l1 += ring[C_L1, j]
        p = ring[C_PRICE, j]
        hi = max(hi, p)
        lo = min(lo, p)
        # Prices relative to the current one keep the slope sums small (less cancellation).
        y = p - price
        s_y += y
        s_xy += (w - 1 - k) * y
    return s_ret, s_ret2, s_signed, s_size, trades, s_l1, hi, lo, s_y, s_xy


@njit(**_JIT)
def _std(s1, s2, w):
    var = (s2 - s1 * s1 / w) / (w - 1)
    return np.sqrt(max(var, 0.0))  # rounding can push a zero variance slightly negative


@njit(**_JIT)
def step(
    ring,
    ts_ring,
    session,
    counts,
    tick_size,
    open_ns,
    close_ns,
    ts,
    price,
    size,
    volume,
    side,
    bid,
    ask,
    bid_size,
    ask_size,
    out,
):
    """Fold one tick into the state and write all features of that tick into `out` (NaN = no value).

    `ts`, `open_ns`, `close_ns` are UTC epoch nanoseconds; `open_ns`/`close_ns` bound the tick's session.
    Only this tick and earlier ticks of the same session are read.
    """
    out[:] = NAN
    n = counts[K_N]
    pos = n & MASK
    ret = NAN
    if n > 0:
        ret = np.log(price / ring[C_PRICE, (n - 1) & MASK]) * BPS
    depth = bid_size + ask_size
    l1 = NAN
    if depth > 0:  # False for NaN sizes too
        l1 = (bid_size - ask_size) / depth
    ring[C_PRICE, pos] = price
    ring[C_RET, pos] = ret
    ring[C_SIGNED, pos] = side * size
    ring[C_SIZE, pos] = size
    ring[C_TRADE, pos] = 1.0 if size > 0 else 0.0
    ring[C_L1, pos] = l1
    ts_ring[pos] = ts
    n += 1
    counts[K_N] = n
    counts[K_LAST_TS] = ts
    if size > 0:
        session[S_PV] += price * size
        session[S_V] += size
    session[S_HIGH] = max(session[S_HIGH], price)
    session[S_LOW] = min(session[S_LOW], price)

    # Price dynamics: an N-tick return compares with the tick N before this one.
    if n > SHORT:
        out[RET_30] = np.log(price / ring[C_PRICE, (n - 1 - SHORT) & MASK]) * BPS
    if n > MID:
        out[RET_90] = np.log(price / ring[C_PRICE, (n - 1 - MID) & MASK]) * BPS
    if n > LONG:
        out[RET_180] = np.log(price / ring[C_PRICE, (n - 1 - LONG) & MASK]) * BPS

    if n >= SHORT:
        s_ret, s_ret2, s_signed, s_size, trades, s_l1, hi, lo, s_y, s_xy = _window(ring, n, SHORT, price)
        if s_size > 0:
            out[FLOW_IMBALANCE_30] = s_signed / s_size
        if trades > 0:
            out[MEAN_TRADE_SIZE_30] = s_size / trades
        out[TRADE_SHARE_30] = trades / SHORT
        out[L1_IMBALANCE_MEAN_30] = s_l1 / SHORT
        if n > SHORT:  # the oldest return of the window needs the tick before it
            out[RET_STD_30] = _std(s_ret, s_ret2, SHORT)
            span_ns = ts - ts_ring[(n - 1 - SHORT) & MASK]
            if span_ns > 0:
                out[TRADE_INTENSITY_30] = trades / (span_ns / NS_PER_S)

    if n >= LONG:
        s_ret, s_ret2, s_signed, s_size, trades, s_l1, hi, lo, s_y, s_xy = _window(ring, n, LONG, price)
        if s_size > 0:
            out[FLOW_IMBALANCE_180] = s_signed / s_size
        out[RANGE_180_BPS] = (hi - lo) / price * BPS
        x_mean = (LONG - 1) / 2.0
        s_xx = LONG * (LONG * LONG - 1) / 12.0
        out[PRICE_SLOPE_180] = (s_xy - x_mean * s_y) / s_xx / tick_size
        if n > LONG:
            std_long = _std(s_ret, s_ret2, LONG)
            out[RET_STD_180] = std_long
            if std_long > 0:
                out[VOL_RATIO_30_180] = out[RET_STD_30] / std_long
            span_ns = ts - ts_ring[(n - 1 - LONG) & MASK]
            if span_ns > 0:
                out[TRADE_INTENSITY_180] = trades / (span_ns / NS_PER_S)

    # Book pressure: NaN inputs propagate to NaN features.
    mid = (bid + ask) / 2.0
    out[L1_IMBALANCE] = l1
    out[SPREAD_TICKS] = (ask - bid) / tick_size
    if depth > 0:
        microprice = (bid * ask_size + ask * bid_size) / depth
        out[MICROPRICE_DEV_TICKS] = (microprice - mid) / tick_size
    out[PRICE_VS_MID_TICKS] = (price - mid) / tick_size

    # Session so far.
    if session[S_V] > 0:
        out[SESSION_VWAP_DEV_BPS] = (price / (session[S_PV] / session[S_V]) - 1.0) * BPS
    if session[S_HIGH] > session[S_LOW]:
        out[SESSION_RANGE_POSITION] = (price - session[S_LOW]) / (session[S_HIGH] - session[S_LOW])
    out[SESSION_VOLUME] = volume

    # Time of day.
    since_open_ns = ts - open_ns
    out[MINUTES_SINCE_OPEN] = since_open_ns / NS_PER_MIN
    frac = since_open_ns / (close_ns - open_ns)
    out[SESSION_FRAC_SIN] = np.sin(TWO_PI * frac)
    out[SESSION_FRAC_COS] = np.cos(TWO_PI * frac)


@njit(**_JIT)
def run(
    ring,
    ts_ring,
    session,
    counts,
    tick_size,
    new_day,
    open_ns,
    close_ns,
    ts,
    price,
    size,
    volume,
    side,
    bid,
    ask,
    bid_size,
    ask_size,
    out,
):
    """`step` over ticks in time order, resetting the state where `new_day` is True; fills out (n, F)."""
    for i in range(ts.shape[0]):
        if new_day[i]:
            reset(ring, ts_ring, session, counts)
        step(
            ring,
            ts_ring,
            session,
            counts,
            tick_size,
            open_ns[i],
            close_ns[i],
            ts[i],
            price[i],
            size[i],
            volume[i],
            side[i],
            bid[i],
            ask[i],
            bid_size[i],
            ask_size[i],
            out[i],
        )


if compiled_layout_id() != LAYOUT_ID:
    raise ImportError(
        "numba's cache of feature_store/features/kernel.py was built for another FEATURES order; "
        "delete feature_store/features/__pycache__/kernel.*.nb[ic] and import again"
    )
