"""Window statistics shared by the feature groups, computed once per tick from the ring.

`starter_sums` is the walking skeleton's window pass, kept operation for operation so the original
25 features keep their exact values; `blocks` reads the 180-tick window as 6 blocks of 30 ticks.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from feature_store.features.state import (
    B_ABS_DP,
    B_ASK_SIZE,
    B_BID_SIZE,
    B_BUY_SIZE,
    B_CLOSE,
    B_DEPTH,
    B_DEPTH2,
    B_DEPTH_XY,
    B_FLICKER,
    B_HIGH,
    B_L1,
    B_LARGE_SIGNED,
    B_LARGE_SIZE,
    B_LOW,
    B_MAX_SIZE,
    B_MICRO,
    B_NBUY,
    B_NSELL,
    B_OPEN,
    B_RET,
    B_RET2,
    B_RET2_UP,
    B_RET3,
    B_SELL_SIZE,
    B_SIGNED,
    B_SIZE,
    B_SMALL_SIGNED,
    B_SPREAD,
    B_SXY,
    B_SY,
    B_SYY,
    B_T_CLOSE,
    B_T_OPEN,
    B_TRADES,
    B_WIDEN,
    BLOCK,
    C_ABS_DP,
    C_ASK_SIZE,
    C_BID_SIZE,
    C_BUY,
    C_BUY_SIZE,
    C_DEPTH,
    C_FLICKER,
    C_L1,
    C_LARGE_SIGNED,
    C_LARGE_SIZE,
    C_MICRO,
    C_PRICE,
    C_RET,
    C_SELL,
    C_SELL_SIZE,
    C_SIGNED,
    C_SIZE,
    C_SMALL_SIGNED,
    C_SPREAD,
    C_TRADE,
    C_WIDEN,
    LONG,
    MASK,
    N_BLOCKS,
)

_JIT = {"cache": True, "nogil": True, "error_model": "numpy"}

# Rows of the starter sums array `ws[w]` (one row for the 30-tick and one for the 180-tick window).
W_RET, W_RET2, W_SIGNED, W_SIZE, W_TRADES, W_L1, W_HIGH, W_LOW, W_SY, W_SXY = range(10)
N_WINDOW_SUMS = 10
REL_VAR_FLOOR = 1e-13  # a variance below this share of the mean square is rounding noise, not dispersion


@njit(**_JIT)
def starter_sums(ring, n, w, price, into):
    """Sums over the last `w` ticks (n >= w) into `into`: returns, flow, trades, extremes, slope terms."""
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
        r = ring[j, C_RET]
        s_ret += r
        s_ret2 += r * r
        s_signed += ring[j, C_SIGNED]
        s_size += ring[j, C_SIZE]
        trades += ring[j, C_TRADE]
        s_l1 += ring[j, C_L1]
        p = ring[j, C_PRICE]
        hi = max(hi, p)
        lo = min(lo, p)
        # Prices relative to the current one keep the slope sums small (less cancellation).
        y = p - price
        s_y += y
        s_xy += (w - 1 - k) * y
    into[W_RET] = s_ret
    into[W_RET2] = s_ret2
    into[W_SIGNED] = s_signed
    into[W_SIZE] = s_size
    into[W_TRADES] = trades
    into[W_L1] = s_l1
    into[W_HIGH] = hi
    into[W_LOW] = lo
    into[W_SY] = s_y
    into[W_SXY] = s_xy


@njit(**_JIT)
def std(s1, s2, w):
    """Sample std from a sum and a sum of squares over `w` values (the starter features' formula)."""
    var = (s2 - s1 * s1 / w) / (w - 1)
    return np.sqrt(max(var, 0.0))  # rounding can push a zero variance slightly negative


@njit(**_JIT)
def centered_ss(s1, s2, w):
    """Sum of squared deviations from the mean of `w` values; 0 where it is within rounding of 0.

    Values that are all equal can leave a tiny positive residue of cancellation; calling that
    dispersion would turn a z-score into noise divided by noise. NaN sums give NaN.
    """
    ss = s2 - s1 * s1 / w
    if ss <= REL_VAR_FLOOR * abs(s2):
        return 0.0 if ss == ss else np.nan
    return ss


@njit(**_JIT)
def blocks(ring, ts_ring, n, price, ts, bs, w180):
    """Fill `bs` (N_BLOCKS, N_STATS) with the statistics of the 6 blocks of the last 180 ticks (n >= 180),
    and `w180` with the starter sums over the same ticks.

    Row 0 is the oldest block. Returns, price changes, spread widening and quote flicker of a block's
    first tick compare with the tick before it, so block 0 has NaN there until 181 ticks are seen.
    Ticks are read newest first, the order `starter_sums` adds them in, so the starter features keep
    their exact values while the window is read once.
    """
    base = n - LONG
    s_ret = 0.0
    s_ret2 = 0.0
    s_signed_all = 0.0
    s_size_all = 0.0
    trades_all = 0.0
    s_l1_all = 0.0
    hi_all = -np.inf
    lo_all = np.inf
    s_y_all = 0.0
    s_xy_all = 0.0
    k = 0  # ticks back from the current one
    for b in range(N_BLOCKS - 1, -1, -1):
        start = base + b * BLOCK
        hi = -np.inf
        lo = np.inf
        s_y = 0.0
        s_yy = 0.0
        s_xy = 0.0
        s_r = 0.0
        s_r2 = 0.0
        s_r3 = 0.0
        s_r2_up = 0.0
        s_abs_dp = 0.0
        s_size = 0.0
        s_signed = 0.0
        s_trades = 0.0
        s_nbuy = 0.0
        s_nsell = 0.0
        s_buy_size = 0.0
        s_sell_size = 0.0
        max_size = 0.0
        s_l1 = 0.0
        s_bid = 0.0
        s_ask = 0.0
        s_depth = 0.0
        s_depth2 = 0.0
        s_depth_xy = 0.0
        s_spread = 0.0
        s_micro = 0.0
        s_widen = 0.0
        s_flicker = 0.0
        s_large = 0.0
        s_small = 0.0
        s_large_size = 0.0
        for x in range(BLOCK - 1, -1, -1):
            row = ring[(start + x) & MASK]
            p = row[C_PRICE]
            r = row[C_RET]
            signed = row[C_SIGNED]
            size = row[C_SIZE]
            trade = row[C_TRADE]
            l1 = row[C_L1]
            y = p - price  # relative to the current price: small slope sums, less cancellation
            # starter sums over the whole window, operation for operation as in `starter_sums`
            s_ret += r
            s_ret2 += r * r
            s_signed_all += signed
            s_size_all += size
            trades_all += trade
            s_l1_all += l1
            hi_all = max(hi_all, p)
            lo_all = min(lo_all, p)
            s_y_all += y
            s_xy_all += (LONG - 1 - k) * y
            k += 1
            # this block
            hi = max(hi, p)
            lo = min(lo, p)
            s_y += y
            s_yy += y * y
            s_xy += x * y
            r2 = r * r
            s_r += r
            s_r2 += r2
            s_r3 += r2 * r
            if r > 0:
                s_r2_up += r2
            s_abs_dp += row[C_ABS_DP]
            s_size += size
            max_size = max(max_size, size)
            s_signed += signed
            s_trades += trade
            s_nbuy += row[C_BUY]
            s_nsell += row[C_SELL]
            s_buy_size += row[C_BUY_SIZE]
            s_sell_size += row[C_SELL_SIZE]
            s_l1 += l1
            s_bid += row[C_BID_SIZE]
            s_ask += row[C_ASK_SIZE]
            d = row[C_DEPTH]
            s_depth += d
            s_depth2 += d * d
            s_depth_xy += x * d
            s_spread += row[C_SPREAD]
            s_micro += row[C_MICRO]
            s_widen += row[C_WIDEN]
            s_flicker += row[C_FLICKER]
            s_large += row[C_LARGE_SIGNED]
            s_small += row[C_SMALL_SIGNED]
            s_large_size += row[C_LARGE_SIZE]
        out = bs[b]
        if start > 0:
            before = (start - 1) & MASK
            out[B_OPEN] = ring[before, C_PRICE]
            out[B_T_OPEN] = float(ts_ring[before] - ts)
        else:
            out[B_OPEN] = np.nan
            out[B_T_OPEN] = np.nan
        last = (start + BLOCK - 1) & MASK
        out[B_CLOSE] = ring[last, C_PRICE]
        out[B_T_CLOSE] = float(ts_ring[last] - ts)
        out[B_HIGH] = hi
        out[B_LOW] = lo
        out[B_SY] = s_y
        out[B_SYY] = s_yy
        out[B_SXY] = s_xy
        out[B_RET] = s_r
        out[B_RET2] = s_r2
        out[B_RET3] = s_r3
        out[B_RET2_UP] = s_r2_up
        out[B_ABS_DP] = s_abs_dp
        out[B_SIZE] = s_size
        out[B_SIGNED] = s_signed
        out[B_TRADES] = s_trades
        out[B_NBUY] = s_nbuy
        out[B_NSELL] = s_nsell
        out[B_BUY_SIZE] = s_buy_size
        out[B_SELL_SIZE] = s_sell_size
        out[B_MAX_SIZE] = max_size
        out[B_L1] = s_l1
        out[B_BID_SIZE] = s_bid
        out[B_ASK_SIZE] = s_ask
        out[B_DEPTH] = s_depth
        out[B_DEPTH2] = s_depth2
        out[B_DEPTH_XY] = s_depth_xy
        out[B_SPREAD] = s_spread
        out[B_MICRO] = s_micro
        out[B_WIDEN] = s_widen
        out[B_FLICKER] = s_flicker
        out[B_LARGE_SIGNED] = s_large
        out[B_SMALL_SIGNED] = s_small
        out[B_LARGE_SIZE] = s_large_size
    w180[W_RET] = s_ret
    w180[W_RET2] = s_ret2
    w180[W_SIGNED] = s_signed_all
    w180[W_SIZE] = s_size_all
    w180[W_TRADES] = trades_all
    w180[W_L1] = s_l1_all
    w180[W_HIGH] = hi_all
    w180[W_LOW] = lo_all
    w180[W_SY] = s_y_all
    w180[W_SXY] = s_xy_all


@njit(**_JIT)
def block_sum(bs, stat, first, last):
    """Sum of one statistic over blocks `first`..`last` (0-based, inclusive)."""
    total = 0.0
    for b in range(first, last + 1):
        total += bs[b, stat]
    return total
