"""Session context: where price sits in today's trading — VWAP, range, volume profile (POC, value area).

"Session" is the trading day of the engines: everything from its first tick up to and including this
one. The volume profile is a histogram of traded size over N_BUCKETS (2048) price buckets centred on
the session's first price; a bucket is a whole number of price ticks spanning at least 1 bp of that
price (NIFTY at 24,000: 48 ticks = 2.4 points; AMZN at 220: 3 ticks), so the profile is bounded and
updated in O(1) per trade; trades beyond about +-10% of the first price land in the edge buckets.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from feature_store.features.spec import SESSION, FeatureDef, check_declarations
from feature_store.features.state import (
    BUCKET_BPS,
    K_KMAX,
    K_KMIN,
    K_POC,
    K_TS_HIGH,
    K_TS_LOW,
    K_VAH,
    K_VAL,
    K_WIDTH,
    N_BUCKETS,
    S_HIGH,
    S_LOW,
    S_OPEN,
    S_PV,
    S_SIGNED,
    S_V,
    S_VW_M2,
    S_VW_MEAN,
)

session_vwap_dev_bps = FeatureDef(
    "session_vwap_dev_bps", SESSION, "Price relative to the session VWAP of the trades so far, in bps."
)
session_range_position = FeatureDef(
    "session_range_position", SESSION, "Where price sits in the session's low-high range so far, in [0, 1]."
)
session_volume = FeatureDef(
    "session_volume", SESSION, "Cumulative traded quantity of the session as of this tick (the volume field)."
)
session_open_ret_bps = FeatureDef(
    "session_open_ret_bps", SESSION, "Log return of price against the session's first price, in bps."
)
session_range_bps = FeatureDef(
    "session_range_bps", SESSION, "Session high minus session low so far, relative to price, in bps."
)
session_high_dist_bps = FeatureDef(
    "session_high_dist_bps", SESSION, "Session high so far minus price, relative to price, in bps."
)
session_low_dist_bps = FeatureDef(
    "session_low_dist_bps", SESSION, "Price minus the session low so far, relative to price, in bps."
)
session_vwap_z = FeatureDef(
    "session_vwap_z",
    SESSION,
    "(price - session VWAP) / size-weighted std of the session's trade prices; NaN while they are all equal.",
)
poc_dist_bps = FeatureDef(
    "poc_dist_bps",
    SESSION,
    "Price minus the volume point of control (centre of the profile bucket with most size; lowest on ties), in bps.",
)
va_width_bps = FeatureDef(
    "va_width_bps",
    SESSION,
    "Value-area high minus low (buckets grown from the POC, larger neighbour first, to 70% of size), in bps.",
)
va_position = FeatureDef(
    "va_position",
    SESSION,
    "(price - value-area low) / (value-area high - low): 0..1 inside the value area; NaN if it is one price.",
)
session_flow_imbalance = FeatureDef(
    "session_flow_imbalance",
    SESSION,
    "sum(side*size)/sum(size) over the session's trades so far, in [-1, 1].",
)
session_high_age_min = FeatureDef(
    "session_high_age_min", SESSION, "Minutes since price was last at the session high."
)
session_low_age_min = FeatureDef(
    "session_low_age_min", SESSION, "Minutes since price was last at the session low."
)

FEATURES: tuple[FeatureDef, ...] = (
    session_vwap_dev_bps,
    session_range_position,
    session_volume,
    session_open_ret_bps,
    session_range_bps,
    session_high_dist_bps,
    session_low_dist_bps,
    session_vwap_z,
    poc_dist_bps,
    va_width_bps,
    va_position,
    session_flow_imbalance,
    session_high_age_min,
    session_low_age_min,
)
check_declarations(globals(), FEATURES)

_SLOT = {f.name: i for i, f in enumerate(FEATURES)}
SESSION_VWAP_DEV_BPS = _SLOT["session_vwap_dev_bps"]
SESSION_RANGE_POSITION = _SLOT["session_range_position"]
SESSION_VOLUME = _SLOT["session_volume"]
SESSION_OPEN_RET_BPS = _SLOT["session_open_ret_bps"]
SESSION_RANGE_BPS = _SLOT["session_range_bps"]
SESSION_HIGH_DIST_BPS = _SLOT["session_high_dist_bps"]
SESSION_LOW_DIST_BPS = _SLOT["session_low_dist_bps"]
SESSION_VWAP_Z = _SLOT["session_vwap_z"]
POC_DIST_BPS = _SLOT["poc_dist_bps"]
VA_WIDTH_BPS = _SLOT["va_width_bps"]
VA_POSITION = _SLOT["va_position"]
SESSION_FLOW_IMBALANCE = _SLOT["session_flow_imbalance"]
SESSION_HIGH_AGE_MIN = _SLOT["session_high_age_min"]
SESSION_LOW_AGE_MIN = _SLOT["session_low_age_min"]

BPS = 1e4
NS_PER_MIN = 6e10
VALUE_AREA_SHARE = 0.7
CENTRE = N_BUCKETS // 2
_JIT = {"cache": True, "nogil": True, "error_model": "numpy"}


@njit(**_JIT)
def bucket_width(open_price, tick_size):
    """Price ticks per profile bucket: the fewest whole ticks spanning BUCKET_BPS of the opening price."""
    return max(1, int(np.ceil(open_price * BUCKET_BPS / BPS / tick_size)))


@njit(**_JIT)
def bucket_of(price, open_price, tick_size, width):
    """Profile bucket of a price: ticks from the opening price, floor-divided by the width, clamped."""
    k = int(np.rint((price - open_price) / tick_size)) // width + CENTRE
    return min(max(k, 0), N_BUCKETS - 1)


@njit(**_JIT)
def bucket_low(k, open_price, tick_size, width):
    """Lowest price (on the tick grid) of bucket k."""
    return open_price + (k - CENTRE) * width * tick_size


@njit(**_JIT)
def _update_profile(fs, ks, profile, price, size, tick_size):
    width = ks[K_WIDTH]
    k = bucket_of(price, fs[S_OPEN], tick_size, width)
    profile[k] += size
    kmin = min(ks[K_KMIN], k)
    kmax = max(ks[K_KMAX], k)
    ks[K_KMIN] = kmin
    ks[K_KMAX] = kmax
    # Only bucket k grew, so the heaviest bucket (lowest on ties) is either k or unchanged.
    poc = ks[K_POC]
    if poc < 0 or profile[k] > profile[poc] or (profile[k] == profile[poc] and k < poc):
        poc = k
    ks[K_POC] = poc
    # Value area: grow from the POC by the heavier neighbouring bucket (the upper one on a tie)
    # until it holds VALUE_AREA_SHARE of the session's traded size.
    target = VALUE_AREA_SHARE * fs[S_V]
    lo = poc
    hi = poc
    held = profile[poc]
    while held < target:
        up = profile[hi + 1] if hi < kmax else -1.0
        down = profile[lo - 1] if lo > kmin else -1.0
        if up < 0 and down < 0:
            break
        if up >= down:
            hi += 1
            held += up
        else:
            lo -= 1
            held += down
    ks[K_VAL] = lo
    ks[K_VAH] = hi


@njit(**_JIT)
def compute(fs, ks, profile, n, ts, price, size, volume, side, tick_size, out):
    """Fold the tick (the n-th of the session) into the session state and write the session features."""
    if n == 1:
        fs[S_OPEN] = price
        ks[K_WIDTH] = bucket_width(price, tick_size)
    open_price = fs[S_OPEN]
    if size > 0:
        weight = fs[S_V]
        fs[S_PV] += price * size
        fs[S_V] += size
        fs[S_SIGNED] += side * size
        # West's weighted incremental mean/variance: all-equal prices leave exactly zero variance.
        dev = price - open_price
        if weight == 0:
            fs[S_VW_MEAN] = dev
            fs[S_VW_M2] = 0.0
        else:
            delta = dev - fs[S_VW_MEAN]
            shift = delta * size / fs[S_V]
            fs[S_VW_MEAN] += shift
            fs[S_VW_M2] += weight * delta * shift
        _update_profile(fs, ks, profile, price, size, tick_size)
    fs[S_HIGH] = max(fs[S_HIGH], price)
    fs[S_LOW] = min(fs[S_LOW], price)
    high = fs[S_HIGH]
    low = fs[S_LOW]
    if price == high:
        ks[K_TS_HIGH] = ts
    if price == low:
        ks[K_TS_LOW] = ts

    if fs[S_V] > 0:
        out[SESSION_VWAP_DEV_BPS] = (price / (fs[S_PV] / fs[S_V]) - 1.0) * BPS
        out[SESSION_FLOW_IMBALANCE] = fs[S_SIGNED] / fs[S_V]
        if fs[S_VW_M2] > 0:
            out[SESSION_VWAP_Z] = (price - open_price - fs[S_VW_MEAN]) / np.sqrt(fs[S_VW_M2] / fs[S_V])
        width = ks[K_WIDTH]
        poc_price = bucket_low(ks[K_POC], open_price, tick_size, width) + (width - 1) / 2.0 * tick_size
        out[POC_DIST_BPS] = (price - poc_price) / price * BPS
        va_low = bucket_low(ks[K_VAL], open_price, tick_size, width)
        va_high = bucket_low(ks[K_VAH], open_price, tick_size, width) + (width - 1) * tick_size
        out[VA_WIDTH_BPS] = (va_high - va_low) / price * BPS
        if va_high > va_low:
            out[VA_POSITION] = (price - va_low) / (va_high - va_low)
    if high > low:
        out[SESSION_RANGE_POSITION] = (price - low) / (high - low)
    out[SESSION_VOLUME] = volume
    out[SESSION_OPEN_RET_BPS] = np.log(price / open_price) * BPS
    out[SESSION_RANGE_BPS] = (high - low) / price * BPS
    out[SESSION_HIGH_DIST_BPS] = (high - price) / price * BPS
    out[SESSION_LOW_DIST_BPS] = (price - low) / price * BPS
    out[SESSION_HIGH_AGE_MIN] = (ts - ks[K_TS_HIGH]) / NS_PER_MIN
    out[SESSION_LOW_AGE_MIN] = (ts - ks[K_TS_LOW]) / NS_PER_MIN
