"""Order-book pressure from the best bid/ask: imbalance, spread, microprice, depth building or vanishing.

Features that need bid/ask sizes are NaN on feeds without them (e.g. B3); those that need bid/ask
prices are NaN on ticks without a quote. A window with any missing input is NaN, not averaged over less.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from feature_store.features.spec import BOOK, FeatureDef, check_declarations
from feature_store.features.state import (
    B_ASK_SIZE,
    B_BID_SIZE,
    B_DEPTH,
    B_DEPTH2,
    B_MICRO,
    B_SPREAD,
    C_DEPTH,
    C_L1,
    C_MICRO,
    C_SPREAD,
    LONG,
    MASK,
    N_BLOCKS,
    SHORT,
)
from feature_store.features.window import W_L1, block_sum, centered_ss

l1_imbalance = FeatureDef(
    "l1_imbalance",
    BOOK,
    "(bid_size - ask_size) / (bid_size + ask_size) at the best levels, in [-1, 1] (needs book sizes).",
)
l1_imbalance_mean_30 = FeatureDef(
    "l1_imbalance_mean_30",
    BOOK,
    "Mean of l1_imbalance over the last 30 ticks (NaN if any is missing; needs book sizes).",
    warmup=30,
)
spread_ticks = FeatureDef("spread_ticks", BOOK, "Best ask minus best bid, in price ticks.")
microprice_dev_ticks = FeatureDef(
    "microprice_dev_ticks", BOOK, "Size-weighted microprice minus the mid, in price ticks (needs book sizes)."
)
price_vs_mid_ticks = FeatureDef(
    "price_vs_mid_ticks", BOOK, "Last traded price minus the mid, in price ticks."
)
depth_imbalance_180 = FeatureDef(
    "depth_imbalance_180",
    BOOK,
    "(sum bid_size - sum ask_size) / (sum bid_size + sum ask_size) over the last 180 ticks (needs book sizes).",
    warmup=180,
)
spread_mean_180 = FeatureDef(
    "spread_mean_180",
    BOOK,
    "Mean best ask minus best bid over the last 180 ticks, in price ticks.",
    warmup=180,
)
spread_ratio_180 = FeatureDef(
    "spread_ratio_180",
    BOOK,
    "spread_ticks / spread_mean_180: the spread now against its recent level; NaN if that mean is 0.",
    warmup=180,
)
bid_accumulation_180 = FeatureDef(
    "bid_accumulation_180",
    BOOK,
    "Mean bid_size of block 6 (last 30 ticks) / that of block 1 (ticks t-179..t-150) - 1 (needs book sizes).",
    warmup=180,
)
ask_vanishing_180 = FeatureDef(
    "ask_vanishing_180",
    BOOK,
    "1 - mean ask_size of block 6 (last 30 ticks) / that of block 1 (ticks t-179..t-150) (needs book sizes).",
    warmup=180,
)
microprice_dev_mean_30 = FeatureDef(
    "microprice_dev_mean_30",
    BOOK,
    "Mean of microprice_dev_ticks over the last 30 ticks (NaN if any is missing; needs book sizes).",
    warmup=30,
)
depth_z_180 = FeatureDef(
    "depth_z_180",
    BOOK,
    "z-score of bid_size + ask_size now against the last 180 ticks; NaN if constant (needs book sizes).",
    warmup=180,
)

FEATURES: tuple[FeatureDef, ...] = (
    l1_imbalance,
    l1_imbalance_mean_30,
    spread_ticks,
    microprice_dev_ticks,
    price_vs_mid_ticks,
    depth_imbalance_180,
    spread_mean_180,
    spread_ratio_180,
    bid_accumulation_180,
    ask_vanishing_180,
    microprice_dev_mean_30,
    depth_z_180,
)
check_declarations(globals(), FEATURES)

_SLOT = {f.name: i for i, f in enumerate(FEATURES)}
L1_IMBALANCE = _SLOT["l1_imbalance"]
L1_IMBALANCE_MEAN_30 = _SLOT["l1_imbalance_mean_30"]
SPREAD_TICKS = _SLOT["spread_ticks"]
MICROPRICE_DEV_TICKS = _SLOT["microprice_dev_ticks"]
PRICE_VS_MID_TICKS = _SLOT["price_vs_mid_ticks"]
DEPTH_IMBALANCE_180 = _SLOT["depth_imbalance_180"]
SPREAD_MEAN_180 = _SLOT["spread_mean_180"]
SPREAD_RATIO_180 = _SLOT["spread_ratio_180"]
BID_ACCUMULATION_180 = _SLOT["bid_accumulation_180"]
ASK_VANISHING_180 = _SLOT["ask_vanishing_180"]
MICROPRICE_DEV_MEAN_30 = _SLOT["microprice_dev_mean_30"]
DEPTH_Z_180 = _SLOT["depth_z_180"]

_JIT = {"cache": True, "nogil": True, "error_model": "numpy"}


@njit(**_JIT)
def compute(ring, n, price, tick_size, bid, ask, w30, bs, out):
    """Write the book features of the tick just folded in (the n-th of the session) into `out`."""
    row = ring[(n - 1) & MASK]
    mid = (bid + ask) / 2.0
    out[L1_IMBALANCE] = row[C_L1]
    out[SPREAD_TICKS] = row[C_SPREAD]
    out[MICROPRICE_DEV_TICKS] = row[C_MICRO]
    out[PRICE_VS_MID_TICKS] = (price - mid) / tick_size
    if n >= SHORT:
        out[L1_IMBALANCE_MEAN_30] = w30[W_L1] / SHORT
        if n >= LONG:  # the last 30 ticks are block 6, already summed
            s_micro = bs[N_BLOCKS - 1, B_MICRO]
        else:
            s_micro = 0.0
            for k in range(SHORT):
                s_micro += ring[(n - 1 - k) & MASK, C_MICRO]
        out[MICROPRICE_DEV_MEAN_30] = s_micro / SHORT
    if n >= LONG:
        bids = block_sum(bs, B_BID_SIZE, 0, N_BLOCKS - 1)
        asks = block_sum(bs, B_ASK_SIZE, 0, N_BLOCKS - 1)
        if bids + asks > 0:
            out[DEPTH_IMBALANCE_180] = (bids - asks) / (bids + asks)
        spread_mean = block_sum(bs, B_SPREAD, 0, N_BLOCKS - 1) / LONG
        out[SPREAD_MEAN_180] = spread_mean
        if spread_mean != 0:
            out[SPREAD_RATIO_180] = row[C_SPREAD] / spread_mean
        if bs[0, B_BID_SIZE] > 0:
            out[BID_ACCUMULATION_180] = bs[N_BLOCKS - 1, B_BID_SIZE] / bs[0, B_BID_SIZE] - 1.0
        if bs[0, B_ASK_SIZE] > 0:
            out[ASK_VANISHING_180] = 1.0 - bs[N_BLOCKS - 1, B_ASK_SIZE] / bs[0, B_ASK_SIZE]
        s_depth = block_sum(bs, B_DEPTH, 0, N_BLOCKS - 1)
        ss = centered_ss(s_depth, block_sum(bs, B_DEPTH2, 0, N_BLOCKS - 1), LONG)
        if ss > 0:
            out[DEPTH_Z_180] = (row[C_DEPTH] - s_depth / LONG) / np.sqrt(ss / (LONG - 1))
