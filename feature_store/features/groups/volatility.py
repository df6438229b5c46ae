"""Volatility: dispersion of tick returns and prices over the window, its compression, ATR and skew.

Tick returns are log returns in bps; a window of N returns needs N+1 ticks.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from feature_store.features.spec import VOLATILITY, FeatureDef, check_declarations
from feature_store.features.state import (
    B_HIGH,
    B_LOW,
    B_OPEN,
    B_RET,
    B_RET2,
    B_RET2_UP,
    B_RET3,
    B_SY,
    B_SYY,
    BLOCK,
    C_RET,
    LONG,
    MASK,
    MID,
    N_BLOCKS,
    SHORT,
)
from feature_store.features.window import (
    W_HIGH,
    W_LOW,
    W_RET,
    W_RET2,
    block_sum,
    centered_ss,
    std,
)

ret_std_30 = FeatureDef(
    "ret_std_30",
    VOLATILITY,
    "Sample std of tick-to-tick log returns over the last 30 ticks, in bps.",
    warmup=31,
)
ret_std_180 = FeatureDef(
    "ret_std_180",
    VOLATILITY,
    "Sample std of tick-to-tick log returns over the last 180 ticks, in bps.",
    warmup=181,
)
range_180_bps = FeatureDef(
    "range_180_bps",
    VOLATILITY,
    "High minus low price over the last 180 ticks, relative to price, in bps.",
    warmup=180,
)
vol_ratio_30_180 = FeatureDef(
    "vol_ratio_30_180",
    VOLATILITY,
    "ret_std_30 / ret_std_180: short-term volatility against the longer window.",
    warmup=181,
)
ret_std_90 = FeatureDef(
    "ret_std_90",
    VOLATILITY,
    "Sample std of tick-to-tick log returns over the last 90 ticks, in bps.",
    warmup=91,
)
range_30_bps = FeatureDef(
    "range_30_bps",
    VOLATILITY,
    "High minus low price over the last 30 ticks, relative to price, in bps.",
    warmup=30,
)
price_std_180_bps = FeatureDef(
    "price_std_180_bps",
    VOLATILITY,
    "Sample std of the last 180 prices, relative to price, in bps.",
    warmup=180,
)
std_compression_180 = FeatureDef(
    "std_compression_180",
    VOLATILITY,
    "Return std of block 6 / mean return std of the 6 blocks (< 1: volatility compressing); NaN if flat.",
    warmup=181,
)
atr_pct_180 = FeatureDef(
    "atr_pct_180",
    VOLATILITY,
    "Mean true range of the 6 blocks (max(high, previous close) - min(low, previous close)), % of price.",
    warmup=181,
)
ret_skew_180 = FeatureDef(
    "ret_skew_180",
    VOLATILITY,
    "Skewness m3 / m2^1.5 (population moments) of the last 180 tick log returns; NaN if they are all equal.",
    warmup=181,
)
up_vol_share_180 = FeatureDef(
    "up_vol_share_180",
    VOLATILITY,
    "Share of the squared tick returns of the last 180 ticks that comes from upticks; NaN if price is flat.",
    warmup=181,
)

FEATURES: tuple[FeatureDef, ...] = (
    ret_std_30,
    ret_std_180,
    range_180_bps,
    vol_ratio_30_180,
    ret_std_90,
    range_30_bps,
    price_std_180_bps,
    std_compression_180,
    atr_pct_180,
    ret_skew_180,
    up_vol_share_180,
)
check_declarations(globals(), FEATURES)

_SLOT = {f.name: i for i, f in enumerate(FEATURES)}
RET_STD_30 = _SLOT["ret_std_30"]
RET_STD_180 = _SLOT["ret_std_180"]
RANGE_180_BPS = _SLOT["range_180_bps"]
VOL_RATIO_30_180 = _SLOT["vol_ratio_30_180"]
RET_STD_90 = _SLOT["ret_std_90"]
RANGE_30_BPS = _SLOT["range_30_bps"]
PRICE_STD_180_BPS = _SLOT["price_std_180_bps"]
STD_COMPRESSION_180 = _SLOT["std_compression_180"]
ATR_PCT_180 = _SLOT["atr_pct_180"]
RET_SKEW_180 = _SLOT["ret_skew_180"]
UP_VOL_SHARE_180 = _SLOT["up_vol_share_180"]

BPS = 1e4
_JIT = {"cache": True, "nogil": True, "error_model": "numpy"}


@njit(**_JIT)
def block_std(bs, b):
    """Sample std of the 30 tick returns of block `b` (0-based), in bps; NaN if any is missing."""
    s1 = bs[b, B_RET]
    ss = centered_ss(s1, bs[b, B_RET2], BLOCK)
    return np.sqrt(ss / (BLOCK - 1))


@njit(**_JIT)
def compute(ring, n, price, w30, w180, bs, out):
    """Write the volatility features of the tick just folded in (the n-th of the session) into `out`."""
    if n >= SHORT:
        out[RANGE_30_BPS] = (w30[W_HIGH] - w30[W_LOW]) / price * BPS
        if n > SHORT:
            out[RET_STD_30] = std(w30[W_RET], w30[W_RET2], SHORT)
    if n > MID:
        if n >= LONG:  # the last 90 ticks are blocks 4..6, already summed
            s1 = block_sum(bs, B_RET, N_BLOCKS - MID // BLOCK, N_BLOCKS - 1)
            s2 = block_sum(bs, B_RET2, N_BLOCKS - MID // BLOCK, N_BLOCKS - 1)
        else:
            s1 = 0.0
            s2 = 0.0
            for k in range(MID):
                r = ring[(n - 1 - k) & MASK, C_RET]
                s1 += r
                s2 += r * r
        out[RET_STD_90] = np.sqrt(centered_ss(s1, s2, MID) / (MID - 1))
    if n >= LONG:
        out[RANGE_180_BPS] = (w180[W_HIGH] - w180[W_LOW]) / price * BPS
        ss_p = centered_ss(block_sum(bs, B_SY, 0, N_BLOCKS - 1), block_sum(bs, B_SYY, 0, N_BLOCKS - 1), LONG)
        out[PRICE_STD_180_BPS] = np.sqrt(ss_p / (LONG - 1)) / price * BPS
        if n > LONG:
            std_long = std(w180[W_RET], w180[W_RET2], LONG)
            out[RET_STD_180] = std_long
            if std_long > 0:
                out[VOL_RATIO_30_180] = out[RET_STD_30] / std_long
            _block_features(bs, price, out)


@njit(**_JIT)
def _block_features(bs, price, out):
    mean_std = 0.0
    true_range = 0.0
    for b in range(N_BLOCKS):
        mean_std += block_std(bs, b)
        prev_close = bs[b, B_OPEN]
        true_range += max(bs[b, B_HIGH], prev_close) - min(bs[b, B_LOW], prev_close)
    mean_std /= N_BLOCKS
    if mean_std > 0:
        out[STD_COMPRESSION_180] = block_std(bs, N_BLOCKS - 1) / mean_std
    out[ATR_PCT_180] = true_range / N_BLOCKS / price * 100.0
    s1 = block_sum(bs, B_RET, 0, N_BLOCKS - 1)
    s2 = block_sum(bs, B_RET2, 0, N_BLOCKS - 1)
    ss = centered_ss(s1, s2, LONG)
    if ss > 0:
        mean = s1 / LONG
        m2 = ss / LONG
        m3 = block_sum(bs, B_RET3, 0, N_BLOCKS - 1) / LONG - 3.0 * mean * s2 / LONG + 2.0 * mean**3
        out[RET_SKEW_180] = m3 / m2**1.5
    if s2 > 0:
        out[UP_VOL_SHARE_180] = block_sum(bs, B_RET2_UP, 0, N_BLOCKS - 1) / s2
