"""Run a backtest: one symbol's stored sessions replayed once through the online features, then the
champions and every rule baseline through the trade filter, fills and costs on the same ticks."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from feature_store.instruments import Instrument
from feature_store.store.base import TickStore
from pipelines.backtest.fills import round_trips
from pipelines.backtest.metrics import Comparison, Period, block_returns, compare, summarize
from pipelines.backtest.replay import (
    Decider,
    Decisions,
    FeatureReplay,
    Replay,
    Signals,
    model_signals,
    session_ranges,
)
from pipelines.backtest.rules import RULES
from pipelines.scoring import ChampionPair, Scores
from pipelines.trade_filter import TradeFilterConfig

CHAMPIONS = "champions"


@dataclass(frozen=True)
class StrategyResult:
    """One strategy over the replay: its decisions per tick, round trips, block returns and metrics."""

    name: str
    kind: str  # "model" or "rule"
    decisions: Decisions
    trades: pd.DataFrame
    returns: pd.Series
    metrics: dict[str, float]


@dataclass(frozen=True)
class BacktestResult:
    """Every strategy on the same ticks of one symbol, and how they compare with not trading."""

    instrument: Instrument
    days: tuple[dt.date, ...]
    ticks: int
    strategies: dict[str, StrategyResult]
    comparison: Comparison
    models: dict[str, str]  # served name -> version, empty without champions
    scores: Scores | None  # the champions' scores of every tick
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def model(self) -> StrategyResult | None:
        """The models' strategy (champions or the versions asked for), if any."""
        return next((s for s in self.strategies.values() if s.kind == "model"), None)

    @property
    def ticks_per_second(self) -> float:
        """Replay speed of the champions' path: features, both models and the trade filter."""
        spent = sum(self.seconds.get(k, 0.0) for k in ("features", "models", "filter"))
        return self.ticks / spent if spent else float("nan")

    def table(self) -> pd.DataFrame:
        """One row per strategy (champions first), the metrics as columns, plus `superior`."""
        rows = [{"strategy": s.name, "kind": s.kind, **s.metrics} for s in self.strategies.values()]
        table = pd.DataFrame(rows).set_index("strategy")
        table["superior"] = [name in self.comparison.superior for name in table.index]
        return table


def session_ticks(store: TickStore, instrument: Instrument, days: list[dt.date]) -> pd.DataFrame:
    """The stored ticks of `instrument` over `days` (exchange-local trading days), in (ts, seq) order."""
    frames = [store.read_ticks(instrument.symbol, *instrument.session_bounds(day)) for day in days]
    frames = [f for f in frames if not f.empty]
    if not frames:
        raise ValueError(
            f"no stored ticks of {instrument.symbol} on {', '.join(map(str, days)) or 'no days'}"
        )
    return pd.concat(frames, ignore_index=True)


def run_backtest(
    instrument: Instrument,
    ticks: pd.DataFrame,
    champions: ChampionPair | None,
    *,
    config: TradeFilterConfig | None = None,
    rules: Mapping[str, Callable[[Replay], Signals]] = RULES,
    progress: Callable[[int], None] | None = None,
    label: str = CHAMPIONS,
) -> BacktestResult:
    """Backtest `champions` (if any, as the strategy `label`) and `rules` on `ticks` of `instrument`
    (canonical, time order).

    A trading day at a time: its features once for every strategy, the champions over the day in one
    batch, then each strategy's own trade filter (`config`, else the instrument's), whose state carries
    over to the next day as a running service's does. `progress(k)` counts ticks replayed.
    """
    ticks = ticks.reset_index(drop=True)
    seconds = {"features": 0.0, "models": 0.0, "filter": 0.0}
    features = FeatureReplay(instrument)
    names = ([label] if champions is not None else []) + list(rules)
    deciders = {name: Decider(instrument, config) for name in names}
    actions: dict[str, list[np.ndarray]] = {name: [] for name in names}
    reasons: dict[str, list[np.ndarray]] = {name: [] for name in names}
    score_parts: list[Scores] = []
    sessions = session_ranges(instrument, ticks)
    for _, first, end in sessions:
        clock = time.perf_counter()
        replay = features.day(ticks.iloc[first:end])
        seconds["features"] += time.perf_counter() - clock
        day_signals: dict[str, Signals] = {}
        if champions is not None:
            clock = time.perf_counter()
            scores, day_signals[label] = model_signals(champions, replay)
            seconds["models"] += time.perf_counter() - clock
            score_parts.append(scores)
        day_signals.update((name, rule(replay)) for name, rule in rules.items())
        for name in names:
            clock = time.perf_counter()
            decisions = deciders[name].decide(replay, day_signals[name])
            if name == label:
                seconds["filter"] += time.perf_counter() - clock
            actions[name].append(decisions.action)
            reasons[name].append(decisions.reason)
        if progress is not None:
            progress(end - first)
    days = tuple(day for day, _, _ in sessions)
    period = Period.of(instrument, ticks, sessions=len(days))
    strategies: dict[str, StrategyResult] = {}
    for name in names:
        decisions = Decisions(np.concatenate(actions[name]), np.concatenate(reasons[name]))
        trades = round_trips(instrument, ticks, decisions.action, decisions.reason)
        returns = block_returns(trades, period)
        kind = "model" if champions is not None and name == label else "rule"
        strategies[name] = StrategyResult(name, kind, decisions, trades, returns, summarize(trades, period))
    return BacktestResult(
        instrument=instrument,
        days=days,
        ticks=len(ticks),
        strategies=strategies,
        comparison=compare({name: s.returns for name, s in strategies.items()}),
        models=champions.versions if champions is not None else {},
        scores=_concat_scores(score_parts),
        seconds=seconds,
    )


def _concat_scores(parts: list[Scores]) -> Scores | None:
    if not parts:
        return None
    return Scores(*(np.concatenate([getattr(p, f) for p in parts]) for f in Scores.__dataclass_fields__))
