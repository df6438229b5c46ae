"""A slow, literal pandas implementation of the catalogue: the unit tests' oracle and the benchmark baseline.

It is the reference design's approach — for each tick, slice the session so far and its trailing
window as DataFrames and compute every feature from its written definition with pandas/numpy — and
shares no code with the numba kernel beyond the instrument's session bounds. Quadratic in the
session length; use it on a few hundred ticks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd

from feature_store.features.definitions import FEATURE_NAMES
from feature_store.features.spec import BLOCK_TICKS, N_BLOCKS
from feature_store.instruments import Instrument

BPS = 1e4
WINDOW = N_BLOCKS * BLOCK_TICKS
NAN = float("nan")


def _ratio(num: float, den: float) -> float:
    """num / den, NaN when den is 0 or either is NaN (a ratio of nothing has no value)."""
    if den == 0 or math.isnan(den) or math.isnan(num):
        return NAN
    return num / den


def _std(values: pd.Series, ddof: int = 1) -> float:
    """Std with NaN propagation and exact zero for equal values (pandas' rolling noise aside)."""
    if values.isna().any():
        return NAN
    if values.nunique() == 1:
        return 0.0
    return float(values.std(ddof=ddof))


def _slope(values: pd.Series) -> float:
    """Least-squares slope of `values` against 0, 1, 2, ...; NaN if any value is missing."""
    if values.isna().any():
        return NAN
    x = np.arange(len(values), dtype=float)
    return float(np.polyfit(x, values.to_numpy(dtype=float), 1)[0])


def _mean(values: pd.Series) -> float:
    return float(values.mean(skipna=False))


def per_tick_inputs(day: pd.DataFrame, instrument: Instrument) -> pd.DataFrame:
    """One trading day's ticks with the per-tick quantities the definitions use (each from ticks <= it)."""
    tick = instrument.tick_size
    price = day["price"].astype(float).reset_index(drop=True)
    size = day["size"].astype(float).reset_index(drop=True)
    side = day["side"].astype(float).reset_index(drop=True)
    book = {c: day[c].astype(float).reset_index(drop=True) for c in ("bid", "ask", "bid_size", "ask_size")}
    frame = pd.DataFrame({"price": price, "size": size, "side": side, **book})
    frame["ts"] = day["ts"].dt.tz_convert("UTC").astype("datetime64[ns, UTC]").array.asi8
    frame["volume"] = day["volume"].astype(float).to_numpy()
    frame["ret"] = np.log(price / price.shift(1)) * BPS
    frame["traded"] = size > 0
    frame["signed"] = side * size
    frame["buy"] = frame["traded"] & (side > 0)
    frame["sell"] = frame["traded"] & (side < 0)
    depth = book["bid_size"] + book["ask_size"]
    has_depth = depth > 0
    frame["depth"] = depth
    frame["l1"] = ((book["bid_size"] - book["ask_size"]) / depth).where(has_depth)
    mid = (book["bid"] + book["ask"]) / 2
    micro = (book["bid"] * book["ask_size"] + book["ask"] * book["bid_size"]) / depth
    frame["micro"] = ((micro - mid) / tick).where(has_depth)
    frame["spread"] = (book["ask"] - book["bid"]) / tick
    prev_spread = frame["spread"].shift(1)
    frame["widen"] = (
        (frame["spread"] > prev_spread).astype(float).where(frame["spread"].notna() & prev_spread.notna())
    )
    quotes = [book["bid"], book["ask"], book["bid"].shift(1), book["ask"].shift(1)]
    known = pd.concat(quotes, axis=1).notna().all(axis=1)
    moved = (book["bid"] != quotes[2]) | (book["ask"] != quotes[3])
    frame["flicker"] = (moved & ~frame["traded"]).astype(float).where(known)
    frame["large"], frame["small"], frame["q90"], frame["q50"] = _size_classes(size)
    return frame


def _size_classes(size: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Large (> nearest-rank 90th percentile) / small (<= median) against the previous 180 ticks' trades."""
    n = len(size)
    large, small = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    q90s, q50s = np.full(n, NAN), np.full(n, NAN)
    values = size.to_numpy()
    for j in range(n):
        lookback = values[max(0, j - WINDOW) : j]
        trades = np.sort(lookback[lookback > 0])
        m = len(trades)
        if m < 10:
            continue
        q90s[j] = trades[math.ceil(9 * m / 10) - 1]
        q50s[j] = trades[math.ceil(m / 2) - 1]
        if values[j] > 0:
            large[j] = values[j] > q90s[j]
            small[j] = not large[j] and values[j] <= q50s[j]
    return large, small, q90s, q50s


class _Tick:
    """The session so far (`s`, a DataFrame) at one tick, with the slices the definitions talk about."""

    def __init__(self, session: pd.DataFrame, i: int, instrument: Instrument, bounds: tuple[int, int]):
        self.s = session.iloc[: i + 1]
        self.n = i + 1
        self.last = self.s.iloc[-1]
        self.p = float(self.last["price"])
        self.tick = instrument.tick_size
        self.open_ns, self.close_ns = bounds

    def tail(self, k: int) -> pd.DataFrame:
        return self.s.iloc[-k:]

    def ret(self, k: int) -> float:
        if self.n <= k:
            return NAN
        return math.log(self.p / self.s["price"].iloc[-1 - k]) * BPS

    def block(self, b: int) -> tuple[pd.DataFrame, pd.Series | None]:
        """Block b (1 = oldest .. 6 = newest) of the 180-tick window and the tick before it (or None)."""
        start = self.n - WINDOW + (b - 1) * BLOCK_TICKS
        before = self.s.iloc[start - 1] if start > 0 else None
        return self.s.iloc[start : start + BLOCK_TICKS], before


def _price(t: _Tick, out: dict[str, float]) -> None:
    for k in (1, 5, 10, 30, 60, 90, 180):
        out[f"ret_{k}"] = t.ret(k)
    changes = t.s["price"].diff().iloc[1:]
    moves = np.sign(changes[changes != 0]).to_numpy()
    if t.n >= 2:
        run = 0
        for sign in moves[::-1]:
            if sign != moves[-1]:
                break
            run += 1
        out["direction_streak"] = run * moves[-1] if len(moves) else 0.0
    if t.n >= WINDOW:
        prices = t.tail(WINDOW)["price"]
        out["price_slope_180"] = _slope(prices) / t.tick
        out["price_slope_r2_180"] = (
            NAN if prices.nunique() == 1 else float(np.corrcoef(np.arange(WINDOW), prices)[0, 1] ** 2)
        )
    if t.n > WINDOW:
        with_before = t.tail(WINDOW + 1)["price"]
        moved = [np.sign(t.block(b)[0]["price"].iloc[-1] - t.block(b)[1]["price"]) for b in range(1, 7)]
        out["momentum_score"] = (moved.count(1) - moved.count(-1)) / N_BLOCKS
        out["efficiency_180"] = _ratio(
            abs(with_before.iloc[-1] - with_before.iloc[0]), with_before.diff().abs().sum()
        )


def _volatility(t: _Tick, out: dict[str, float]) -> None:
    for k in (30, 90, 180):
        out[f"ret_std_{k}"] = _std(t.tail(k)["ret"]) if t.n > k else NAN
    for k in (30, 180):
        if t.n >= k:
            prices = t.tail(k)["price"]
            out[f"range_{k}_bps"] = (prices.max() - prices.min()) / t.p * BPS
    out["vol_ratio_30_180"] = _ratio(out["ret_std_30"], out["ret_std_180"]) if t.n > WINDOW else NAN
    if t.n >= WINDOW:
        out["price_std_180_bps"] = _std(t.tail(WINDOW)["price"]) / t.p * BPS
    if t.n > WINDOW:
        stds, ranges = [], []
        for b in range(1, 7):
            block, before = t.block(b)
            stds.append(_std(block["ret"]))
            ranges.append(
                max(block["price"].max(), before["price"]) - min(block["price"].min(), before["price"])
            )
        out["std_compression_180"] = _ratio(stds[-1], float(np.mean(stds)))
        out["atr_pct_180"] = float(np.mean(ranges)) / t.p * 100
        r = t.tail(WINDOW)["ret"]
        m2 = float(((r - r.mean()) ** 2).mean())
        out["ret_skew_180"] = NAN if r.nunique() == 1 else float(((r - r.mean()) ** 3).mean()) / m2**1.5
        out["up_vol_share_180"] = _ratio(float((r[r > 0] ** 2).sum()), float((r**2).sum()))


def _flow(t: _Tick, out: dict[str, float]) -> None:
    for k in (30, 180):
        if t.n < k:
            continue
        w = t.tail(k)
        trades = w[w["traded"]]
        out[f"flow_imbalance_{k}"] = _ratio(w["signed"].sum(), w["size"].sum())
        out[f"trade_share_{k}"] = len(trades) / k
        out[f"mean_trade_size_{k}"] = _ratio(trades["size"].sum(), len(trades))
        known = trades[trades["side"] != 0]
        out[f"aggressor_ratio_{k}"] = _ratio(float((known["side"] > 0).sum()), len(known))
        if t.n > k:
            span_s = (t.last["ts"] - t.s["ts"].iloc[-1 - k]) / 1e9
            out[f"trade_intensity_{k}"] = _ratio(len(trades), span_s) if span_s > 0 else NAN
    if t.n >= 30:
        w = t.tail(30)
        buys, sells = w[w["buy"]]["size"], w[w["sell"]]["size"]
        out["size_bias_30"] = math.log(buys.mean() / sells.mean()) if len(buys) and len(sells) else NAN
    out["size_tail_ratio"] = _ratio(t.last["q90"], t.last["q50"])
    if t.n >= WINDOW:
        out["trade_size_spike_30"] = _ratio(t.tail(30)["size"].max(), out["mean_trade_size_180"])
        volumes = t.s["size"].rolling(WINDOW).sum().dropna()
        spread = volumes.std(ddof=1) if len(volumes) > 1 and volumes.nunique() > 1 else NAN
        out["volume_z_session"] = _ratio(volumes.iloc[-1] - volumes.mean(), spread)


def _book(t: _Tick, out: dict[str, float]) -> None:
    last = t.last
    out["l1_imbalance"] = last["l1"]
    out["spread_ticks"] = last["spread"]
    out["microprice_dev_ticks"] = last["micro"]
    out["price_vs_mid_ticks"] = (t.p - (last["bid"] + last["ask"]) / 2) / t.tick
    if t.n >= 30:
        out["l1_imbalance_mean_30"] = _mean(t.tail(30)["l1"])
        out["microprice_dev_mean_30"] = _mean(t.tail(30)["micro"])
    if t.n >= WINDOW:
        w = t.tail(WINDOW)
        bids, asks = w["bid_size"].sum(skipna=False), w["ask_size"].sum(skipna=False)
        out["depth_imbalance_180"] = _ratio(bids - asks, bids + asks)
        out["spread_mean_180"] = _mean(w["spread"])
        out["spread_ratio_180"] = _ratio(last["spread"], out["spread_mean_180"])
        first, newest = t.block(1)[0], t.block(6)[0]
        out["bid_accumulation_180"] = _ratio(_mean(newest["bid_size"]), _mean(first["bid_size"])) - 1
        out["ask_vanishing_180"] = 1 - _ratio(_mean(newest["ask_size"]), _mean(first["ask_size"]))
        depth_std = _std(w["depth"])
        out["depth_z_180"] = _ratio(last["depth"] - _mean(w["depth"]), depth_std)


def value_area(hist: np.ndarray, total: float, share: float = 0.7) -> tuple[int, int, int]:
    """(POC, VAL, VAH) bucket indices of a volume histogram: the heaviest bucket (lowest on ties),
    grown by the heavier neighbour (the upper one on ties) until it holds `share` of `total`."""
    occupied = np.nonzero(hist)[0]
    kmin, kmax = int(occupied.min()), int(occupied.max())
    poc = int(np.argmax(hist))
    lo = hi = poc
    held = hist[poc]
    while held < share * total:
        up = hist[hi + 1] if hi < kmax else -1.0
        down = hist[lo - 1] if lo > kmin else -1.0
        if up < 0 and down < 0:
            break
        if up >= down:
            hi, held = hi + 1, held + up
        else:
            lo, held = lo - 1, held + down
    return poc, lo, hi


def _session(t: _Tick, out: dict[str, float]) -> None:
    s, p = t.s, t.p
    first = s["price"].iloc[0]
    trades = s[s["traded"]]
    high, low = s["price"].max(), s["price"].min()
    out["session_volume"] = t.last["volume"]
    out["session_open_ret_bps"] = math.log(p / first) * BPS
    out["session_range_bps"] = (high - low) / p * BPS
    out["session_high_dist_bps"] = (high - p) / p * BPS
    out["session_low_dist_bps"] = (p - low) / p * BPS
    out["session_range_position"] = _ratio(p - low, high - low)
    out["session_high_age_min"] = (t.last["ts"] - s["ts"][s["price"] == high].iloc[-1]) / 6e10
    out["session_low_age_min"] = (t.last["ts"] - s["ts"][s["price"] == low].iloc[-1]) / 6e10
    if trades.empty:
        return
    weights = trades["size"]
    vwap = float((trades["price"] * weights).sum() / weights.sum())
    out["session_vwap_dev_bps"] = (p / vwap - 1) * BPS
    out["session_flow_imbalance"] = trades["signed"].sum() / weights.sum()
    dev = trades["price"] - first
    mean_dev = np.average(dev, weights=weights)
    var = np.average((dev - mean_dev) ** 2, weights=weights)
    out["session_vwap_z"] = NAN if dev.nunique() == 1 else (p - first - mean_dev) / math.sqrt(var)
    width = max(1, math.ceil(first * 1.0 / BPS / t.tick))  # at least 1 bp of the first price
    buckets = np.clip(np.rint((trades["price"] - first) / t.tick).astype(int) // width + 1024, 0, 2047)
    hist = np.bincount(buckets, weights=weights, minlength=2048)
    poc, val, vah = value_area(hist, sum(weights.tolist()))  # summed in tick order

    def low_of(k: int) -> float:
        return first + (k - 1024) * width * t.tick

    va_low, va_high = low_of(val), low_of(vah) + (width - 1) * t.tick
    out["poc_dist_bps"] = (p - (low_of(poc) + (width - 1) / 2 * t.tick)) / p * BPS
    out["va_width_bps"] = (va_high - va_low) / p * BPS
    out["va_position"] = _ratio(p - va_low, va_high - va_low)


def _time(t: _Tick, out: dict[str, float]) -> None:
    ts = t.last["ts"]
    frac = (ts - t.open_ns) / (t.close_ns - t.open_ns)
    out["minutes_since_open"] = (ts - t.open_ns) / 6e10
    out["minutes_to_close"] = (t.close_ns - ts) / 6e10
    out["session_frac"] = frac
    out["session_frac_sin"] = math.sin(2 * math.pi * frac)
    out["session_frac_cos"] = math.cos(2 * math.pi * frac)
    if t.n >= 2:
        out["tick_gap_s"] = (ts - t.s["ts"].iloc[-2]) / 1e9
    if t.n > 30:
        span_s = (ts - t.s["ts"].iloc[-31]) / 1e9
        out["tick_rate_30"] = 30 / span_s if span_s > 0 else NAN


def _blocks(t: _Tick, out: dict[str, float]) -> None:
    if t.n < WINDOW:
        return
    volumes = [t.block(b)[0]["size"].sum() for b in range(1, 7)]
    v_std = _std(pd.Series(volumes))
    w = t.tail(WINDOW)
    flow_size = w["size"].sum()
    for b in range(1, 7):
        block, before = t.block(b)
        prices = block["price"]
        size = block["size"].sum()
        key = f"blk{b}_"
        out[key + "slope"] = _slope(prices) / t.tick
        out[key + "vol"] = _std(block["ret"])
        out[key + "range"] = (prices.max() - prices.min()) / t.p * BPS
        out[key + "volume_z"] = _ratio(volumes[b - 1] - float(np.mean(volumes)), v_std)
        out[key + "bias"] = _ratio(block["signed"].sum(), size)
        out[key + "l1_imbalance"] = _mean(block["l1"])
        depth = block["depth"]
        out[key + "depth_trend"] = _ratio(_slope(depth) * (BLOCK_TICKS - 1), _mean(depth))
        out[key + "spread"] = _mean(block["spread"])
        out[key + "smart_flow"] = _ratio(block["signed"][block["large"]].sum(), size)
        out[key + "dumb_flow"] = _ratio(block["signed"][block["small"]].sum(), size)
        out[key + "spread_widen"] = _mean(block["widen"])
        out[key + "quote_flicker"] = _mean(block["flicker"])
        out[key + "mm_inventory"] = _ratio(-block["signed"].sum(), _mean(depth))
        if before is not None:
            o, c, h, lo = before["price"], prices.iloc[-1], prices.max(), prices.min()
            out[key + "mom"] = math.log(c / o) * BPS
            span_s = (block["ts"].iloc[-1] - before["ts"]) / 1e9
            out[key + "intensity"] = _ratio(float(block["traded"].sum()), span_s) if span_s > 0 else NAN
            bar_high, bar_low = max(h, o), min(lo, o)
            out[key + "trap"] = _ratio((bar_high - max(o, c)) - (min(o, c) - bar_low), bar_high - bar_low)
        else:
            out[key + "vol"] = NAN  # its first return needs the tick before the block
            out[key + "spread_widen"] = out[key + "quote_flicker"] = NAN
    smart = _ratio(w["signed"][w["large"]].sum(), flow_size)
    dumb = _ratio(w["signed"][w["small"]].sum(), flow_size)
    out["smart_flow_180"], out["dumb_flow_180"] = smart, dumb
    out["smart_dumb_divergence_180"] = smart - dumb
    out["large_trade_share_180"] = _ratio(w["size"][w["large"]].sum(), flow_size)
    out["spread_widen_share_180"] = _mean(w["widen"])
    out["quote_flicker_180"] = _mean(w["flicker"])
    out["mm_inventory_180"] = _ratio(-w["signed"].sum(), _mean(w["depth"]))


def _indicators(t: _Tick, out: dict[str, float]) -> None:
    price = t.s["price"]
    p = t.p
    for k in (5, 10, 20):
        if t.n >= k:
            out[f"price_sma_{k}_ratio"] = p / price.iloc[-k:].mean()
    if t.n >= 20:
        out["sma_5_20_ratio"] = price.iloc[-5:].mean() / price.iloc[-20:].mean()
    ema12 = price.ewm(span=12, adjust=False).mean()
    ema26 = price.ewm(span=26, adjust=False).mean()
    macd = ema12 - ema26
    signal = macd.ewm(span=9, adjust=False).mean()
    if t.n >= 12:
        out["price_ema_12_ratio"] = p / ema12.iloc[-1]
    if t.n >= 26:
        out["price_ema_26_ratio"] = p / ema26.iloc[-1]
        out["ema_12_26_ratio"] = ema12.iloc[-1] / ema26.iloc[-1]
        out["macd_bps"] = macd.iloc[-1] / p * BPS
    if t.n >= 34:
        out["macd_signal_bps"] = signal.iloc[-1] / p * BPS
        out["macd_hist_bps"] = (macd.iloc[-1] - signal.iloc[-1]) / p * BPS
    change = price.diff()
    wilder = {"alpha": 1 / 14, "adjust": False, "min_periods": 14}
    gains = change.clip(lower=0).ewm(**wilder).mean()
    losses = (-change).clip(lower=0).ewm(**wilder).mean()
    atr = change.abs().ewm(**wilder).mean()
    out["rsi_14"] = _ratio(100 * gains.iloc[-1], gains.iloc[-1] + losses.iloc[-1])
    out["atr_14_bps"] = atr.iloc[-1] / p * BPS
    plus_di = 100 * gains / atr.where(atr > 0)
    minus_di = 100 * losses / atr.where(atr > 0)
    out["plus_di_14"], out["minus_di_14"] = plus_di.iloc[-1], minus_di.iloc[-1]
    dx = 100 * (plus_di - minus_di).abs() / (plus_di + minus_di).where(plus_di + minus_di > 0)
    out["adx_14"] = dx.ewm(alpha=1 / 14, adjust=False, ignore_na=True, min_periods=14).mean().iloc[-1]
    if t.n >= 20:
        w = price.iloc[-20:]
        mid = w.mean()
        flat = w.nunique() == 1
        sd = 0.0 if flat else float(w.std(ddof=0))
        upper, lower = mid + 2 * sd, mid - 2 * sd
        out["bb_upper_bps"] = (upper / p - 1) * BPS
        out["bb_lower_bps"] = (lower / p - 1) * BPS
        out["bb_width_bps"] = (upper - lower) / mid * BPS
        out["bb_position"] = _ratio(p - lower, upper - lower)
        mad = 0.0 if flat else float((w - mid).abs().mean())
        out["cci_20"] = _ratio(p - mid, 0.015 * mad)

    def stoch_k(lag: int) -> float:
        if t.n - lag < 14:
            return NAN
        w = price.iloc[t.n - lag - 14 : t.n - lag]
        return _ratio(100 * (w.iloc[-1] - w.min()), w.max() - w.min())

    if t.n >= 14:
        out["stoch_k_14"] = stoch_k(0)
        w = price.iloc[-14:]
        out["williams_r_14"] = _ratio(-100 * (w.max() - p), w.max() - w.min())
    if t.n >= 16:
        out["stoch_d_3"] = (stoch_k(0) + stoch_k(1) + stoch_k(2)) / 3
    if t.n >= 11:
        out["momentum_10_ticks"] = (p - price.iloc[-11]) / t.tick
    if t.n >= 21:
        out["volatility_20_bps"] = _std(t.tail(20)["ret"])
    for lag in (1, 2, 5):
        if t.n >= lag + 2:
            out[f"ret_lag_{lag}"] = t.s["ret"].iloc[-1 - lag]


def regime_codes(prices: np.ndarray) -> np.ndarray:
    """Regime code (+1/-1/0) of every tick of a session (NaN until 181 ticks), from its block momenta."""
    codes = np.full(len(prices), np.nan)
    for j in range(WINDOW, len(prices)):
        edges = prices[j - WINDOW : j + 1 : BLOCK_TICKS]  # the tick before each block, then the last
        mom = np.log(edges[1:] / edges[:-1]) * BPS
        up, down = int((mom > 0).sum()), int((mom < 0).sum())
        path = np.abs(mom).sum()
        conviction = abs(mom.sum()) / path if path > 0 else 0.0
        code = 0
        if conviction >= 0.5 and up - down >= 2 and mom.sum() > 0:
            code = 1
        elif conviction >= 0.5 and down - up >= 2 and mom.sum() < 0:
            code = -1
        codes[j] = code
    return codes


def _regime(t: _Tick, out: dict[str, float], codes: np.ndarray) -> None:
    if t.n <= WINDOW:
        return
    edges = t.tail(WINDOW + 1)["price"].to_numpy()[::BLOCK_TICKS]
    mom = np.log(edges[1:] / edges[:-1]) * BPS
    path = np.abs(mom).sum()
    out["regime_conviction"] = abs(mom.sum()) / path if path > 0 else 0.0
    mine = codes[: t.n]
    out["regime_code"] = mine[-1]
    age = 0
    for code in mine[::-1]:
        if code != mine[-1]:
            break
        age += 1
    out["regime_age"] = age
    r = t.tail(WINDOW)["ret"]
    out["regime_trend_z"] = _ratio(r.sum(), _std(r) * math.sqrt(WINDOW))


GROUP_FUNCTIONS: tuple[Callable[[_Tick, dict[str, float]], None], ...] = (
    _price,
    _volatility,
    _flow,
    _book,
    _session,
    _time,
    _blocks,
    _indicators,
)


def reference_features(
    ticks: pd.DataFrame, instrument: Instrument, rows: Iterable[int] | None = None
) -> pd.DataFrame:
    """Features of the given positional `rows` of ONE symbol's ticks (sorted by UTC ts), all if None.

    Returns a float frame with `FEATURE_NAMES` columns, indexed by row position. The session of a tick
    is its trading day (the instrument's local date), as in the engines.
    """
    days = instrument.trading_day(ticks["ts"]).to_numpy()
    wanted = range(len(ticks)) if rows is None else rows
    results: dict[int, dict[str, float]] = {}
    sessions: dict[object, tuple[pd.DataFrame, np.ndarray, tuple[int, int], int]] = {}
    for row in wanted:
        day = days[row]
        if day not in sessions:
            positions = np.nonzero(days == day)[0]
            session = per_tick_inputs(ticks.iloc[positions], instrument)
            open_ts, close_ts = instrument.session_bounds(day)
            codes = regime_codes(session["price"].to_numpy())
            sessions[day] = (session, codes, (open_ts.value, close_ts.value), int(positions[0]))
        session, codes, bounds, first = sessions[day]
        tick = _Tick(session, row - first, instrument, bounds)
        values: dict[str, float] = {}
        for group in GROUP_FUNCTIONS:
            group(tick, values)
        _regime(tick, values, codes)
        results[row] = values
    frame = pd.DataFrame.from_dict(results, orient="index", dtype=float)
    return frame.reindex(columns=list(FEATURE_NAMES)).astype(float)
