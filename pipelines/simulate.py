"""A seeded market simulator: canonical ticks (trades and L1 quotes) for any instrument and day.

The `signal` knob decides whether there is anything to learn: at 0 the mid price is a random walk.
"""

from __future__ import annotations

import datetime as dt
import math
import zlib
from collections.abc import Iterable, Iterator

import numba
import numpy as np
import pandas as pd

from feature_store.instruments import Instrument
from feature_store.schema import coerce_ticks, empty_ticks

# The demo's signal: trailing order flow predicts the next minutes. At 1.0 the 30-minute model's real gain
# over the training prior (about 0.015 nats) is too small for 2-4 held-out days to prove at 95%; at 1.5
# ten simulated days are enough evidence for the promotion gate on both horizons.
DEMO_SIGNAL = 1.5
EVENT_RATE = 2.5  # market events per second (Poisson arrivals)
TRADE_PROBABILITY = 0.6  # share of events that are trades; the rest are quote-only updates
SPREAD_TICKS = np.array([1, 2, 3])
SPREAD_PROBABILITIES = np.array([0.80, 0.15, 0.05])
VOL_15M_PER_TARGET = 1.2  # 15-minute standard deviation of the mid, in units of the 15m target
IMBALANCE_TAU_S = 300.0  # mean-reversion time of the latent order-flow imbalance (seconds)
FLOW_TILT = 0.6  # how far the imbalance tilts the buy probability away from 1/2
BOOK_TILT = 0.5  # log-size skew between bid and ask per unit of imbalance
DRIFT_SHARE = 0.4  # at signal=1, the share of the mid's variance that is predictable drift
MIN_NOISE_SHARE = 0.2  # the unpredictable share never falls below this, however large the signal
BOOK_DEPTH = 40.0  # typical quantity at the best bid / ask
TRADE_SIZE_P = 0.4  # trade sizes are geometric(p) on 1, 2, 3, ...
GAP_SHARE = 0.3  # overnight gap standard deviation relative to a session's standard deviation
DAILY_REVERSION = 0.995  # per-day pull of the price level back towards the reference price
_DAY_BLOCK = 4096  # day-level shocks are drawn in blocks, so any day's history is cheap to regenerate
_DAY_MEMORY = 2048  # days of history that still matter for today's level (0.995**2048 ~ 3e-5)
_BLOCK_OFFSET = 1 << 20  # keeps block numbers of dates before the epoch non-negative for SeedSequence
_EPOCH = dt.date(2000, 1, 3)  # a Monday; trading days are counted from here


def simulate_session(
    instrument: Instrument,
    day: dt.date,
    *,
    seed: int,
    signal: float = 0.0,
    start_price: float | None = None,
    symbol: str | None = None,
) -> pd.DataFrame:
    """Canonical ticks of one simulated session; see `simulate_session_latent` for how they are drawn."""
    return simulate_session_latent(
        instrument, day, seed=seed, signal=signal, start_price=start_price, symbol=symbol
    )[0]


def simulate_session_latent(
    instrument: Instrument,
    day: dt.date,
    *,
    seed: int,
    signal: float = 0.0,
    start_price: float | None = None,
    symbol: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(ticks, latent) of one simulated session. `latent` is for evaluation only, never a feature:
    row-aligned with the ticks, it holds symbol, ts, seq, the order-flow `imbalance` in force at each
    tick and the mid's `drift` it plants (price points per second; 0 at `signal` = 0).

    Canonical ticks of one simulated session of `day` (exchange-local date); empty on a non-trading day.

    Events arrive as a Poisson process (`EVENT_RATE` per second) strictly between the session's open and
    close (UTC, `instrument.session_bounds(day)`), none inside a break; `seq` counts 0, 1, 2, ... Each
    event is a trade (size > 0, `side` the aggressor, price the ask for a buy and the bid for a sell)
    or a quote-only update (size 0, side 0, price carried forward from the last trade). The L1 book
    quotes the latent mid on the tick grid, usually one tick wide. `oi` is NaN.

    The mid is a random walk whose 15-minute standard deviation is `VOL_15M_PER_TARGET` times the
    instrument's 15m target. A latent order-flow imbalance (an Ornstein-Uhlenbeck process) tilts the
    aggressor side of trades and the bid/ask sizes. With `signal` = 0 it says nothing about the price.
    With `signal` > 0 the mid's drift is proportional to `signal` times the current imbalance, so
    recent order flow predicts the next minutes' direction (at 1, about 40% of the variance is drift).

    The result depends only on (instrument, day, seed, signal, start_price): each session is
    self-contained, so one Dagster day partition is reproducible on its own. The open comes from a
    day-level random walk keyed by `seed`, and the session closes near the next trading day's open
    (an overnight gap apart), so consecutive days chain. `start_price` overrides the open; `symbol`
    overrides the symbol column.
    """
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if signal < 0:
        raise ValueError(f"signal must be >= 0, got {signal}")
    if not instrument.is_trading_day(day):
        return empty_ticks(), pd.DataFrame(
            {
                "symbol": pd.Series(dtype=str),
                "ts": pd.Series(dtype="datetime64[ns, UTC]"),
                "seq": pd.Series(dtype="int64"),
                "imbalance": pd.Series(dtype="float64"),
                "drift": pd.Series(dtype="float64"),
            }
        )
    open_ts, close_ts = instrument.session_bounds(day)
    session_s = (close_ts - open_ts).total_seconds()
    key = zlib.crc32(instrument.symbol.encode())
    rng = np.random.default_rng(np.random.SeedSequence([seed, key, day.toordinal()]))

    offsets_ns = _arrival_offsets(rng, session_s)
    offsets_ns = offsets_ns[~_in_breaks(instrument, day, open_ts, offsets_ns)]
    t = np.append(offsets_ns / 1e9, session_s)  # the close is a last, unobserved point of the path

    ref = instrument.reference_price
    open_price, close_price = _open_and_close(instrument, day, seed, key, session_s)
    if start_price is not None:
        close_price *= start_price / open_price
        open_price = float(start_price)
    vol = VOL_15M_PER_TARGET * instrument.labels.target_15m * open_price / ref / math.sqrt(900.0)
    drift = signal * math.sqrt(DRIFT_SHARE / (2.0 * IMBALANCE_TAU_S)) * vol  # points/s per unit imbalance
    noise = vol * math.sqrt(max(1.0 - signal**2 * DRIFT_SHARE, MIN_NOISE_SHARE))

    dt_s = np.diff(t, prepend=0.0)
    imbalance = _ou_path(dt_s, IMBALANCE_TAU_S, rng.standard_normal(len(t) + 1))
    # Each step drifts with the imbalance in force when it starts: only the past drives the future.
    steps = drift * imbalance[:-1] * dt_s + noise * np.sqrt(dt_s) * rng.standard_normal(len(t))
    path = np.cumsum(steps)
    # A bridge to the close drawn from the day-level walk: the close is unknown to anyone watching the
    # session (its law matches the free walk's), so the pinned path is still a random walk to them.
    mid = open_price + path - t / session_s * (path[-1] - (close_price - open_price))
    mid, imbalance = mid[:-1], imbalance[1:-1]
    ticks = _book_and_trades(
        rng, instrument, symbol or instrument.symbol, open_ts, offsets_ns, mid, imbalance
    )
    # The drift of the step after each tick is set by the imbalance in force at that tick.
    latent = ticks[["symbol", "ts", "seq"]].assign(imbalance=imbalance, drift=drift * imbalance)
    return ticks, latent


def simulate_days(
    instrument: Instrument, days: Iterable[dt.date], *, seed: int, signal: float = 0.0
) -> Iterator[pd.DataFrame]:
    """Canonical ticks of each trading day in `days`, one frame per session, in order; other days are skipped.

    Each frame equals `simulate_session(instrument, day, seed=seed, signal=signal)`; a session opens
    an overnight gap away from the previous session's close. Timestamps are UTC.
    """
    for day in days:
        if instrument.is_trading_day(day):
            yield simulate_session(instrument, day, seed=seed, signal=signal)


def _arrival_offsets(rng: np.random.Generator, session_s: float) -> np.ndarray:
    """Strictly increasing event times in ns after the open, strictly inside (0, session length)."""
    expected = EVENT_RATE * session_s
    times = np.cumsum(rng.exponential(1.0 / EVENT_RATE, int(expected + 8 * math.sqrt(expected) + 16)))
    ns = np.floor(times[times < session_s] * 1e9).astype(np.int64)
    # Two arrivals can round to the same nanosecond; nudge later ones forward so ts stays strictly increasing.
    index = np.arange(len(ns), dtype=np.int64)
    ns = np.maximum.accumulate(np.maximum(ns, 1) - index) + index
    return ns[ns < int(session_s * 1e9)]


def _in_breaks(
    instrument: Instrument, day: dt.date, open_ts: pd.Timestamp, offsets_ns: np.ndarray
) -> np.ndarray:
    """Which events fall inside one of the session's breaks (exchange-local wall times)."""
    inside = np.zeros(len(offsets_ns), dtype=bool)
    for start, end in instrument.breaks:
        lo = pd.Timestamp(dt.datetime.combine(day, start), tz=instrument.tz).tz_convert("UTC")
        hi = pd.Timestamp(dt.datetime.combine(day, end), tz=instrument.tz).tz_convert("UTC")
        inside |= (offsets_ns >= (lo - open_ts).value) & (offsets_ns < (hi - open_ts).value)
    return inside


@numba.njit(cache=True)
def _ou_path(dt_s: np.ndarray, tau: float, z: np.ndarray) -> np.ndarray:
    """Stationary unit-variance Ornstein-Uhlenbeck path: a start value, then one value after each step."""
    out = np.empty(len(dt_s) + 1)
    x = z[0]
    out[0] = x
    for i in range(len(dt_s)):
        a = math.exp(-dt_s[i] / tau)
        x = a * x + math.sqrt(1.0 - a * a) * z[i + 1]
        out[i + 1] = x
    return out


def _open_and_close(
    instrument: Instrument, day: dt.date, seed: int, key: int, session_s: float
) -> tuple[float, float]:
    """The session's opening mid and the mid it closes at, from a day-level walk keyed by `seed`.

    log(open / reference) follows an AR(1) over trading days: level[n+1] = phi * level[n] + move[n] +
    gap[n]. The session closes at reference * exp(phi * level[n] + move[n]) and the next one opens a gap
    later, so each day's level is a fixed function of (seed, day) whatever else is simulated.
    """
    session_sd = VOL_15M_PER_TARGET * instrument.labels.target_15m / instrument.reference_price
    session_sd *= math.sqrt(session_s / 900.0)
    gap_sd = GAP_SHARE * session_sd if session_s < 86_400 else 0.0  # a 24h session has no overnight
    n = _trading_day_number(instrument, day)
    shocks = _day_shocks(seed, key, n - _DAY_MEMORY, n)
    moves, gaps = shocks[0] * session_sd, shocks[1] * gap_sd
    weights = DAILY_REVERSION ** np.arange(_DAY_MEMORY - 1, -1, -1)
    level = float(np.dot(weights, moves[:-1] + gaps[:-1]))
    ref = instrument.reference_price
    return ref * math.exp(level), ref * math.exp(DAILY_REVERSION * level + moves[-1])


def _trading_day_number(instrument: Instrument, day: dt.date) -> int:
    """How many trading days lie between the epoch and `day` (negative before the epoch)."""
    weeks, rest = divmod((day - _EPOCH).days, 7)
    return weeks * len(instrument.weekdays) + sum(
        1 for k in range(rest) if (_EPOCH.weekday() + k) % 7 in instrument.weekdays
    )


def _day_shocks(seed: int, key: int, first: int, last: int) -> np.ndarray:
    """Standard normal (move, gap) pairs of trading days first..last, shape (2, last - first + 1)."""
    blocks = range(first // _DAY_BLOCK, last // _DAY_BLOCK + 1)
    drawn = np.concatenate(
        [
            np.random.default_rng(np.random.SeedSequence([seed, key, b + _BLOCK_OFFSET])).standard_normal(
                (2, _DAY_BLOCK)
            )
            for b in blocks
        ],
        axis=1,
    )
    start = first - blocks[0] * _DAY_BLOCK
    return drawn[:, start : start + last - first + 1]


def _book_and_trades(
    rng: np.random.Generator,
    instrument: Instrument,
    symbol: str,
    open_ts: pd.Timestamp,
    offsets_ns: np.ndarray,
    mid: np.ndarray,
    imbalance: np.ndarray,
) -> pd.DataFrame:
    """Quote the mid on the tick grid, draw trades tilted by the imbalance, and assemble canonical ticks."""
    n, tick = len(mid), instrument.tick_size
    spread = rng.choice(SPREAD_TICKS, size=n, p=SPREAD_PROBABILITIES)
    bid_ticks = np.floor(mid / tick - (spread - 1) / 2.0)
    # Rounding to 10 decimals returns the float nearest the grid price (24000.05, not 24000.050000000003).
    bid = np.round(bid_ticks * tick, 10)
    ask = np.round((bid_ticks + spread) * tick, 10)
    tilt = BOOK_TILT * imbalance
    bid_size = np.maximum(1.0, np.round(BOOK_DEPTH * np.exp(tilt + 0.3 * rng.standard_normal(n))))
    ask_size = np.maximum(1.0, np.round(BOOK_DEPTH * np.exp(-tilt + 0.3 * rng.standard_normal(n))))

    is_trade = rng.random(n) < TRADE_PROBABILITY
    buy = rng.random(n) < 0.5 * (1.0 + FLOW_TILT * np.tanh(imbalance))
    side = np.where(is_trade, np.where(buy, 1, -1), 0).astype(np.int8)
    size = np.where(is_trade, rng.geometric(TRADE_SIZE_P, n), 0).astype(np.float64)
    traded = np.where(is_trade, np.where(buy, ask, bid), np.nan)
    # Quote-only events carry the last trade price; before the first trade, the open on the grid.
    first_price = np.round(np.round(mid[0] / tick) * tick, 10) if n else np.nan
    price = pd.Series(traded).ffill().fillna(first_price).to_numpy()

    frame = pd.DataFrame(
        {
            "ts": open_ts.value + offsets_ns,
            "symbol": symbol,
            "seq": np.arange(n, dtype=np.int64),
            "price": price,
            "size": size,
            "volume": np.cumsum(size),
            "side": side,
            "bid": bid,
            "ask": ask,
            "bid_size": bid_size,
            "ask_size": ask_size,
            "oi": np.nan,
        }
    )
    return coerce_ticks(frame)
