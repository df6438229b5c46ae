"""Smart vs. dumb money: signed flow of large and of small trades, per block and over the window.

Threshold (computable incrementally, identical in both engines): a trade is LARGE when its size is
above the 90th percentile, and SMALL when at or below the median (nearest rank), of the sizes of the
trades among the previous 180 ticks of the session — this tick excluded, so nothing leaks. Those
sizes are kept sorted in a 256-slot buffer (insert the new trade, drop the one leaving the lookback:
O(180) per tick, bounded). A trade with fewer than 10 trades in its lookback is neither.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from feature_store.features.spec import SMART_MONEY, FeatureDef, check_declarations, per_block
from feature_store.features.state import (
    B_LARGE_SIGNED,
    B_LARGE_SIZE,
    B_SIZE,
    B_SMALL_SIGNED,
    C_LARGE_SIGNED,
    C_LARGE_SIZE,
    C_SIZE,
    C_SMALL_SIGNED,
    K_M,
    LONG,
    MASK,
    N_BLOCKS,
)
from feature_store.features.window import block_sum

MIN_TRADES = 10  # fewer earlier trades than this and no percentile is worth the name

blk_smart_flow = per_block(
    "smart_flow",
    SMART_MONEY,
    "Smart-money flow of {block}: sum(side*size) of its large trades / sum(size) of all its trades.",
)
blk_dumb_flow = per_block(
    "dumb_flow",
    SMART_MONEY,
    "Dumb-money flow of {block}: sum(side*size) of its small trades / sum(size) of all its trades.",
)
smart_flow_180 = FeatureDef(
    "smart_flow_180",
    SMART_MONEY,
    "sum(side*size) of the large trades of the last 180 ticks / sum(size) of all their trades, in [-1, 1].",
    warmup=180,
)
dumb_flow_180 = FeatureDef(
    "dumb_flow_180",
    SMART_MONEY,
    "sum(side*size) of the small trades of the last 180 ticks / sum(size) of all their trades, in [-1, 1].",
    warmup=180,
)
smart_dumb_divergence_180 = FeatureDef(
    "smart_dumb_divergence_180",
    SMART_MONEY,
    "smart_flow_180 - dumb_flow_180: large trades leaning against small ones.",
    warmup=180,
)
large_trade_share_180 = FeatureDef(
    "large_trade_share_180",
    SMART_MONEY,
    "Share of the traded size of the last 180 ticks that comes from large trades.",
    warmup=180,
)
size_tail_ratio = FeatureDef(
    "size_tail_ratio",
    SMART_MONEY,
    "90th percentile / median trade size of the previous 180 ticks (the large/small thresholds); "
    "NaN with fewer than 10 trades.",
    warmup=11,
)

FEATURES = (
    blk_smart_flow
    + blk_dumb_flow
    + (
        smart_flow_180,
        dumb_flow_180,
        smart_dumb_divergence_180,
        large_trade_share_180,
        size_tail_ratio,
    )
)
check_declarations(globals(), FEATURES)

_SLOT = {f.name: i for i, f in enumerate(FEATURES)}
SMART_FLOW = _SLOT["blk1_smart_flow"]
DUMB_FLOW = _SLOT["blk1_dumb_flow"]
SMART_FLOW_180 = _SLOT["smart_flow_180"]
DUMB_FLOW_180 = _SLOT["dumb_flow_180"]
SMART_DUMB_DIVERGENCE_180 = _SLOT["smart_dumb_divergence_180"]
LARGE_TRADE_SHARE_180 = _SLOT["large_trade_share_180"]
SIZE_TAIL_RATIO = _SLOT["size_tail_ratio"]

_JIT = {"cache": True, "nogil": True, "error_model": "numpy"}


@njit(**_JIT)
def percentile_index(m, pct):
    """0-based index of the nearest-rank `pct` percentile among m sorted values: ceil(pct*m/100) - 1."""
    return (pct * m + 99) // 100 - 1


@njit(**_JIT)
def classify(ring, sizes, ks, i, size, side, row, out):
    """Classify tick `i` (0-based in the session, its ring `row` already written) and slide the lookback.

    Writes the tick's large/small channels and `size_tail_ratio`; afterwards `sizes[:ks[K_M]]` holds
    the sorted trade sizes of ticks i-179..i, the lookback of the next tick.
    """
    m = ks[K_M]
    large_signed = 0.0
    small_signed = 0.0
    large_size = 0.0
    if m >= MIN_TRADES:
        q90 = sizes[percentile_index(m, 90)]
        q50 = sizes[percentile_index(m, 50)]
        out[SIZE_TAIL_RATIO] = q90 / q50
        if size > 0:
            if size > q90:
                large_signed = side * size
                large_size = size
            elif size <= q50:
                small_signed = side * size
    row[C_LARGE_SIGNED] = large_signed
    row[C_SMALL_SIGNED] = small_signed
    row[C_LARGE_SIZE] = large_size

    leaving = i - LONG
    if leaving >= 0:
        old = ring[leaving & MASK, C_SIZE]
        if old > 0:
            j = np.searchsorted(sizes[:m], old)
            for k in range(j, m - 1):
                sizes[k] = sizes[k + 1]
            m -= 1
    if size > 0:
        j = np.searchsorted(sizes[:m], size)
        for k in range(m, j, -1):
            sizes[k] = sizes[k - 1]
        sizes[j] = size
        m += 1
    ks[K_M] = m


@njit(**_JIT)
def compute(n, bs, out):
    """Write the smart/dumb flow features (n >= 180 ticks seen, else nothing) into `out`."""
    if n < LONG:
        return
    for b in range(N_BLOCKS):
        volume = bs[b, B_SIZE]
        if volume > 0:
            out[SMART_FLOW + b] = bs[b, B_LARGE_SIGNED] / volume
            out[DUMB_FLOW + b] = bs[b, B_SMALL_SIGNED] / volume
    volume = block_sum(bs, B_SIZE, 0, N_BLOCKS - 1)
    if volume > 0:
        smart = block_sum(bs, B_LARGE_SIGNED, 0, N_BLOCKS - 1) / volume
        dumb = block_sum(bs, B_SMALL_SIGNED, 0, N_BLOCKS - 1) / volume
        out[SMART_FLOW_180] = smart
        out[DUMB_FLOW_180] = dumb
        out[SMART_DUMB_DIVERGENCE_180] = smart - dumb
        out[LARGE_TRADE_SHARE_180] = block_sum(bs, B_LARGE_SIZE, 0, N_BLOCKS - 1) / volume
