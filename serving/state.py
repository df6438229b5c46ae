"""Per-symbol online state of the scoring service: features, trade filter and a replay cache.

Kept free of BentoML so it can be exercised directly; `serving.service` is the thin HTTP shell around it.
A request is all or nothing: it is checked against the state as a whole, scored on copies of its symbols'
state, and committed only once every tick has its prediction, so a refused or failed request leaves no
trace, and a tick resent after a crash gets its first prediction back instead of being folded into the
features twice.
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from feature_store.features import FEATURE_NAMES, OnlineFeatures
from feature_store.instruments import Instrument, get_instrument
from feature_store.schema import LABELS_15M, LABELS_30M
from pipelines.registry import LoadedModel
from pipelines.scoring import ChampionPair
from pipelines.trade_filter import TradeFilter, TradeFilterConfig
from serving.schemas import Prediction, Tick, iso_ns

REPLAY_CACHE_SIZE = 10_000
Key = tuple[int, int]  # (ts_ns, seq)


class StaleTickError(ValueError):
    """A tick at or before its symbol's last scored tick that is no longer (or never was) in the cache."""

    def __init__(self, index: int, tick: Tick, last: Key, cache_size: int) -> None:
        self.index = index
        super().__init__(
            f"ticks[{index}]: {tick.symbol} tick (ts={iso_ns(tick.ts)}, seq={tick.seq}) is not after the "
            f"symbol's last scored tick (ts={iso_ns(last[0])}, seq={last[1]}) and is not among its last "
            f"{cache_size} predictions; the online state cannot go back in time"
        )


@dataclass
class SymbolState:
    """Everything the service remembers about one symbol's stream."""

    instrument: Instrument
    features: OnlineFeatures
    trade_filter: TradeFilter
    last_key: Key | None = None
    cache: OrderedDict[Key, Prediction] = field(default_factory=OrderedDict)


class ScoringState:
    """The champions plus every symbol's state; `score` is the only mutator and is serialised by a lock."""

    def __init__(
        self,
        model_15m: LoadedModel,
        model_30m: LoadedModel,
        *,
        replay_cache_size: int = REPLAY_CACHE_SIZE,
        trade_filter: TradeFilterConfig | None = None,
    ) -> None:
        self.champions = ChampionPair(model_15m, model_30m)
        if replay_cache_size < 1:
            raise ValueError(f"replay_cache_size must be >= 1, got {replay_cache_size}")
        self.model_15m, self.model_30m = model_15m, model_30m
        self.replay_cache_size = replay_cache_size
        self._trade_filter = trade_filter
        self._versions = self.champions.versions
        self._symbols: dict[str, SymbolState] = {}
        self._lock = threading.Lock()

    def symbol(self, symbol: str) -> SymbolState:
        """The state of `symbol`, created on its first tick (KeyError for an undeclared symbol)."""
        state = self._symbols.get(symbol)
        if state is None:
            state = self._symbols[symbol] = self._new_symbol(symbol)
        return state

    def _new_symbol(self, symbol: str) -> SymbolState:
        instrument = get_instrument(symbol)
        config = self._trade_filter or TradeFilterConfig.for_instrument(instrument)
        return SymbolState(instrument, OnlineFeatures(instrument), TradeFilter(config, instrument))

    def _working_copy(self, symbol: str) -> SymbolState:
        """A copy of `symbol`'s features and trade filter to score a request on (a new state if unseen).

        The replay cache is shared, not copied: it only changes when a request commits. Instrument and
        trade-filter config are immutable and shared too; what is copied is about 70 kB of arrays.
        """
        state = self._symbols.get(symbol)
        if state is None:
            return self._new_symbol(symbol)
        memo = {
            id(state.instrument): state.instrument,
            id(state.trade_filter.config): state.trade_filter.config,
        }
        return SymbolState(
            state.instrument,
            copy.deepcopy(state.features, memo),
            copy.deepcopy(state.trade_filter, memo),
            state.last_key,
            state.cache,
        )

    def score(self, ticks: Sequence[Tick]) -> list[Prediction]:
        """Predictions for validated `ticks` (each symbol's in (ts, seq) order), in request order.

        A tick already scored and still cached returns its cached prediction and changes nothing; a new
        tick updates its symbol's features and trade filter. Raises StaleTickError when a tick is not after
        its symbol's last one and not in the cache. All or nothing: whatever is raised, no state changed.
        """
        with self._lock:
            out: list[Prediction | None] = []
            for i, tick in enumerate(ticks):
                state = self._symbols.get(tick.symbol)
                if state is not None and state.last_key is not None and tick.key <= state.last_key:
                    cached = state.cache.get(tick.key)
                    if cached is None:
                        raise StaleTickError(i, tick, state.last_key, self.replay_cache_size)
                    out.append(cached)
                else:
                    out.append(None)
            fresh = [i for i, p in enumerate(out) if p is None]
            if fresh:
                for i, prediction in zip(fresh, self._score_fresh([ticks[i] for i in fresh]), strict=True):
                    out[i] = prediction
            return out  # type: ignore[return-value]  # every slot is filled above

    def _score_fresh(self, ticks: list[Tick]) -> list[Prediction]:
        # Scored on working copies, swapped in at the end: an error on any tick leaves every symbol as it was
        working: dict[str, SymbolState] = {}
        for tick in ticks:
            if tick.symbol not in working:
                working[tick.symbol] = self._working_copy(tick.symbol)
        states = [working[t.symbol] for t in ticks]
        X = np.empty((len(ticks), len(FEATURE_NAMES)), dtype=np.float64)
        warm = np.empty(len(ticks), dtype=bool)
        for row, (tick, state) in enumerate(zip(ticks, states, strict=True)):
            X[row] = state.features.update(  # an absent book field (None) gives NaN features
                tick.ts,
                tick.price,
                tick.size,
                tick.volume,
                tick.side,
                tick.bid,
                tick.ask,
                tick.bid_size,
                tick.ask_size,
            )
            warm[row] = state.features.initialized
        scores = self.champions.score(X)
        p15, p30 = scores.p15, scores.p30
        predictions = []
        for row, (tick, state) in enumerate(zip(ticks, states, strict=True)):
            signal = str(scores.signal[row])
            confidence, agree = float(scores.confidence[row]), bool(scores.agree[row])
            decision = state.trade_filter.decide(
                tick.ts, tick.price, signal, confidence, agree, warm=bool(warm[row])
            )
            predictions.append(
                Prediction(
                    symbol=tick.symbol,
                    ts=iso_ns(tick.ts),
                    seq=tick.seq,
                    p15=dict(zip(LABELS_15M, p15[row].tolist(), strict=True)),
                    p30=dict(zip(LABELS_30M, p30[row].tolist(), strict=True)),
                    signal=signal,
                    confidence=confidence,
                    action=decision.action,
                    reason=decision.reason,
                    warm=bool(warm[row]),
                    models=self._versions,
                )
            )
        # Commit: plain assignments from here on, nothing that can fail half-way
        self._symbols.update(working)
        for tick, state, prediction in zip(ticks, states, predictions, strict=True):
            state.cache[tick.key] = prediction
            if len(state.cache) > self.replay_cache_size:
                state.cache.popitem(last=False)
            state.last_key = tick.key
        return predictions
