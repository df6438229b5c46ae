"""Per-block dynamics: the 180-tick window read as 6 blocks of 30 ticks, 11 readings of each block.

Block 6 is the last 30 ticks (this one included), block 1 the oldest (ticks t-179..t-150). A block's
"open" is the price of the tick before it, so block 1's return-based readings need 181 ticks.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from feature_store.features.groups.volatility import block_std
from feature_store.features.spec import BLOCK as BLOCK_GROUP
from feature_store.features.spec import check_declarations, per_block
from feature_store.features.state import (
    B_CLOSE,
    B_DEPTH,
    B_DEPTH_XY,
    B_HIGH,
    B_L1,
    B_LOW,
    B_OPEN,
    B_SIGNED,
    B_SIZE,
    B_SPREAD,
    B_SXY,
    B_SY,
    B_T_CLOSE,
    B_T_OPEN,
    B_TRADES,
    BLOCK,
    LONG,
    N_BLOCKS,
)
from feature_store.features.window import centered_ss

blk_slope = per_block(
    "slope", BLOCK_GROUP, "Least-squares slope of price in {block}, in price ticks per tick."
)
blk_vol = per_block(
    "vol",
    BLOCK_GROUP,
    "Sample std of the 30 tick log returns ending in {block}, in bps.",
    first_block_warmup=181,
)
blk_mom = per_block(
    "mom",
    BLOCK_GROUP,
    "Momentum of {block}: log return from the tick before it to its last tick, in bps.",
    first_block_warmup=181,
)
blk_range = per_block("range", BLOCK_GROUP, "High minus low price of {block}, relative to price, in bps.")
blk_volume_z = per_block(
    "volume_z",
    BLOCK_GROUP,
    "z-score of the traded size of {block} against the 6 blocks (sample std); NaN if all are equal.",
)
blk_bias = per_block(
    "bias", BLOCK_GROUP, "Buy/sell bias of {block}: sum(side*size)/sum(size), in [-1, 1]; NaN without trades."
)
blk_intensity = per_block(
    "intensity",
    BLOCK_GROUP,
    "Trades per second in {block} (time from the tick before it to its last tick).",
    first_block_warmup=181,
)
blk_l1_imbalance = per_block(
    "l1_imbalance", BLOCK_GROUP, "Mean L1 size imbalance over {block}, in [-1, 1] (needs book sizes)."
)
blk_depth_trend = per_block(
    "depth_trend",
    BLOCK_GROUP,
    "Depth trend of {block}: fitted change of bid_size + ask_size across it / its mean depth (needs book sizes).",
)
blk_spread = per_block("spread", BLOCK_GROUP, "Mean spread over {block}, in price ticks.")
blk_trap = per_block(
    "trap",
    BLOCK_GROUP,
    "Trap signal of {block} as a bar from the tick before it: (upper wick - lower wick) / range, "
    "+1 a rejected push up (bull trap), -1 a rejected push down; NaN if flat.",
    first_block_warmup=181,
)

FEATURES = (
    blk_slope
    + blk_vol
    + blk_mom
    + blk_range
    + blk_volume_z
    + blk_bias
    + blk_intensity
    + blk_l1_imbalance
    + blk_depth_trend
    + blk_spread
    + blk_trap
)
check_declarations(globals(), FEATURES)

_FIRST = {f.name: i for i, f in enumerate(FEATURES)}
SLOPE = _FIRST["blk1_slope"]
VOL = _FIRST["blk1_vol"]
MOM = _FIRST["blk1_mom"]
RANGE = _FIRST["blk1_range"]
VOLUME_Z = _FIRST["blk1_volume_z"]
BIAS = _FIRST["blk1_bias"]
INTENSITY = _FIRST["blk1_intensity"]
L1_IMBALANCE = _FIRST["blk1_l1_imbalance"]
DEPTH_TREND = _FIRST["blk1_depth_trend"]
SPREAD = _FIRST["blk1_spread"]
TRAP = _FIRST["blk1_trap"]

BPS = 1e4
NS_PER_S = 1e9
X_MEAN = (BLOCK - 1) / 2.0
SXX = BLOCK * (BLOCK * BLOCK - 1) / 12.0
_JIT = {"cache": True, "nogil": True, "error_model": "numpy"}


@njit(**_JIT)
def compute(n, price, tick_size, bs, out):
    """Write the per-block features (n >= 180 ticks seen, else nothing) into `out`."""
    if n < LONG:
        return
    s_v = 0.0
    s_v2 = 0.0
    for b in range(N_BLOCKS):
        v = bs[b, B_SIZE]
        s_v += v
        s_v2 += v * v
    ss_v = centered_ss(s_v, s_v2, N_BLOCKS)
    for b in range(N_BLOCKS):
        stats = bs[b]
        out[SLOPE + b] = (stats[B_SXY] - X_MEAN * stats[B_SY]) / SXX / tick_size
        out[VOL + b] = block_std(bs, b)
        open_price = stats[B_OPEN]
        close = stats[B_CLOSE]
        out[MOM + b] = np.log(close / open_price) * BPS
        out[RANGE + b] = (stats[B_HIGH] - stats[B_LOW]) / price * BPS
        if ss_v > 0:
            out[VOLUME_Z + b] = (stats[B_SIZE] - s_v / N_BLOCKS) / np.sqrt(ss_v / (N_BLOCKS - 1))
        if stats[B_SIZE] > 0:
            out[BIAS + b] = stats[B_SIGNED] / stats[B_SIZE]
        span_ns = stats[B_T_CLOSE] - stats[B_T_OPEN]
        if span_ns > 0:
            out[INTENSITY + b] = stats[B_TRADES] / (span_ns / NS_PER_S)
        out[L1_IMBALANCE + b] = stats[B_L1] / BLOCK
        depth = stats[B_DEPTH]
        if depth > 0:
            slope = (stats[B_DEPTH_XY] - X_MEAN * depth) / SXX
            out[DEPTH_TREND + b] = slope * (BLOCK - 1) / (depth / BLOCK)
        out[SPREAD + b] = stats[B_SPREAD] / BLOCK
        if np.isnan(open_price):
            continue  # block 1 before the 181st tick: no bar to read
        # The bar runs from the previous tick's price, so a gap into the block counts in its range.
        high = max(stats[B_HIGH], open_price)
        low = min(stats[B_LOW], open_price)
        if high > low:
            upper_wick = high - max(open_price, close)
            lower_wick = min(open_price, close) - low
            out[TRAP + b] = (upper_wick - lower_wick) / (high - low)
