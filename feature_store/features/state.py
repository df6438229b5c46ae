"""The feature kernel's state of one symbol's session: array layout, `new_state` and `reset`.

Everything the kernel remembers lives in six numpy arrays, so the online engine can keep one set
per symbol and the batch engine can loop over a day inside numba. Names here are the contract
between `kernel.py`, `window.py` and the group modules; none of them allocate.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# Ring buffers hold the last CAP ticks of the session; CAP is a power of two so `& MASK` wraps.
CAP = 256
MASK = CAP - 1
SHORT = 30
MID = 90
LONG = 180  # the 180-tick window; features reading the tick before it need 181 ticks
N_BLOCKS = 6
BLOCK = 30

# Ring channels: columns of the (CAP, N_CHANNELS) float ring, one row per tick.
(
    C_PRICE,  # last traded price
    C_RET,  # log return against the previous tick, bps (NaN on the session's first tick)
    C_SIGNED,  # side * size
    C_SIZE,  # traded size (0 for a quote-only tick)
    C_TRADE,  # 1 for a trade, else 0
    C_L1,  # L1 size imbalance (NaN without book sizes)
    C_BUY,  # 1 for a buyer-initiated trade
    C_SELL,  # 1 for a seller-initiated trade
    C_BUY_SIZE,
    C_SELL_SIZE,
    C_BID,
    C_ASK,
    C_BID_SIZE,
    C_ASK_SIZE,
    C_DEPTH,  # bid_size + ask_size
    C_SPREAD,  # ask - bid in price ticks
    C_MICRO,  # microprice - mid in price ticks
    C_WIDEN,  # 1 if the spread is wider than on the previous tick (NaN if either is missing)
    C_FLICKER,  # 1 for a quote-only tick that moves the best bid or ask price
    C_LARGE_SIGNED,  # side * size of a large trade (see groups/smart_money.py), else 0
    C_SMALL_SIGNED,  # side * size of a small trade, else 0
    C_LARGE_SIZE,  # size of a large trade, else 0
    C_STOCH_K,  # stochastic %K 14 of the tick (for %D)
    C_ABS_DP,  # |price change| against the previous tick (NaN on the session's first tick)
) = range(24)
N_CHANNELS = 24

# Per-block statistics of the 180-tick window, rows of the (N_BLOCKS, N_STATS) array `window.blocks`
# fills; block 0 here is block 1 of the feature names (the oldest). "open" is the tick before the block.
(
    B_OPEN,  # price of the tick before the block (NaN when that is before the session)
    B_CLOSE,  # price of the block's last tick
    B_HIGH,
    B_LOW,
    B_SY,  # sum of (price - current price)
    B_SYY,  # sum of (price - current price)^2
    B_SXY,  # sum of x * (price - current price), x = 0..29 within the block
    B_RET,  # sum of tick log returns (bps)
    B_RET2,
    B_RET3,
    B_RET2_UP,  # sum of squared positive returns
    B_ABS_DP,  # sum of |price change| (price units)
    B_SIZE,
    B_SIGNED,
    B_TRADES,
    B_NBUY,
    B_NSELL,
    B_BUY_SIZE,
    B_SELL_SIZE,
    B_MAX_SIZE,
    B_L1,
    B_BID_SIZE,
    B_ASK_SIZE,
    B_DEPTH,
    B_DEPTH2,
    B_DEPTH_XY,  # sum of x * depth
    B_SPREAD,
    B_MICRO,
    B_WIDEN,
    B_FLICKER,
    B_LARGE_SIGNED,
    B_SMALL_SIGNED,
    B_LARGE_SIZE,
    B_T_OPEN,  # time of the tick before the block minus the current time, ns (NaN as for B_OPEN)
    B_T_CLOSE,  # time of the block's last tick minus the current time, ns
) = range(35)
N_STATS = 35

# Float session state (`fs`).
(
    S_PV,  # sum of price * size over the session's trades
    S_V,  # sum of size
    S_HIGH,
    S_LOW,
    S_OPEN,  # price of the session's first tick
    S_VW_MEAN,  # size-weighted mean of (trade price - open), West's incremental form
    S_VW_M2,  # size-weighted sum of squared deviations from S_VW_MEAN
    S_SIGNED,  # sum of side * size
    S_EMA12,
    S_EMA26,
    S_MACD_SIGNAL,
    S_RSI_GAIN,
    S_RSI_LOSS,
    S_ATR,
    S_PDM,
    S_MDM,
    S_ADX,
    S_VZ_MEAN,  # Welford mean of the session's 180-tick volumes
    S_VZ_M2,
) = range(19)
N_FLOAT_STATE = 19

# Integer session state (`ks`).
(
    K_N,  # ticks seen this session
    K_LAST_TS,  # UTC epoch ns of the last tick
    K_M,  # trade sizes held in the sorted lookback buffer
    K_WIDTH,  # volume-profile bucket width in price ticks (0 until the first tick)
    K_POC,  # bucket of the point of control (-1 until the first trade)
    K_VAL,  # lowest bucket of the value area
    K_VAH,  # highest bucket of the value area
    K_KMIN,  # lowest bucket that holds volume
    K_KMAX,
    K_TS_HIGH,  # time of the latest tick at the session high
    K_TS_LOW,
    K_STREAK,  # signed run of same-direction price changes
    K_REGIME,  # regime code of the previous tick (-2 before the first reading)
    K_REGIME_AGE,
    K_DX_N,  # valid DX readings folded into ADX
    K_VZ_N,  # 180-tick volumes folded into the Welford state
) = range(16)
N_INT_STATE = 16

# Session volume profile: N_BUCKETS price buckets centred on the session's first price.
N_BUCKETS = 2048
BUCKET_BPS = 1.0  # a bucket spans at least this much of the opening price, in whole price ticks

NO_REGIME = -2


def new_state() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fresh, reset kernel state: (ring, ts_ring, fs, ks, sizes, profile)."""
    state = (
        np.empty((CAP, N_CHANNELS), dtype=np.float64),
        np.empty(CAP, dtype=np.int64),
        np.empty(N_FLOAT_STATE, dtype=np.float64),
        np.empty(N_INT_STATE, dtype=np.int64),
        np.empty(CAP, dtype=np.float64),
        np.empty(N_BUCKETS, dtype=np.float64),
    )
    reset(*state)
    return state


@njit(cache=True, nogil=True)
def reset(ring, ts_ring, fs, ks, sizes, profile):
    """Forget everything: the next tick starts a session (windows and session features restart)."""
    ring[:, :] = np.nan
    ts_ring[:] = 0
    fs[:] = 0.0
    fs[S_HIGH] = -np.inf
    fs[S_LOW] = np.inf
    for slot in (S_OPEN, S_EMA12, S_EMA26, S_MACD_SIGNAL, S_RSI_GAIN, S_RSI_LOSS, S_ATR, S_PDM, S_MDM, S_ADX):
        fs[slot] = np.nan
    ks[:] = 0
    ks[K_LAST_TS] = np.iinfo(np.int64).min
    ks[K_POC] = -1
    ks[K_VAL] = -1
    ks[K_VAH] = -1
    ks[K_KMIN] = N_BUCKETS
    ks[K_KMAX] = -1
    ks[K_REGIME] = NO_REGIME
    sizes[:] = 0.0
    profile[:] = 0.0
