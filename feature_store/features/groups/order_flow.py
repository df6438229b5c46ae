"""Order flow: who trades and how much — signed-size imbalance, aggressor mix, trade size and intensity.

A trade is a tick with size > 0; its aggressor is `side` (+1 buy, -1 sell, 0 unknown). Ratios of
nothing are NaN: a window without trades has no imbalance.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from feature_store.features.spec import ORDER_FLOW, FeatureDef, check_declarations
from feature_store.features.state import (
    B_BUY_SIZE,
    B_MAX_SIZE,
    B_NBUY,
    B_NSELL,
    B_SELL_SIZE,
    B_SIZE,
    B_TRADES,
    C_BUY,
    C_BUY_SIZE,
    C_SELL,
    C_SELL_SIZE,
    K_VZ_N,
    LONG,
    MASK,
    N_BLOCKS,
    S_VZ_M2,
    S_VZ_MEAN,
    SHORT,
)
from feature_store.features.window import W_SIGNED, W_SIZE, W_TRADES, block_sum

flow_imbalance_30 = FeatureDef(
    "flow_imbalance_30", ORDER_FLOW, "sum(side*size)/sum(size) over the last 30 ticks, in [-1, 1].", warmup=30
)
flow_imbalance_180 = FeatureDef(
    "flow_imbalance_180",
    ORDER_FLOW,
    "sum(side*size)/sum(size) over the last 180 ticks, in [-1, 1].",
    warmup=180,
)
trade_intensity_30 = FeatureDef(
    "trade_intensity_30",
    ORDER_FLOW,
    "Trades per second over the last 30 ticks (time from the tick before them).",
    warmup=31,
)
trade_intensity_180 = FeatureDef(
    "trade_intensity_180",
    ORDER_FLOW,
    "Trades per second over the last 180 ticks (time from the tick before them).",
    warmup=181,
)
mean_trade_size_30 = FeatureDef(
    "mean_trade_size_30", ORDER_FLOW, "Mean size of the trades among the last 30 ticks.", warmup=30
)
trade_share_30 = FeatureDef(
    "trade_share_30", ORDER_FLOW, "Fraction of the last 30 ticks that are trades (size > 0).", warmup=30
)
aggressor_ratio_30 = FeatureDef(
    "aggressor_ratio_30",
    ORDER_FLOW,
    "Buyer-initiated trades / trades with a known aggressor among the last 30 ticks, in [0, 1].",
    warmup=30,
)
aggressor_ratio_180 = FeatureDef(
    "aggressor_ratio_180",
    ORDER_FLOW,
    "Buyer-initiated trades / trades with a known aggressor among the last 180 ticks, in [0, 1].",
    warmup=180,
)
size_bias_30 = FeatureDef(
    "size_bias_30",
    ORDER_FLOW,
    "log(mean buy trade size / mean sell trade size) over the last 30 ticks; NaN unless both sides traded.",
    warmup=30,
)
trade_size_spike_30 = FeatureDef(
    "trade_size_spike_30",
    ORDER_FLOW,
    "Largest trade size of the last 30 ticks / mean trade size of the last 180 ticks.",
    warmup=180,
)
volume_z_session = FeatureDef(
    "volume_z_session",
    ORDER_FLOW,
    "z-score of the traded size of the last 180 ticks against that quantity on every tick of the session so far.",
    warmup=181,
)
trade_share_180 = FeatureDef(
    "trade_share_180", ORDER_FLOW, "Fraction of the last 180 ticks that are trades (size > 0).", warmup=180
)
mean_trade_size_180 = FeatureDef(
    "mean_trade_size_180", ORDER_FLOW, "Mean size of the trades among the last 180 ticks.", warmup=180
)

FEATURES: tuple[FeatureDef, ...] = (
    flow_imbalance_30,
    flow_imbalance_180,
    trade_intensity_30,
    trade_intensity_180,
    mean_trade_size_30,
    trade_share_30,
    aggressor_ratio_30,
    aggressor_ratio_180,
    size_bias_30,
    trade_size_spike_30,
    volume_z_session,
    trade_share_180,
    mean_trade_size_180,
)
check_declarations(globals(), FEATURES)

_SLOT = {f.name: i for i, f in enumerate(FEATURES)}
FLOW_IMBALANCE_30 = _SLOT["flow_imbalance_30"]
FLOW_IMBALANCE_180 = _SLOT["flow_imbalance_180"]
TRADE_INTENSITY_30 = _SLOT["trade_intensity_30"]
TRADE_INTENSITY_180 = _SLOT["trade_intensity_180"]
MEAN_TRADE_SIZE_30 = _SLOT["mean_trade_size_30"]
TRADE_SHARE_30 = _SLOT["trade_share_30"]
AGGRESSOR_RATIO_30 = _SLOT["aggressor_ratio_30"]
AGGRESSOR_RATIO_180 = _SLOT["aggressor_ratio_180"]
SIZE_BIAS_30 = _SLOT["size_bias_30"]
TRADE_SIZE_SPIKE_30 = _SLOT["trade_size_spike_30"]
VOLUME_Z_SESSION = _SLOT["volume_z_session"]
TRADE_SHARE_180 = _SLOT["trade_share_180"]
MEAN_TRADE_SIZE_180 = _SLOT["mean_trade_size_180"]

NS_PER_S = 1e9
_JIT = {"cache": True, "nogil": True, "error_model": "numpy"}


@njit(**_JIT)
def compute(ring, ts_ring, fs, ks, n, ts, w30, w180, bs, out):
    """Write the order-flow features of the tick just folded in (the n-th of the session) into `out`."""
    if n >= SHORT:
        s_size = w30[W_SIZE]
        trades = w30[W_TRADES]
        if s_size > 0:
            out[FLOW_IMBALANCE_30] = w30[W_SIGNED] / s_size
        if trades > 0:
            out[MEAN_TRADE_SIZE_30] = s_size / trades
        out[TRADE_SHARE_30] = trades / SHORT
        if n > SHORT:
            span_ns = ts - ts_ring[(n - 1 - SHORT) & MASK]
            if span_ns > 0:
                out[TRADE_INTENSITY_30] = trades / (span_ns / NS_PER_S)
        _aggressors_30(ring, n, bs, out)

    if n >= LONG:
        s_size = w180[W_SIZE]
        trades = w180[W_TRADES]
        if s_size > 0:
            out[FLOW_IMBALANCE_180] = w180[W_SIGNED] / s_size
        if n > LONG:
            span_ns = ts - ts_ring[(n - 1 - LONG) & MASK]
            if span_ns > 0:
                out[TRADE_INTENSITY_180] = trades / (span_ns / NS_PER_S)
        buys = block_sum(bs, B_NBUY, 0, N_BLOCKS - 1)
        sells = block_sum(bs, B_NSELL, 0, N_BLOCKS - 1)
        if buys + sells > 0:
            out[AGGRESSOR_RATIO_180] = buys / (buys + sells)
        block_trades = block_sum(bs, B_TRADES, 0, N_BLOCKS - 1)
        volume = block_sum(bs, B_SIZE, 0, N_BLOCKS - 1)
        out[TRADE_SHARE_180] = block_trades / LONG
        if block_trades > 0:
            mean_size = volume / block_trades
            out[MEAN_TRADE_SIZE_180] = mean_size
            out[TRADE_SIZE_SPIKE_30] = bs[N_BLOCKS - 1, B_MAX_SIZE] / mean_size
        # Welford's running mean/variance of the session's 180-tick volumes, this tick's included.
        count = ks[K_VZ_N] + 1
        ks[K_VZ_N] = count
        delta = volume - fs[S_VZ_MEAN]
        fs[S_VZ_MEAN] += delta / count
        fs[S_VZ_M2] += delta * (volume - fs[S_VZ_MEAN])
        if count > 1 and fs[S_VZ_M2] > 0:
            out[VOLUME_Z_SESSION] = (volume - fs[S_VZ_MEAN]) / np.sqrt(fs[S_VZ_M2] / (count - 1))


@njit(**_JIT)
def _aggressors_30(ring, n, bs, out):
    if n >= LONG:  # the last 30 ticks are block 6, already summed
        last = bs[N_BLOCKS - 1]
        buys = last[B_NBUY]
        sells = last[B_NSELL]
        buy_size = last[B_BUY_SIZE]
        sell_size = last[B_SELL_SIZE]
    else:
        buys = 0.0
        sells = 0.0
        buy_size = 0.0
        sell_size = 0.0
        for k in range(SHORT):
            row = ring[(n - 1 - k) & MASK]
            buys += row[C_BUY]
            sells += row[C_SELL]
            buy_size += row[C_BUY_SIZE]
            sell_size += row[C_SELL_SIZE]
    if buys + sells > 0:
        out[AGGRESSOR_RATIO_30] = buys / (buys + sells)
    if buys > 0 and sells > 0:
        out[SIZE_BIAS_30] = np.log((buy_size / buys) / (sell_size / sells))
