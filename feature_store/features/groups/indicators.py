"""Classic technical indicators (group `indicator`), on the tick price series: one observation per tick.

Periods count ticks. Moving averages, Bollinger, stochastic, Williams %R, CCI and momentum read the
last N prices. EMA, MACD, RSI, ATR and ADX are recursive from the session's first tick (pandas
`ewm(adjust=False)`: EMA alpha = 2/(span+1), Wilder smoothing alpha = 1/14) and shown once warm. With
one price per tick a "bar" has high = low = close, so the true range is |price change| and the
directional movements are the up and down price changes. Price-valued outputs are scaled by price
(ratios or bps) so one model can read several instruments.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from feature_store.features.spec import INDICATOR, FeatureDef, check_declarations
from feature_store.features.state import (
    C_PRICE,
    C_RET,
    C_STOCH_K,
    K_DX_N,
    MASK,
    S_ADX,
    S_ATR,
    S_EMA12,
    S_EMA26,
    S_MACD_SIGNAL,
    S_MDM,
    S_PDM,
    S_RSI_GAIN,
    S_RSI_LOSS,
)


def _f(name: str, description: str, warmup: int) -> FeatureDef:
    return FeatureDef(name, INDICATOR, description, warmup=warmup)


price_sma_5_ratio = _f("price_sma_5_ratio", "price / simple moving average of the last 5 prices.", 5)
price_sma_10_ratio = _f("price_sma_10_ratio", "price / simple moving average of the last 10 prices.", 10)
price_sma_20_ratio = _f("price_sma_20_ratio", "price / simple moving average of the last 20 prices.", 20)
sma_5_20_ratio = _f("sma_5_20_ratio", "SMA of the last 5 prices / SMA of the last 20 prices.", 20)
price_ema_12_ratio = _f("price_ema_12_ratio", "price / EMA(span 12) of price.", 12)
price_ema_26_ratio = _f("price_ema_26_ratio", "price / EMA(span 26) of price.", 26)
ema_12_26_ratio = _f("ema_12_26_ratio", "EMA(span 12) / EMA(span 26) of price.", 26)
rsi_14 = _f(
    "rsi_14",
    "RSI 14: 100 * Wilder-smoothed gains / (gains + losses) of price changes; NaN if price never moved.",
    15,
)
macd_bps = _f("macd_bps", "MACD line: EMA 12 - EMA 26 of price, in bps of price.", 26)
macd_signal_bps = _f("macd_signal_bps", "MACD signal: EMA(span 9) of the MACD line, in bps of price.", 34)
macd_hist_bps = _f("macd_hist_bps", "MACD histogram: MACD line - signal, in bps of price.", 34)
bb_upper_bps = _f(
    "bb_upper_bps", "Upper Bollinger band (SMA 20 + 2 population std of 20 prices) / price - 1, in bps.", 20
)
bb_lower_bps = _f("bb_lower_bps", "Lower Bollinger band (SMA 20 - 2 population std) / price - 1, in bps.", 20)
bb_position = _f(
    "bb_position", "(price - lower band) / (upper - lower band); NaN if the 20 prices are equal.", 20
)
bb_width_bps = _f("bb_width_bps", "(upper - lower Bollinger band) / SMA 20, in bps.", 20)
stoch_k_14 = _f(
    "stoch_k_14", "Stochastic %K: 100 * (price - low) / (high - low) of the last 14 prices; NaN if flat.", 14
)
stoch_d_3 = _f("stoch_d_3", "Stochastic %D: mean %K of the last 3 ticks (NaN if any is NaN).", 16)
williams_r_14 = _f(
    "williams_r_14",
    "Williams %R: -100 * (high - price) / (high - low) of the last 14 prices; NaN if flat.",
    14,
)
cci_20 = _f(
    "cci_20",
    "CCI 20: (price - SMA 20) / (0.015 * mean absolute deviation from it); NaN if the 20 are equal.",
    20,
)
atr_14_bps = _f(
    "atr_14_bps", "ATR 14: Wilder-smoothed |price change| (1-tick true range), in bps of price.", 15
)
adx_14 = _f(
    "adx_14",
    "ADX 14: Wilder-smoothed DX = 100 |+DI - -DI| / (+DI + -DI), from the tick +DI/-DI are warm.",
    28,
)
plus_di_14 = _f("plus_di_14", "+DI 14: 100 * Wilder-smoothed up-moves / ATR; NaN if price never moved.", 15)
minus_di_14 = _f(
    "minus_di_14", "-DI 14: 100 * Wilder-smoothed down-moves / ATR; NaN if price never moved.", 15
)
momentum_10_ticks = _f("momentum_10_ticks", "Momentum 10: price - price 10 ticks ago, in price ticks.", 11)
volatility_20_bps = _f(
    "volatility_20_bps", "Volatility 20: sample std of the last 20 tick log returns, in bps.", 21
)
ret_lag_1 = _f("ret_lag_1", "Lag 1: the previous tick's one-tick log return, in bps.", 3)
ret_lag_2 = _f("ret_lag_2", "Lag 2: the one-tick log return of 2 ticks ago, in bps.", 4)
ret_lag_5 = _f("ret_lag_5", "Lag 5: the one-tick log return of 5 ticks ago, in bps.", 7)

FEATURES: tuple[FeatureDef, ...] = (
    price_sma_5_ratio,
    price_sma_10_ratio,
    price_sma_20_ratio,
    sma_5_20_ratio,
    price_ema_12_ratio,
    price_ema_26_ratio,
    ema_12_26_ratio,
    rsi_14,
    macd_bps,
    macd_signal_bps,
    macd_hist_bps,
    bb_upper_bps,
    bb_lower_bps,
    bb_position,
    bb_width_bps,
    stoch_k_14,
    stoch_d_3,
    williams_r_14,
    cci_20,
    atr_14_bps,
    adx_14,
    plus_di_14,
    minus_di_14,
    momentum_10_ticks,
    volatility_20_bps,
    ret_lag_1,
    ret_lag_2,
    ret_lag_5,
)
check_declarations(globals(), FEATURES)

_SLOT = {f.name: i for i, f in enumerate(FEATURES)}
PRICE_SMA_5_RATIO = _SLOT["price_sma_5_ratio"]
PRICE_SMA_10_RATIO = _SLOT["price_sma_10_ratio"]
PRICE_SMA_20_RATIO = _SLOT["price_sma_20_ratio"]
SMA_5_20_RATIO = _SLOT["sma_5_20_ratio"]
PRICE_EMA_12_RATIO = _SLOT["price_ema_12_ratio"]
PRICE_EMA_26_RATIO = _SLOT["price_ema_26_ratio"]
EMA_12_26_RATIO = _SLOT["ema_12_26_ratio"]
RSI_14 = _SLOT["rsi_14"]
MACD_BPS = _SLOT["macd_bps"]
MACD_SIGNAL_BPS = _SLOT["macd_signal_bps"]
MACD_HIST_BPS = _SLOT["macd_hist_bps"]
BB_UPPER_BPS = _SLOT["bb_upper_bps"]
BB_LOWER_BPS = _SLOT["bb_lower_bps"]
BB_POSITION = _SLOT["bb_position"]
BB_WIDTH_BPS = _SLOT["bb_width_bps"]
STOCH_K_14 = _SLOT["stoch_k_14"]
STOCH_D_3 = _SLOT["stoch_d_3"]
WILLIAMS_R_14 = _SLOT["williams_r_14"]
CCI_20 = _SLOT["cci_20"]
ATR_14_BPS = _SLOT["atr_14_bps"]
ADX_14 = _SLOT["adx_14"]
PLUS_DI_14 = _SLOT["plus_di_14"]
MINUS_DI_14 = _SLOT["minus_di_14"]
MOMENTUM_10_TICKS = _SLOT["momentum_10_ticks"]
VOLATILITY_20_BPS = _SLOT["volatility_20_bps"]
RET_LAG_1 = _SLOT["ret_lag_1"]
RET_LAG_2 = _SLOT["ret_lag_2"]
RET_LAG_5 = _SLOT["ret_lag_5"]

BPS = 1e4
A12 = 2.0 / 13.0
A26 = 2.0 / 27.0
A9 = 2.0 / 10.0
WILDER = 1.0 / 14.0
_JIT = {"cache": True, "nogil": True, "error_model": "numpy"}


@njit(**_JIT)
def _ewm(previous, value, alpha):
    # pandas' adjust=False recursion, written the same way so the reference agrees to the last bits
    return (1.0 - alpha) * previous + alpha * value


@njit(**_JIT)
def compute(ring, fs, ks, n, price, tick_size, out):
    """Fold the tick (the n-th of the session) into the indicator state and write the indicators."""
    _recursive(ring, fs, ks, n, price, out)
    _moving(ring, n, price, out)
    if n >= 11:
        out[MOMENTUM_10_TICKS] = (price - ring[(n - 11) & MASK, C_PRICE]) / tick_size
    if n >= 3:
        out[RET_LAG_1] = ring[(n - 2) & MASK, C_RET]
    if n >= 4:
        out[RET_LAG_2] = ring[(n - 3) & MASK, C_RET]
    if n >= 7:
        out[RET_LAG_5] = ring[(n - 6) & MASK, C_RET]
    if n >= 21:
        s = 0.0
        for k in range(20):
            s += ring[(n - 1 - k) & MASK, C_RET]
        mean = s / 20.0
        ss = 0.0
        for k in range(20):
            d = ring[(n - 1 - k) & MASK, C_RET] - mean
            ss += d * d
        out[VOLATILITY_20_BPS] = np.sqrt(ss / 19.0)


@njit(**_JIT)
def _recursive(ring, fs, ks, n, price, out):
    if n == 1:
        fs[S_EMA12] = price
        fs[S_EMA26] = price
        fs[S_MACD_SIGNAL] = 0.0  # the MACD line is 0 at the first tick
        return
    fs[S_EMA12] = _ewm(fs[S_EMA12], price, A12)
    fs[S_EMA26] = _ewm(fs[S_EMA26], price, A26)
    macd = fs[S_EMA12] - fs[S_EMA26]
    fs[S_MACD_SIGNAL] = _ewm(fs[S_MACD_SIGNAL], macd, A9)
    if n >= 12:
        out[PRICE_EMA_12_RATIO] = price / fs[S_EMA12]
    if n >= 26:
        out[PRICE_EMA_26_RATIO] = price / fs[S_EMA26]
        out[EMA_12_26_RATIO] = fs[S_EMA12] / fs[S_EMA26]
        out[MACD_BPS] = macd / price * BPS
    if n >= 34:
        out[MACD_SIGNAL_BPS] = fs[S_MACD_SIGNAL] / price * BPS
        out[MACD_HIST_BPS] = (macd - fs[S_MACD_SIGNAL]) / price * BPS

    change = price - ring[(n - 2) & MASK, C_PRICE]
    up = max(change, 0.0)
    down = max(-change, 0.0)
    if n == 2:
        fs[S_RSI_GAIN] = up
        fs[S_RSI_LOSS] = down
        fs[S_ATR] = abs(change)
        fs[S_PDM] = up
        fs[S_MDM] = down
        return
    fs[S_RSI_GAIN] = _ewm(fs[S_RSI_GAIN], up, WILDER)
    fs[S_RSI_LOSS] = _ewm(fs[S_RSI_LOSS], down, WILDER)
    fs[S_ATR] = _ewm(fs[S_ATR], abs(change), WILDER)
    fs[S_PDM] = _ewm(fs[S_PDM], up, WILDER)
    fs[S_MDM] = _ewm(fs[S_MDM], down, WILDER)
    if n < 15:
        return
    moves = fs[S_RSI_GAIN] + fs[S_RSI_LOSS]
    if moves > 0:
        out[RSI_14] = 100.0 * fs[S_RSI_GAIN] / moves
    out[ATR_14_BPS] = fs[S_ATR] / price * BPS
    if fs[S_ATR] > 0:
        plus_di = 100.0 * fs[S_PDM] / fs[S_ATR]
        minus_di = 100.0 * fs[S_MDM] / fs[S_ATR]
        out[PLUS_DI_14] = plus_di
        out[MINUS_DI_14] = minus_di
        if plus_di + minus_di > 0:
            dx = 100.0 * abs(plus_di - minus_di) / (plus_di + minus_di)
            # Undefined DX readings are skipped, not counted as zero (pandas ewm ignore_na=True).
            fs[S_ADX] = dx if ks[K_DX_N] == 0 else _ewm(fs[S_ADX], dx, WILDER)
            ks[K_DX_N] += 1
    if ks[K_DX_N] >= 14:
        out[ADX_14] = fs[S_ADX]


@njit(**_JIT)
def _moving(ring, n, price, out):
    row = ring[(n - 1) & MASK]
    row[C_STOCH_K] = np.nan
    if n < 5:
        return
    s5 = 0.0
    s10 = 0.0
    s20 = 0.0
    hi = -np.inf
    lo = np.inf
    for k in range(min(n, 20)):
        p = ring[(n - 1 - k) & MASK, C_PRICE]
        if k < 5:
            s5 += p
        if k < 10:
            s10 += p
        s20 += p
        if k < 14:
            hi = max(hi, p)
            lo = min(lo, p)
    sma5 = s5 / 5.0
    out[PRICE_SMA_5_RATIO] = price / sma5
    if n >= 10:
        out[PRICE_SMA_10_RATIO] = price / (s10 / 10.0)
    if n >= 14 and hi > lo:
        k_value = 100.0 * (price - lo) / (hi - lo)
        row[C_STOCH_K] = k_value
        out[STOCH_K_14] = k_value
        out[WILLIAMS_R_14] = -100.0 * (hi - price) / (hi - lo)
    if n >= 16:
        out[STOCH_D_3] = (k_value_at(ring, n, 0) + k_value_at(ring, n, 1) + k_value_at(ring, n, 2)) / 3.0
    if n < 20:
        return
    sma20 = s20 / 20.0
    out[PRICE_SMA_20_RATIO] = price / sma20
    out[SMA_5_20_RATIO] = sma5 / sma20
    ss = 0.0
    s_abs = 0.0
    hi20 = -np.inf
    lo20 = np.inf
    for k in range(20):
        p = ring[(n - 1 - k) & MASK, C_PRICE]
        hi20 = max(hi20, p)
        lo20 = min(lo20, p)
        d = p - sma20
        ss += d * d
        s_abs += abs(d)
    if hi20 == lo20:
        # Twenty equal prices: the mean can still differ from them in the last bit; no dispersion.
        ss = 0.0
        s_abs = 0.0
    band = 2.0 * np.sqrt(ss / 20.0)
    upper = sma20 + band
    lower = sma20 - band
    out[BB_UPPER_BPS] = (upper / price - 1.0) * BPS
    out[BB_LOWER_BPS] = (lower / price - 1.0) * BPS
    out[BB_WIDTH_BPS] = (upper - lower) / sma20 * BPS
    if upper > lower:
        out[BB_POSITION] = (price - lower) / (upper - lower)
    if s_abs > 0:
        out[CCI_20] = (price - sma20) / (0.015 * (s_abs / 20.0))


@njit(**_JIT)
def k_value_at(ring, n, lag):
    """%K stored with the tick `lag` ticks before the current one (NaN where it was undefined)."""
    return ring[(n - 1 - lag) & MASK, C_STOCH_K]
