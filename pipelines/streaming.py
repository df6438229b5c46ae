"""The streaming sensor, once: read ticks newer than a cursor, score them over HTTP, store, advance.

Two drivers share it: the Dagster sensor (cursor kept by Dagster) and `tickml stream` (`run_stream`,
cursor kept in the tick store). The cursor moves only after the predictions are stored, so a crash
replays ticks; the store's idempotent writes and the service's replay cache make that exactly once, as
long as a pass stays well inside the cache: hence `MAX_TICKS_PER_PASS`, and a pass cut short by an
error still hands back the cursor it reached (`StreamInterrupted.step`) for the driver to save.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import numpy as np
import pandas as pd

from feature_store.instruments import get_instrument, load_instruments
from feature_store.schema import LABELS_15M, LABELS_30M, NULLABLE_COLUMNS, coerce_predictions, coerce_ticks
from feature_store.store.base import TickKey, TickStore
from pipelines.registry import MODEL_15M, MODEL_30M, horizon_of

log = logging.getLogger(__name__)

Cursor = dict[str, TickKey]

# Ticks one pass scores at most. The service remembers each symbol's last 10,000 predictions
# (serving.state.REPLAY_CACHE_SIZE); a pass replayed after a crash must stay inside that, or the replay is
# refused as stale forever. 2,000 also keeps a Dagster sensor evaluation far inside its 60 s timeout.
MAX_TICKS_PER_PASS = 2_000


class ScoringError(RuntimeError):
    """The scoring service refused a request (4xx) or failed (5xx); `message` is its explanation."""

    def __init__(self, status: int, message: str) -> None:
        self.status, self.message = status, message
        super().__init__(f"scoring service answered {status}: {message}")

    @property
    def transient(self) -> bool:
        """5xx and 429 may succeed on retry; other 4xx will not until the input changes."""
        return self.status >= 500 or self.status == 429


def _error_message(response: httpx.Response) -> str:
    """The service's error text: `{"error", "detail": [{"msg"}]}` for validation, `[{"error"}]` otherwise."""
    try:
        body: Any = response.json()
    except ValueError:
        return response.text[:500]
    if isinstance(body, list) and body:  # BentoML 1.4 wraps a raised BentoMLException in a 1-item list
        body = body[0]
    if not isinstance(body, dict):
        return str(body)[:500]
    details = [d.get("msg", "") for d in body.get("detail", []) if isinstance(d, dict)]
    return "; ".join(details) if details else str(body.get("error", body))


_REQUIRED_VALUES = ("price", "size", "volume")
_BOOK_VALUES = ("bid", "ask", "bid_size", "ask_size", "oi")  # NULLABLE_COLUMNS: NaN is "not quoted"


def first_unencodable(ticks: pd.DataFrame) -> tuple[int, str] | None:
    """(row, reason) of the first canonical tick JSON cannot carry, or None when every tick can be sent.

    JSON has no NaN or infinity: a required value (price, size, volume) must be finite; a book field may
    be NaN (not quoted, left out of the request) but not infinite.
    """
    required = ticks[list(_REQUIRED_VALUES)].to_numpy(dtype=np.float64)
    book = ticks[list(_BOOK_VALUES)].to_numpy(dtype=np.float64)
    bad = ~np.isfinite(required).all(axis=1) | np.isinf(book).any(axis=1)
    if not bad.any():
        return None
    row = int(np.argmax(bad))
    tick = ticks.iloc[row]
    column = next(
        c
        for c in (*_REQUIRED_VALUES, *_BOOK_VALUES)
        if math.isinf(tick[c]) or (c in _REQUIRED_VALUES and math.isnan(tick[c]))
    )
    return row, (
        f"{tick['symbol']} tick (ts={pd.Timestamp(tick['ts']).isoformat()}, seq={int(tick['seq'])}) has "
        f"{column}={tick[column]}, which JSON cannot carry; correct or quarantine it in the tick store"
    )


def ticks_payload(ticks: pd.DataFrame) -> list[dict[str, Any]]:
    """Canonical ticks as the service's JSON objects: `ts` as integer epoch ns, absent book fields omitted.

    Raises ValueError naming the tick and field when a value cannot be sent (see `first_unencodable`).
    """
    frame = coerce_ticks(ticks)
    unencodable = first_unencodable(frame)
    if unencodable is not None:
        raise ValueError(f"ticks[{unencodable[0]}]: {unencodable[1]}")
    columns: dict[str, list[Any]] = {c: frame[c].tolist() for c in frame.columns if c != "ts"}
    columns["ts"] = frame["ts"].array.asi8.tolist()
    records = []
    for i in range(len(frame)):
        record = {c: values[i] for c, values in columns.items()}
        for c in NULLABLE_COLUMNS:
            if record[c] != record[c]:  # NaN: the feed lacks this field for this tick
                del record[c]
        records.append(record)
    return records


class ScoringClient:
    """HTTP client of the scoring service; keeps one connection open (call `close` or use `with`)."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout)

    def score(self, ticks: pd.DataFrame | Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """POST /score: one prediction dict per tick, in order. Raises ScoringError on a 4xx/5xx answer."""
        body = ticks_payload(ticks) if isinstance(ticks, pd.DataFrame) else list(ticks)
        response = self._http.post("/score", json={"ticks": body})
        if response.status_code != 200:
            raise ScoringError(response.status_code, _error_message(response))
        return response.json()["predictions"]

    def models(self) -> dict[str, Any]:
        """GET /models: the champion versions being served."""
        response = self._http.get("/models")
        if response.status_code != 200:
            raise ScoringError(response.status_code, _error_message(response))
        return response.json()

    def ready(self) -> bool:
        """True when the service answers /readyz with 200 (models loaded)."""
        try:
            return self._http.get("/readyz").status_code == 200
        except httpx.HTTPError:
            return False

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ScoringClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def predictions_frame(
    ticks: pd.DataFrame, predictions: Sequence[Mapping[str, Any]], scored_at: pd.Timestamp
) -> pd.DataFrame:
    """Stored prediction rows (`PREDICTION_COLUMNS`) for `ticks` and the service's answer for them.

    Keys come from the ticks themselves (exact nanoseconds); a prediction that does not match its tick
    raises, since storing it under the wrong key would defeat idempotency.
    """
    if len(predictions) != len(ticks):
        raise ValueError(f"service returned {len(predictions)} predictions for {len(ticks)} ticks")
    symbols, seqs = ticks["symbol"].tolist(), ticks["seq"].tolist()
    for i, p in enumerate(predictions):
        if p["symbol"] != symbols[i] or p["seq"] != seqs[i]:
            raise ValueError(
                f"prediction {i} is for {p['symbol']}#{p['seq']}, tick is {symbols[i]}#{seqs[i]}"
            )
    rows: dict[str, Any] = {
        "symbol": symbols,
        "ts": ticks["ts"].array,
        "seq": seqs,
        **{f"p15_{c.lower()}": [p["p15"][c] for p in predictions] for c in LABELS_15M},
        **{f"p30_{c.lower()}": [p["p30"][c] for p in predictions] for c in LABELS_30M},
        "signal": [p["signal"] for p in predictions],
        "confidence": [p["confidence"] for p in predictions],
        "action": [p["action"] for p in predictions],
        "reason": [p["reason"] for p in predictions],
        "model_15m_version": [_version(p["models"], MODEL_15M) for p in predictions],
        "model_30m_version": [_version(p["models"], MODEL_30M) for p in predictions],
        "scored_at": scored_at,
    }
    return coerce_predictions(pd.DataFrame(rows))


def shadow_frame(
    ticks: pd.DataFrame, predictions: Sequence[Mapping[str, Any]], scored_at: pd.Timestamp
) -> pd.DataFrame:
    """Stored shadow rows for the predictions that carry the service's shadow scores (`PREDICTION_COLUMNS`;
    action NONE, reason 'shadow': no trade is decided on them); empty when the service scores no shadow."""
    rows = [i for i, p in enumerate(predictions) if p.get("shadow")]
    shadow = [
        {**predictions[i], **predictions[i]["shadow"], "action": "NONE", "reason": "shadow"} for i in rows
    ]
    return predictions_frame(ticks.iloc[rows], shadow, scored_at)


def _version(models: dict[str, str], base: str) -> str:
    """The version of the served model of horizon `base` (its name is `base` or a universe's `base-<u>`)."""
    for name, version in models.items():
        if horizon_of(name).model_name == base:
            return version
    raise KeyError(f"no {base} model among the served {sorted(models)}")


@dataclass(frozen=True)
class StreamStep:
    """What one pass did: the cursor after it, ticks scored, new predictions stored, per-request latency.

    `refused` maps a symbol to why its next tick cannot be scored: the service refused it (a 4xx), or the
    stored tick cannot be sent at all (a non-finite value). That symbol's cursor stays just before it,
    nothing is skipped, and the other symbols carry on. `error` describes what cut the pass short (service
    unreachable or failing, a store error); None for a pass that ran to its end.
    """

    cursor: Cursor
    ticks_scored: int
    predictions_stored: int
    latencies_ms: list[float] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    progress: dict[str, SymbolProgress] = field(default_factory=dict)


@dataclass
class SymbolProgress:
    """What a pass scored of one symbol: ticks, the last one's key, trade-filter actions, the model
    versions that scored them and the latency of each request (what `live_predictions` records)."""

    ticks: int = 0
    last: TickKey | None = None
    actions: Counter[str] = field(default_factory=Counter)
    versions: set[str] = field(default_factory=set)
    latencies_ms: list[float] = field(default_factory=list)

    def add(self, ticks: pd.DataFrame, predictions: Sequence[Mapping[str, Any]], latency_ms: float) -> None:
        self.ticks += len(ticks)
        self.last = _last_key(ticks)
        self.actions.update(p["action"] for p in predictions)
        self.versions.update(f"{n}/{v}" for n, v in predictions[-1]["models"].items())
        self.latencies_ms.append(latency_ms)


class StreamInterrupted(RuntimeError):
    """A pass cut short by an error (the `__cause__`); `step` is what it did before, cursor included.

    Every batch counted in `step` has its predictions stored, so a driver saves `step.cursor` and retries
    from there: what was done is not redone, and a long backlog cannot outrun the service's replay cache.
    """

    def __init__(self, step: StreamStep) -> None:
        self.step = step
        super().__init__(f"streaming pass interrupted after {step.ticks_scored} ticks: {step.error}")


def _last_key(ticks: pd.DataFrame) -> TickKey:
    return TickKey(int(ticks["ts"].array.asi8[-1]), int(ticks["seq"].iloc[-1]))


def streamable_symbols(store: TickStore) -> list[str]:
    """Stored symbols that are declared instruments (the only ones the service scores), sorted."""
    declared = load_instruments()
    symbols = store.symbols()
    undeclared = [s for s in symbols if s not in declared]
    if undeclared:
        log.warning("not streaming undeclared symbols %s: declare them in instruments.yaml", undeclared)
    return [s for s in symbols if s in declared]


def score_new_ticks(
    store: TickStore,
    client: ScoringClient,
    cursor: Mapping[str, TickKey | Sequence[int]] | None,
    *,
    batch_size: int = 500,
    max_ticks: int | None = MAX_TICKS_PER_PASS,
    owns: Callable[[str], bool] | None = None,
) -> StreamStep:
    """Score up to `max_ticks` stored ticks after `cursor` (per symbol; a missing symbol starts at its first).

    Symbols take turns batch by batch, so one busy symbol cannot starve the others under `max_ticks`.
    Each batch is posted to the service, its predictions are written to the store, and only then does
    that symbol's cursor move. Returns a new cursor; the one passed in is not modified. A symbol whose next
    tick the service refuses (4xx) or that cannot be sent (a non-finite value) is reported in `refused`
    and stays put, the ticks before it scored. Anything else that fails (service unreachable, 5xx,
    timeout, the store) raises StreamInterrupted carrying the step so far. `max_ticks=None` is unbounded:
    only for a caller that saves no cursor, since a replay larger than the service's cache is refused.
    `owns` limits the pass to the symbols it is true of (a `pipelines.shards.Shard.owns`; default: all).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if max_ticks is not None and max_ticks < 1:
        raise ValueError(f"max_ticks must be >= 1 or None, got {max_ticks}")
    position: Cursor = {s: TickKey(int(k[0]), int(k[1])) for s, k in (cursor or {}).items()}
    scored = stored = 0
    latencies: list[float] = []
    refused: dict[str, str] = {}
    progress: dict[str, SymbolProgress] = {}
    try:
        active = streamable_symbols(store)
        if owns is not None:
            active = [s for s in active if owns(s)]
        while active and (max_ticks is None or scored < max_ticks):
            for symbol in list(active):
                limit = batch_size if max_ticks is None else min(batch_size, max_ticks - scored)
                if limit <= 0:
                    break
                ticks = store.ticks_after(symbol, position.get(symbol), limit=limit)
                unencodable = first_unencodable(ticks)
                if len(ticks) < limit or unencodable is not None:
                    active.remove(symbol)  # drained for this pass, or stopped by a tick it cannot send
                if unencodable is not None:
                    row, reason = unencodable
                    refused[symbol] = reason
                    ticks = ticks.iloc[:row]  # the ticks before it can be sent: score them
                if ticks.empty:
                    continue
                started = time.perf_counter()
                try:
                    predictions = client.score(ticks)
                except ScoringError as exc:
                    if exc.transient:
                        raise
                    refused[symbol] = exc.message
                    if symbol in active:
                        active.remove(symbol)
                    continue
                latencies.append((time.perf_counter() - started) * 1e3)
                progress.setdefault(symbol, SymbolProgress()).add(ticks, predictions, latencies[-1])
                scored_at = pd.Timestamp.now(tz="UTC")
                shadow = shadow_frame(ticks, predictions, scored_at)
                if len(shadow):  # first: the champion's rows are what moves the cursor
                    store.write_predictions(shadow, shadow=True)
                stored += store.write_predictions(predictions_frame(ticks, predictions, scored_at))
                position[symbol] = _last_key(ticks)
                scored += len(ticks)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        step = StreamStep(position, scored, stored, latencies, refused, error, progress)
        raise StreamInterrupted(step) from exc
    return StreamStep(position, scored, stored, latencies, refused, progress=progress)


def dump_cursor(cursor: Mapping[str, TickKey | Sequence[int]]) -> str:
    """The cursor as readable JSON: `{"NIFTY": {"ts": "2026-10-30T04:12:09.123456789+00:00", "seq": 8812}}`
    (UTC to the nanosecond, the tick's key), symbols sorted."""
    return json.dumps(
        {
            s: {"ts": pd.Timestamp(int(k[0]), tz="UTC").isoformat(), "seq": int(k[1])}
            for s, k in sorted(cursor.items())
        },
        separators=(",", ":"),
    )


def load_cursor(text: str | None) -> Cursor:
    """The inverse of `dump_cursor` (and of its earlier `{symbol: [ts_ns, seq]}`); None or "" is the empty
    cursor."""
    if not text:
        return {}
    try:
        raw = json.loads(text)
        return {
            str(s): TickKey(pd.Timestamp(k["ts"]).value, int(k["seq"]))
            if isinstance(k, dict)
            else TickKey(int(k[0]), int(k[1]))
            for s, k in raw.items()
        }
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise ValueError(
            f"not a streaming cursor (expected {{symbol: {{ts: ISO time, seq: n}}}}): {text[:200]!r}"
        ) from exc


def describe(key: TickKey, symbol: str) -> str:
    """A cursor position as people read it: the tick's exchange-local time and seq."""
    local = pd.Timestamp(key.ts_ns, tz="UTC").tz_convert(get_instrument(symbol).tz)
    return f"{local:%Y-%m-%d %H:%M:%S} {local.tzname()} (seq {key.seq})"


def live_edge(
    store: TickStore, owns: Callable[[str], bool] | None = None, now: pd.Timestamp | None = None
) -> Cursor:
    """Where a stream with no cursor starts: for each stored symbol, the start of today's session when it
    has ticks today (exchange-local), else just after its last stored tick. Earlier days are history,
    for backfills and training, not for a live stream; a symbol first stored later starts at its first tick.
    """
    now = now or pd.Timestamp.now(tz="UTC")
    cursor: Cursor = {}
    for symbol in streamable_symbols(store):
        if owns is not None and not owns(symbol):
            continue
        days = store.days(symbol)
        if not days:
            continue
        instrument = get_instrument(symbol)
        session_start = instrument.session_bounds(days[-1])[0]
        if days[-1] == now.tz_convert(instrument.tz).date():
            cursor[symbol] = TickKey(session_start.value - 1, np.iinfo(np.int64).max)
        else:
            last = store.read_ticks(symbol, session_start.tz_convert("UTC"), None).iloc[-1:]
            if len(last):
                cursor[symbol] = _last_key(last)
    return cursor


def run_stream(
    store: TickStore,
    client: ScoringClient,
    *,
    poll_interval: float = 0.2,
    stop: threading.Event | None = None,
    cursor_name: str = "stream",
    batch_size: int = 500,
    max_ticks: int | None = MAX_TICKS_PER_PASS,
    max_backoff: float = 30.0,
    owns: Callable[[str], bool] | None = None,
    backfill: bool = False,
) -> Iterator[StreamStep]:
    """Score new ticks continuously in passes of at most `max_ticks`, yielding each, until `stop` is set.

    The cursor is read from the store under `cursor_name` and saved after every pass that moved it,
    including a pass an error cut short (up to its last stored batch), so a backlog drains pass by pass and
    a failure or a crash replays at most one pass. A failed pass (service down, timeout, 5xx, a store
    hiccup) is yielded with `error` set, so the caller keeps control, and retried with exponential backoff
    up to `max_backoff` seconds. A symbol in `refused` stays where it is, logged once per new reason,
    while the others stream on. A cursor never saved starts at the live edge (`live_edge`, saved at once),
    or with `backfill` at each symbol's first stored tick.
    """
    stop = stop or threading.Event()
    cursor = saved = load_cursor(store.get_cursor(cursor_name))
    if not cursor and not backfill:
        cursor = live_edge(store, owns)
        for symbol, key in cursor.items():
            log.info("streaming %s from the live edge, after %s", symbol, describe(key, symbol))
        if cursor:
            with contextlib.suppress(Exception):  # a store hiccup: the first pass saves it instead
                store.set_cursor(cursor_name, dump_cursor(cursor))
                saved = cursor
    failures = 0
    refused: dict[str, str] = {}
    while not stop.is_set():
        cause: BaseException | None = None
        if cursor != saved:  # the last save failed: save what is stored before scoring any further
            step = StreamStep(cursor, 0, 0)
        else:
            try:
                step = score_new_ticks(
                    store, client, cursor, batch_size=batch_size, max_ticks=max_ticks, owns=owns
                )
            except StreamInterrupted as exc:
                step, cause = exc.step, exc.__cause__
            cursor = step.cursor  # every batch in it is stored, even when the pass was cut short
            for symbol, reason in step.refused.items():
                if refused.get(symbol) != reason:  # once per new reason, not on every poll
                    log.error("not streaming %s past %s: %s", symbol, cursor.get(symbol), reason)
            refused = step.refused
        if cursor != saved:
            try:
                store.set_cursor(cursor_name, dump_cursor(cursor))
                saved = cursor
            except Exception as exc:  # noqa: BLE001 - a store hiccup: retried like any failed pass
                cause = cause or exc
                step = replace(step, error=step.error or f"saving cursor {cursor_name!r}: {exc!r}")
        if step.error is None:
            if failures:
                log.info("streaming recovered after %d failed passes", failures)
                failures = 0
            yield step
            if step.ticks_scored == 0:
                stop.wait(poll_interval)
            continue
        failures += 1
        yield step
        delay = min(max_backoff, poll_interval * 2 ** min(failures, 16))
        if isinstance(cause, httpx.HTTPError | ScoringError):
            log.warning("streaming pass failed (%s); retry %d in %.1fs", step.error, failures, delay)
        else:
            log.error("streaming pass failed; retry %d in %.1fs", failures, delay, exc_info=cause)
        stop.wait(delay)
