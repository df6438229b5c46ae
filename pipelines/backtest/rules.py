"""The classic rules a quant compares a model against, as signals on the replay's own feature rows.

Every indicator comes from the feature catalogue (computed once, by the online engine of the replay),
and every rule trades through the same trade filter, fills and costs as the champions. A rule is
certain (confidence 1) and has one horizon (it always agrees with itself); the weighted vote's
confidence is the weight behind its direction, so the filter's `min_confidence` applies to it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from pipelines.backtest.replay import Replay, Signals

# The event-driven reference system's vote: each indicator votes -1, 0 or +1 with these weights.
ATR_BREAKOUT = 2.0 * np.sqrt(10.0)
VOTE_WEIGHTS = {"rsi": 0.25, "macd": 0.25, "bollinger": 0.20, "adx": 0.15, "stochastic": 0.10, "atr": 0.05}


def _signals(direction: np.ndarray, confidence: np.ndarray | float = 1.0) -> Signals:
    """Signals from a direction per tick (-1, 0, +1; NaN-derived zeros stay FLAT)."""
    direction = np.nan_to_num(direction).astype(np.int8)
    signal = np.asarray(["DOWN", "FLAT", "UP"], dtype=object)[direction + 1]
    conf = np.broadcast_to(np.asarray(confidence, dtype=np.float64), direction.shape).copy()
    return Signals(signal, conf, np.ones(direction.shape, dtype=bool))


def _above_below(x: np.ndarray, level: float) -> np.ndarray:
    """+1 above `level`, -1 below, 0 on it or where `x` is NaN (warming up)."""
    return np.sign(np.where(np.isnan(x), level, x) - level)


def rsi_50(replay: Replay) -> Signals:
    """RSI(14) above 50: long; below: short."""
    return _signals(_above_below(replay.column("rsi_14"), 50.0))


def macd_0(replay: Replay) -> Signals:
    """MACD line (EMA 12 - EMA 26) above 0: long; below: short."""
    return _signals(_above_below(replay.column("macd_bps"), 0.0))


def momentum_10(replay: Replay) -> Signals:
    """Price above its level 10 ticks ago: long; below: short."""
    return _signals(_above_below(replay.column("momentum_10_ticks"), 0.0))


def price_change(replay: Replay) -> Signals:
    """The last tick's price change: up, long; down, short."""
    return _signals(_above_below(replay.column("ret_1"), 0.0))


def _band_reversion(replay: Replay) -> np.ndarray:
    """+1 below the lower Bollinger(20, 2) band, -1 above the upper one, 0 between (or warming up)."""
    position = replay.column("bb_position")
    return np.where(position < 0.0, 1, np.where(position > 1.0, -1, 0))


def bollinger_reversion(replay: Replay) -> Signals:
    """Bollinger(20, 2) mean reversion: below the lower band, long; above the upper band, short."""
    return _signals(_band_reversion(replay))


def _votes(replay: Replay) -> dict[str, np.ndarray]:
    """Each indicator's vote per tick (see `weighted_vote`)."""
    rsi, stoch = replay.column("rsi_14"), replay.column("stoch_k_14")
    plus_di, minus_di, adx = (
        replay.column("plus_di_14"),
        replay.column("minus_di_14"),
        replay.column("adx_14"),
    )
    momentum_bps = replay.column("ret_10")
    return {
        "rsi": np.where(rsi < 30, 1, np.where(rsi > 70, -1, 0)),
        "macd": _above_below(replay.column("macd_hist_bps"), 0.0),
        "bollinger": _band_reversion(replay),
        "adx": np.where(adx > 25, _above_below(plus_di - minus_di, 0.0), 0),
        "stochastic": np.where(stoch < 20, 1, np.where(stoch > 80, -1, 0)),
        "atr": np.where(
            np.abs(momentum_bps) > ATR_BREAKOUT * replay.column("atr_14_bps"), np.sign(momentum_bps), 0
        ),
    }


def weighted_vote(replay: Replay) -> Signals:
    """The reference vote: RSI 30/70 (25%), MACD histogram sign (25%), Bollinger(20, 2) band breach,
    reverting (20%), ADX above 25 in the direction of +DI - -DI (15%), stochastic 20/80 (10%), and a move
    of the last 10 ticks beyond `ATR_BREAKOUT` 1-tick ATRs (two standard deviations of a random walk over 10
    ticks), in its direction (5%). Long when the weighted sum
    is positive, short when negative; confidence is the weight of the votes in that direction."""
    votes = _votes(replay)
    score = sum(VOTE_WEIGHTS[name] * np.nan_to_num(v) for name, v in votes.items())
    direction = np.sign(np.round(score, 12))
    behind = sum(VOTE_WEIGHTS[name] * (np.nan_to_num(v) == direction) for name, v in votes.items())
    return _signals(direction, np.where(direction != 0, behind, 0.0))


RULES: dict[str, Callable[[Replay], Signals]] = {
    "rsi_14 vs 50": rsi_50,
    "macd vs 0": macd_0,
    "momentum 10 ticks": momentum_10,
    "price change": price_change,
    "bollinger 20,2 reversion": bollinger_reversion,
    "weighted vote": weighted_vote,
}
