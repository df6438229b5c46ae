"""Replaying recorded ticks through the serving code: online features tick by tick, both champions over
the replay's rows at once, and a trade filter per strategy, one tick at a time.

The live service scores each request through the same online features, `ChampionPair.score` and
`TradeFilter.decide`; a replay starts from fresh state at its first tick, as a service does when that
symbol's first tick reaches it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from feature_store.features import FEATURE_NAMES, OnlineFeatures
from feature_store.features.online import WARMUP_TICKS
from feature_store.instruments import Instrument
from pipelines.scoring import ChampionPair, Scores
from pipelines.trade_filter import TradeFilter, TradeFilterConfig


@dataclass(frozen=True)
class Replay:
    """One symbol's ticks (time order) with the online feature row and warm flag of each."""

    instrument: Instrument
    ticks: pd.DataFrame  # canonical ticks, (ts, seq) order, index 0..n-1
    X: np.ndarray  # (n, len(FEATURE_NAMES)), catalogue column order
    warm: np.ndarray  # (n,) bool

    @property
    def ts_ns(self) -> np.ndarray:
        return self.ticks["ts"].array.asi8

    def column(self, name: str) -> np.ndarray:
        """The feature `name` of every tick."""
        return self.X[:, FEATURE_NAMES.index(name)]


@dataclass(frozen=True)
class Signals:
    """What a strategy says on each tick, in the trade filter's terms."""

    signal: np.ndarray  # (n,) object: "UP", "DOWN" or "FLAT"
    confidence: np.ndarray  # (n,) float in [0, 1]
    agree: np.ndarray  # (n,) bool


@dataclass(frozen=True)
class Decisions:
    """The trade filter's action and reason on each tick of a replay."""

    action: np.ndarray  # (n,) object: BUY, SELL, EXIT or NONE
    reason: np.ndarray  # (n,) object


def session_ranges(instrument: Instrument, ticks: pd.DataFrame) -> list[tuple[dt.date, int, int]]:
    """(day, first, end) row ranges of each trading day of `ticks` (time order), in order."""
    day = np.asarray(instrument.trading_day(ticks["ts"]), dtype=object)
    if not len(day):
        return []
    starts = np.flatnonzero(np.r_[True, day[1:] != day[:-1]]).tolist()
    ends = [*starts[1:], len(day)]
    return [(day[first], first, end) for first, end in zip(starts, ends, strict=True)]


class FeatureReplay:
    """The online features of one symbol's stream, fed one trading day at a time.

    The service folds a request's ticks in one `update` at a time; `OnlineFeatures.update_many` runs the
    same kernel on the same state over a whole day at once (the parity tests hold the two equal, and
    the live/backtest identity test holds the decisions equal).
    """

    def __init__(self, instrument: Instrument) -> None:
        self.instrument = instrument
        self._features = OnlineFeatures(instrument)

    @property
    def features(self) -> OnlineFeatures:
        """The online state after the last day fed (what a live service holds at that point)."""
        return self._features

    def day(self, ticks: pd.DataFrame) -> Replay:
        """The feature rows of one trading day's `ticks` ((ts, seq) order), after the days before it."""
        ticks = ticks.reset_index(drop=True)
        X = self._features.update_many(ticks)
        # the state resets on a new trading day: a tick is warm once its session has WARMUP_TICKS ticks
        warm = np.arange(1, len(ticks) + 1) >= WARMUP_TICKS
        return Replay(self.instrument, ticks, X, warm)


def model_signals(champions: ChampionPair, replay: Replay) -> tuple[Scores, Signals]:
    """Both champions over every tick of `replay` (one batch), and their combined signal."""
    scores = champions.score(replay.X)
    return scores, Signals(scores.signal, scores.confidence, scores.agree)


class Decider:
    """One strategy's trade filter over a replay, day after day (its state carries across days)."""

    def __init__(self, instrument: Instrument, config: TradeFilterConfig | None = None) -> None:
        self.trade_filter = TradeFilter(config or TradeFilterConfig.for_instrument(instrument), instrument)

    def decide(self, replay: Replay, signals: Signals) -> Decisions:
        """The filter's action and reason on every tick of `replay` given the strategy's `signals`."""
        n = len(replay.ticks)
        action, reason = np.empty(n, dtype=object), np.empty(n, dtype=object)
        rows = zip(
            replay.ts_ns.tolist(),
            replay.ticks["price"].to_numpy(np.float64).tolist(),
            signals.signal.tolist(),
            np.asarray(signals.confidence, dtype=np.float64).tolist(),
            np.asarray(signals.agree, dtype=bool).tolist(),
            replay.warm.tolist(),
            strict=True,
        )
        decide = self.trade_filter.decide
        for i, (ts, price, signal, confidence, agree, warm) in enumerate(rows):
            decision = decide(ts, price, signal, confidence, agree, warm=warm)
            action[i], reason[i] = decision.action, decision.reason
        return Decisions(action, reason)
