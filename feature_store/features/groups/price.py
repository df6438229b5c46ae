"""Price dynamics: returns over tick horizons, the 180-tick trend, momentum score and direction streak.

Returns are log returns in basis points; an N-tick return compares with the tick N before this one.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from feature_store.features.spec import PRICE, FeatureDef, check_declarations
from feature_store.features.state import (
    B_ABS_DP,
    B_CLOSE,
    B_OPEN,
    B_SXY,
    B_SY,
    B_SYY,
    BLOCK,
    C_PRICE,
    K_STREAK,
    LONG,
    MASK,
    MID,
    N_BLOCKS,
    SHORT,
)
from feature_store.features.window import W_SXY, W_SY, block_sum, centered_ss

ret_30 = FeatureDef("ret_30", PRICE, "Log return of price over the last 30 ticks, in bps.", warmup=31)
ret_90 = FeatureDef("ret_90", PRICE, "Log return of price over the last 90 ticks, in bps.", warmup=91)
ret_180 = FeatureDef("ret_180", PRICE, "Log return of price over the last 180 ticks, in bps.", warmup=181)
price_slope_180 = FeatureDef(
    "price_slope_180",
    PRICE,
    "Least-squares slope of price over the last 180 ticks, in price ticks per tick.",
    warmup=180,
)
ret_1 = FeatureDef("ret_1", PRICE, "Log return of price against the previous tick, in bps.", warmup=2)
ret_5 = FeatureDef(
    "ret_5", PRICE, "Rate of change: log return of price over the last 5 ticks, in bps.", warmup=6
)
ret_10 = FeatureDef(
    "ret_10", PRICE, "Rate of change: log return of price over the last 10 ticks, in bps.", warmup=11
)
ret_60 = FeatureDef(
    "ret_60", PRICE, "Rate of change: log return of price over the last 60 ticks, in bps.", warmup=61
)
momentum_score = FeatureDef(
    "momentum_score",
    PRICE,
    "(blocks closing above their open - blocks closing below) / 6 over the 6 blocks of the 180-tick window.",
    warmup=181,
)
direction_streak = FeatureDef(
    "direction_streak",
    PRICE,
    "Signed run of same-direction price changes up to this tick (+3: three upticks); unchanged ticks "
    "neither extend nor break it; 0 before the session's first change.",
    warmup=2,
)
price_slope_r2_180 = FeatureDef(
    "price_slope_r2_180",
    PRICE,
    "R^2 of the least-squares line through the last 180 prices (trend quality); NaN if price is flat.",
    warmup=180,
)
efficiency_180 = FeatureDef(
    "efficiency_180",
    PRICE,
    "|price - price 180 ticks ago| / sum of |tick price changes| over them (Kaufman efficiency ratio).",
    warmup=181,
)

FEATURES: tuple[FeatureDef, ...] = (
    ret_30,
    ret_90,
    ret_180,
    price_slope_180,
    ret_1,
    ret_5,
    ret_10,
    ret_60,
    momentum_score,
    direction_streak,
    price_slope_r2_180,
    efficiency_180,
)
check_declarations(globals(), FEATURES)

_SLOT = {f.name: i for i, f in enumerate(FEATURES)}
RET_30 = _SLOT["ret_30"]
RET_90 = _SLOT["ret_90"]
RET_180 = _SLOT["ret_180"]
PRICE_SLOPE_180 = _SLOT["price_slope_180"]
RET_1 = _SLOT["ret_1"]
RET_5 = _SLOT["ret_5"]
RET_10 = _SLOT["ret_10"]
RET_60 = _SLOT["ret_60"]
MOMENTUM_SCORE = _SLOT["momentum_score"]
DIRECTION_STREAK = _SLOT["direction_streak"]
PRICE_SLOPE_R2_180 = _SLOT["price_slope_r2_180"]
EFFICIENCY_180 = _SLOT["efficiency_180"]

BPS = 1e4
X_MEAN_LONG = (LONG - 1) / 2.0
SXX_LONG = LONG * (LONG * LONG - 1) / 12.0
_JIT = {"cache": True, "nogil": True, "error_model": "numpy"}


@njit(**_JIT)
def _ret(ring, n, price, k):
    return np.log(price / ring[(n - 1 - k) & MASK, C_PRICE]) * BPS


@njit(**_JIT)
def compute(ring, ks, n, price, tick_size, w180, bs, out):
    """Write the price features of the tick just folded in (the n-th of the session) into `out`."""
    if n > SHORT:
        out[RET_30] = _ret(ring, n, price, SHORT)
    if n > MID:
        out[RET_90] = _ret(ring, n, price, MID)
    if n > LONG:
        out[RET_180] = _ret(ring, n, price, LONG)
    if n > 1:
        out[RET_1] = _ret(ring, n, price, 1)
        change = price - ring[(n - 2) & MASK, C_PRICE]
        streak = ks[K_STREAK]
        if change > 0:
            streak = streak + 1 if streak > 0 else 1
        elif change < 0:
            streak = streak - 1 if streak < 0 else -1
        ks[K_STREAK] = streak
        out[DIRECTION_STREAK] = streak
    if n > 5:
        out[RET_5] = _ret(ring, n, price, 5)
    if n > 10:
        out[RET_10] = _ret(ring, n, price, 10)
    if n > 60:
        out[RET_60] = _ret(ring, n, price, 60)

    if n >= LONG:
        out[PRICE_SLOPE_180] = (w180[W_SXY] - X_MEAN_LONG * w180[W_SY]) / SXX_LONG / tick_size
        s_y = block_sum(bs, B_SY, 0, N_BLOCKS - 1)
        s_xy = 0.0
        for b in range(N_BLOCKS):
            s_xy += bs[b, B_SXY] + b * BLOCK * bs[b, B_SY]
        ss_y = centered_ss(s_y, block_sum(bs, B_SYY, 0, N_BLOCKS - 1), LONG)
        if ss_y > 0:
            s_xy_c = s_xy - X_MEAN_LONG * s_y
            out[PRICE_SLOPE_R2_180] = s_xy_c * s_xy_c / (SXX_LONG * ss_y)
    if n > LONG:
        up = 0
        down = 0
        for b in range(N_BLOCKS):
            if bs[b, B_CLOSE] > bs[b, B_OPEN]:
                up += 1
            elif bs[b, B_CLOSE] < bs[b, B_OPEN]:
                down += 1
        out[MOMENTUM_SCORE] = (up - down) / N_BLOCKS
        path = block_sum(bs, B_ABS_DP, 0, N_BLOCKS - 1)
        if path > 0:
            out[EFFICIENCY_180] = abs(price - bs[0, B_OPEN]) / path
