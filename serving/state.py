"""Per-symbol online state of the scoring service: features, trade filter, a replay cache, and the champions.

Kept free of BentoML so it can be exercised directly; `serving.service` is the thin HTTP shell around it.
A request is all or nothing: it is checked against the state as a whole, scored on copies of its symbols'
state, and committed only once every tick has its prediction, so a refused or failed request leaves no
trace, and a tick resent after a crash gets its first prediction back instead of being folded into the
features twice.

Warm start: when a symbol's first tick reaches the service (after a start or a restart), its state is
rebuilt from the session's ticks already in the tick store before that tick, through the backtest's
replay (the same kernel, models and trade filter), so a restart mid-session changes no prediction. When
the store cannot be read, the symbol's predictions say `history_complete: false` and allow no trade, and
the rebuild is retried on a later request.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pydantic_core import to_json

from feature_store.features import FEATURE_NAMES, OnlineFeatures
from feature_store.instruments import Instrument, get_instrument
from feature_store.schema import LABELS_15M, LABELS_30M
from feature_store.store import TickStore
from pipelines.backtest.replay import Decider, FeatureReplay, model_signals
from pipelines.scoring import ChampionPair, Scores
from pipelines.trade_filter import TradeFilter, TradeFilterConfig
from serving.schemas import Prediction, Tick, iso_ns

log = logging.getLogger("tickml.serving")

REPLAY_CACHE_SIZE = 10_000
HISTORY_RETRY_S = 5.0  # a failed warm start is retried on the symbol's next request after this long
Key = tuple[int, int]  # (ts_ns, seq)
# A scored tick in the replay cache: its field values and its prediction's JSON. Plain immutable values
# the garbage collector stops tracking, so a full cache adds nothing to a full collection; as Tick and
# Prediction objects, two symbols' caches made every full collection take about 90 ms.
CacheEntry = tuple[tuple, bytes]
# (instrument, ts_ns, seq) -> the session's ticks strictly before (ts_ns, seq), canonical, (ts, seq) order
TickHistory = Callable[[Instrument, int, int], pd.DataFrame]


def store_history(store: TickStore) -> TickHistory:
    """A `TickHistory` over `store`: the stored ticks of the tick's trading session (open to close) before it."""

    def before(instrument: Instrument, ts_ns: int, seq: int) -> pd.DataFrame:
        ts = pd.Timestamp(ts_ns, tz="UTC")
        day = instrument.trading_day(pd.DatetimeIndex([ts]))[0]
        start, _ = instrument.session_bounds(day)
        ticks = store.read_ticks(instrument.symbol, start, ts + pd.Timedelta(1, "ns"))
        at = ticks["ts"].array.asi8
        return ticks[(at < ts_ns) | ((at == ts_ns) & (ticks["seq"].to_numpy() < seq))].reset_index(drop=True)

    return before


class NotReady(RuntimeError):
    """No champions are loaded yet (see `serving.champions`)."""


class StaleTickError(ValueError):
    """A tick at or before its symbol's last scored tick that is no longer (or never was) in the cache."""

    def __init__(self, index: int, tick: Tick, last: Key, cache_size: int) -> None:
        self.index = index
        super().__init__(
            f"ticks[{index}]: {tick.symbol} tick (ts={iso_ns(tick.ts)}, seq={tick.seq}) is not after the "
            f"symbol's last scored tick (ts={iso_ns(last[0])}, seq={last[1]}) and is not among its last "
            f"{cache_size} predictions; the online state cannot go back in time"
        )


class ReplayConflictError(ValueError):
    """A tick resent under a key already scored, with different content."""

    def __init__(self, index: int, tick: Tick, first: Tick) -> None:
        self.index = index
        changed = [k for k, v in tick.model_dump().items() if getattr(first, k) != v]
        super().__init__(
            f"ticks[{index}]: {tick.symbol} (ts={iso_ns(tick.ts)}, seq={tick.seq}) was already scored with "
            f"different {', '.join(changed)}; a tick's content cannot change once scored"
        )


@dataclass
class SymbolState:
    """Everything the service remembers about one symbol's stream."""

    instrument: Instrument
    features: OnlineFeatures
    trade_filter: TradeFilter
    last_key: Key | None = None
    cache: OrderedDict[Key, CacheEntry] = field(default_factory=OrderedDict)
    history_problem: str | None = None  # why the session's earlier ticks could not be replayed
    retry_at: float = 0.0  # time.monotonic() after which a failed warm start is tried again


class ScoringState:
    """The champions plus every symbol's state.

    Each symbol has a lock: a request holds the locks of its symbols (taken in name order, so two requests
    never wait on each other in a cycle), and a 1,000-tick batch of one symbol never delays a tick of
    another. The champions and the shadow are one tuple, replaced whole by `swap` and read once per request:
    a request is scored by one pair from start to end.
    """

    def __init__(
        self,
        champions: ChampionPair | None,
        *,
        history: TickHistory | None = None,
        replay_cache_size: int = REPLAY_CACHE_SIZE,
        trade_filter: TradeFilterConfig | None = None,
    ) -> None:
        if replay_cache_size < 1:
            raise ValueError(f"replay_cache_size must be >= 1, got {replay_cache_size}")
        self._served: tuple[ChampionPair | None, ChampionPair | None] = (champions, None)
        self.history = history
        self.replay_cache_size = replay_cache_size
        self._trade_filter = trade_filter
        self._symbols: dict[str, SymbolState] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()  # guards creating a symbol's lock, nothing else

    @property
    def champions(self) -> ChampionPair | None:
        return self._served[0]

    @property
    def shadow(self) -> ChampionPair | None:
        return self._served[1]

    def swap(self, champions: ChampionPair, shadow: ChampionPair | None = None) -> None:
        """Serve `champions` (and score `shadow` beside them) from the next request on; every symbol's
        state is kept. Requests already being scored finish with the pair they started with."""
        self._served = (champions, shadow)

    def _lock_of(self, symbol: str) -> threading.Lock:
        lock = self._locks.get(symbol)
        if lock is None:
            with self._locks_lock:
                lock = self._locks.setdefault(symbol, threading.Lock())
        return lock

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

    def _warm_start(self, symbol: str, first: Tick, champions: ChampionPair) -> SymbolState:
        """A new state of `symbol` holding its session's stored ticks before `first` (see module doc)."""
        state = self._new_symbol(symbol)
        if self.history is None:
            return state
        try:
            ticks = self.history(state.instrument, first.ts, first.seq)
        except Exception as exc:  # noqa: BLE001 - an unreadable store marks the symbol, it never fails a request
            problem = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
            log.warning("%s: session history unreadable, scoring without it: %s", symbol, problem)
            state.history_problem, state.retry_at = problem, time.monotonic() + HISTORY_RETRY_S
            return state
        if len(ticks):
            replay = FeatureReplay(state.instrument)
            day = replay.day(ticks)
            decider = Decider(state.instrument, state.trade_filter.config)
            decider.decide(day, model_signals(champions, day)[1])
            state.features, state.trade_filter = replay.features, decider.trade_filter
            state.last_key = (int(day.ts_ns[-1]), int(ticks["seq"].iloc[-1]))
            log.info("%s: warm start from %d stored ticks of the session", symbol, len(ticks))
        return state

    def _working_copy(self, symbol: str, first: Tick, champions: ChampionPair) -> SymbolState:
        """A copy of `symbol`'s features and trade filter to score a request on (warm-started if unseen).

        The replay cache is shared, not copied: it only changes when a request commits. Instrument and
        trade-filter config are immutable and shared too; what is copied is about 70 kB of arrays.
        """
        state = self._symbols.get(symbol)
        if state is None or (state.history_problem and time.monotonic() >= state.retry_at):
            rebuilt = self._warm_start(symbol, first, champions)
            if state is not None:
                rebuilt.cache = state.cache
            return rebuilt
        return SymbolState(
            state.instrument,
            state.features.copy(),
            copy.copy(state.trade_filter),  # its fields are replaced, never mutated (position included)
            state.last_key,
            state.cache,
            state.history_problem,
            state.retry_at,
        )

    def score(self, ticks: Sequence[Tick], *, wait: bool = True) -> list[Prediction] | None:
        """Predictions for validated `ticks` (each symbol's in (ts, seq) order), in request order.

        A tick already scored and still cached returns its cached prediction and changes nothing; a new
        tick updates its symbol's features and trade filter. Raises NotReady without champions,
        StaleTickError when a tick is not after its symbol's last one and not in the cache, and
        ReplayConflictError when a cached key comes back with other content. All or nothing: whatever is
        raised, no state changed. With `wait=False`, returns None at once instead of waiting for a symbol
        another request is scoring (the service's event loop must never block on a lock).

        The predictions are validated back from the JSON the service sends (`score_json`).
        """
        parts = self._score(ticks, wait)
        return None if parts is None else [Prediction.model_validate_json(part) for part in parts]

    def score_json(self, ticks: Sequence[Tick], *, wait: bool = True) -> bytes | None:
        """`score` as the body POST /score answers: a `ScoreResponse` in JSON, built from each prediction's
        JSON as it was encoded once, when its tick was scored."""
        parts = self._score(ticks, wait)
        return None if parts is None else b'{"predictions":[' + b",".join(parts) + b"]}"

    def _score(self, ticks: Sequence[Tick], wait: bool) -> list[bytes] | None:
        locks = [self._lock_of(symbol) for symbol in sorted({t.symbol for t in ticks})]
        held = []
        try:
            for lock in locks:
                if not lock.acquire(blocking=wait):
                    return None
                held.append(lock)
            return self._score_locked(ticks)
        finally:
            for lock in reversed(held):
                lock.release()

    def _score_locked(self, ticks: Sequence[Tick]) -> list[bytes]:
        champions, shadow = self._served
        if champions is None:
            raise NotReady("no champions loaded")
        out: list[bytes | None] = []
        for i, tick in enumerate(ticks):
            state = self._symbols.get(tick.symbol)
            if state is not None and state.last_key is not None and tick.key <= state.last_key:
                cached = state.cache.get(tick.key)
                if cached is None:
                    raise StaleTickError(i, tick, state.last_key, self.replay_cache_size)
                if cached[0] != _fields(tick):
                    raise ReplayConflictError(i, tick, _tick(cached[0]))
                out.append(cached[1])
            else:
                out.append(None)
        fresh = [i for i, p in enumerate(out) if p is None]
        if fresh:
            scored = self._score_fresh([ticks[i] for i in fresh], champions, shadow)
            for i, prediction in zip(fresh, scored, strict=True):
                out[i] = prediction
        return out  # type: ignore[return-value]  # every slot is filled above

    def _score_fresh(
        self, ticks: list[Tick], champions: ChampionPair, shadow: ChampionPair | None
    ) -> list[bytes]:
        # Scored on working copies, swapped in at the end: an error on any tick leaves every symbol as it was
        working: dict[str, SymbolState] = {}
        for tick in ticks:
            if tick.symbol not in working:
                working[tick.symbol] = self._working_copy(tick.symbol, tick, champions)
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
        scores = champions.score(X)
        p15, p30, versions = scores.p15, scores.p30, champions.versions
        challenger = None if shadow is None else shadow.score(X)
        predictions = []
        for row, (tick, state) in enumerate(zip(ticks, states, strict=True)):
            signal = str(scores.signal[row])
            confidence, agree = float(scores.confidence[row]), bool(scores.agree[row])
            if state.history_problem:
                action, reason = "NONE", f"session history unavailable: {state.history_problem}"
            else:
                decision = state.trade_filter.decide(
                    tick.ts, tick.price, signal, confidence, agree, warm=bool(warm[row])
                )
                action, reason = decision.action, decision.reason
            predictions.append(
                to_json(  # a `Prediction`, field for field, from validated ticks and model output
                    {
                        "symbol": tick.symbol,
                        "ts": iso_ns(tick.ts),
                        "seq": tick.seq,
                        "p15": dict(zip(LABELS_15M, p15[row].tolist(), strict=True)),
                        "p30": dict(zip(LABELS_30M, p30[row].tolist(), strict=True)),
                        "signal": signal,
                        "confidence": confidence,
                        "action": action,
                        "reason": reason,
                        "warm": bool(warm[row]),
                        "history_complete": state.history_problem is None,
                        "models": versions,
                        "shadow": None if challenger is None else _shadow(challenger, row, shadow.versions),
                    }
                )
            )
        # Commit: plain assignments from here on, nothing that can fail half-way
        self._symbols.update(working)
        for tick, state, prediction in zip(ticks, states, predictions, strict=True):
            state.cache[tick.key] = (_fields(tick), prediction)
            if len(state.cache) > self.replay_cache_size:
                state.cache.popitem(last=False)
            state.last_key = tick.key
        return predictions


def _fields(tick: Tick) -> tuple:
    return tuple(tick.__dict__.values())  # in field order


def _tick(fields: tuple) -> Tick:
    return Tick.model_construct(**dict(zip(Tick.model_fields, fields, strict=True)))


def _shadow(scores: Scores, row: int, versions: dict[str, str]) -> dict:
    """A `ShadowPrediction`, field for field."""
    return {
        "p15": dict(zip(LABELS_15M, scores.p15[row].tolist(), strict=True)),
        "p30": dict(zip(LABELS_30M, scores.p30[row].tolist(), strict=True)),
        "signal": str(scores.signal[row]),
        "confidence": float(scores.confidence[row]),
        "models": versions,
    }
