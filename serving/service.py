"""The BentoML scoring service: the universe's champions, online state per symbol, and its HTTP routes.

Run it with `bentoml serve serving.service:TickScorer --port 3001` (or `tickml serve`); settings come from
the environment (`serving.config`). Routes: POST /score, GET /models, POST /admin/reload, and BentoML's own
/livez, /readyz (503 with the reason until champions are loaded) and /metrics.

/score is a plain Starlette route rather than a `@bentoml.api`: it must refuse hostile input cheaply and
in its own words (JSON only, a body-size limit, one bounded error and one log line per refusal), which
BentoML's API layer does not allow, and it is the latency-critical path (see `benchmarks/scoring.py`).
"""

from __future__ import annotations

import gc
import hmac
import json
import logging
import os
import threading
import time

import anyio
import bentoml
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from feature_store.instruments import get_universe
from feature_store.store import open_store
from pipelines.registry import CHAMPION
from pipelines.scoring import ChampionPair
from pipelines.shards import Shard
from serving import bentoml_fixes  # noqa: F401 - BentoML's request timer, fixed before the app is built
from serving.champions import ChampionWatcher
from serving.config import ServingConfig
from serving.schemas import (
    FeatureSetInfo,
    ModelsResponse,
    ServedModel,
    parse_request,
    untimely,
)
from serving.state import NotReady, ReplayConflictError, ScoringState, StaleTickError, store_history

log = logging.getLogger("tickml.serving")
MAX_ERRORS_SHOWN = 20  # a body with 100,000 bad fields gets the first few, and the count
# bodies up to this size (about 80 ticks) are answered on the event loop, larger ones in a thread
INLINE_BYTES = 16_384


def _error(status: int, message: str, detail: list[dict] | None = None, total: int | None = None) -> Response:
    log.warning("POST /score refused (%d): %s", status, message[:300])
    body: dict = {"error": message[:2000]}
    if detail is not None:
        body["detail"] = detail
        body["errors"] = total
    return JSONResponse(body, status_code=status)


def _validation_error(exc: ValidationError) -> Response:
    errors = exc.errors(include_url=False, include_context=False, include_input=False)
    shown = [{"loc": e["loc"], "msg": e["msg"][:500], "type": e["type"]} for e in errors[:MAX_ERRORS_SHOWN]]
    more = f" (first {MAX_ERRORS_SHOWN} shown)" if len(errors) > MAX_ERRORS_SHOWN else ""
    message = f"{len(errors)} validation error(s){more}: " + "; ".join(e["msg"] for e in shown[:3])
    return _error(400, message, shown, len(errors))


async def _body(request: Request, limit: int) -> bytes | Response:
    """The request body, or the response refusing it (not JSON: 415, over `limit` bytes: 413)."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        return _error(415, f"content-type must be application/json, got {media_type or 'none'!r}")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return _error(413, f"body of {int(declared):,} bytes is over the limit of {limit:,}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return _error(413, f"body is over the limit of {limit:,} bytes")
    return bytes(body)


async def score(request: Request) -> Response:
    """POST /score: one prediction per tick, in order (see `serving.schemas.ScoreRequest`).

    A small body is answered on the event loop unless one of its symbols is being scored by another
    request; a large one (parsing 500 ticks alone takes milliseconds) and one waiting for a busy symbol are
    answered in a thread, so the loop never blocks and single ticks of other symbols go on meanwhile.
    """
    scorer: TickScorer = request.app.state.scorer
    body = await _body(request, scorer.config.max_body_bytes)
    if isinstance(body, Response):
        return body
    response = _answer(scorer, body, wait=False) if len(body) <= INLINE_BYTES else None
    if response is None:
        response = await anyio.to_thread.run_sync(_answer, scorer, body, True)
    return response


def _answer(scorer: TickScorer, body: bytes, wait: bool) -> Response | None:
    """The response to a /score body; None if `wait` is False and a symbol of it is busy."""
    try:
        ticks = parse_request(body).ticks
    except ValidationError as exc:
        return _validation_error(exc)
    for i, tick in enumerate(ticks):
        if tick.symbol not in scorer.universe.symbols:
            return _error(
                400,
                f"ticks[{i}].symbol: {tick.symbol!r} is not in universe {scorer.universe.name!r} "
                f"({', '.join(scorer.universe.symbols)}), whose models are served here; serve its own "
                "universe with `tickml serve --universe NAME`",
            )
    if scorer.shard is not None:
        for i, tick in enumerate(ticks):
            if not scorer.shard.owns(tick.symbol):
                return _error(
                    421,
                    f"ticks[{i}].symbol: {tick.symbol!r} is not in shard {scorer.shard} served by this "
                    "replica; route it with `tickml stream --shard`",
                )
    problem = untimely(ticks, time.time_ns(), int(scorer.config.max_ahead_s * 1e9))
    if problem is not None:
        return _error(400, problem[1])
    try:
        answer = scorer.state.score_json(ticks, wait=wait)
    except NotReady:
        return _error(503, f"not ready: {scorer.watcher.status.problem}")
    except (StaleTickError, ReplayConflictError) as exc:
        return _error(409, str(exc))
    return None if answer is None else Response(answer, media_type="application/json")  # a ScoreResponse


def _served(pair: ChampionPair | None, alias: str = CHAMPION) -> list[ServedModel]:
    """The models of `pair` as GET /models lists them (the shadow's `alias` is 'latest')."""
    if pair is None:
        return []
    return [
        ServedModel(
            name=model.name,
            version=model.version,
            alias=alias,
            flavor=model.flavor,
            classes=list(model.classes),
            feature_set=FeatureSetInfo(
                name=model.feature_set.name,
                version=model.feature_set.version,
                features=len(model.feature_set.features),
            ),
            run_id=model.run_id,
            loaded_at=model.loaded_at,
        )
        for model in (pair.model_15m, pair.model_30m)
    ]


async def models(request: Request) -> Response:
    """GET /models: the champion versions being served, and the last registry problem if any."""
    scorer: TickScorer = request.app.state.scorer
    status = scorer.watcher.status
    response = ModelsResponse(
        models=_served(scorer.state.champions),
        shadow=_served(scorer.state.shadow, alias="latest"),
        ready=status.ready,
        problem=status.problem,
        shadow_problem=status.shadow_problem,
        checked_at=status.checked_at,
    )
    return Response(response.model_dump_json(), media_type="application/json")


async def reload(request: Request) -> Response:
    """POST /admin/reload (bearer token): look at the registry now; answers what is served afterwards."""
    scorer: TickScorer = request.app.state.scorer
    token = scorer.config.admin_token
    if token is None:
        return JSONResponse(
            {"error": "admin routes are off: set TICKML_ADMIN_TOKEN (or TICKML_ADMIN_TOKEN_FILE)"}, 403
        )
    given = request.headers.get("authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        log.warning("POST /admin/reload refused: missing or wrong bearer token")
        return JSONResponse({"error": "authorization: a valid 'Bearer <token>' is required"}, 401)
    status = await anyio.to_thread.run_sync(scorer.watcher.check)
    return Response(
        json.dumps(
            {
                "ready": status.ready,
                "served": status.served,
                "problem": status.problem,
                "shadow": status.shadow,
                "shadow_problem": status.shadow_problem,
            }
        ),
        media_type="application/json",
    )


app = Starlette(
    routes=[
        Route("/score", score, methods=["POST"]),
        Route("/models", models, methods=["GET"]),
        Route("/admin/reload", reload, methods=["POST"]),
    ]
)


_freezing = threading.Event()  # set while the service collects on purpose, after loading models


def _log_slow_collections(threshold_s: float = 0.1) -> None:
    """Log every garbage collection that holds the worker longer than `threshold_s` (what the load benchmark
    counts as a stall): a stall's first suspect."""
    started = [0.0]

    def callback(phase: str, info: dict) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        elif (took := time.perf_counter() - started[0]) > threshold_s and not _freezing.is_set():
            log.warning(
                "garbage collection of generation %d held the worker %.0f ms (%d objects freed)",
                info["generation"],
                took * 1e3,
                info["collected"],
            )

    gc.callbacks.append(callback)


def _exit_with_parent(interval_s: float = 0.5) -> None:
    """End this worker when bentoml's watcher is gone (even after kill -9), so it never holds the port."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval_s)
        log.error("scoring worker %d: its watcher %d is gone; exiting", os.getpid(), parent)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


# BentoML settings; `python -m benchmarks --only overhead` measures what each costs a request. No
# OpenTelemetry span for /score: 0.16 of the 0.18 ms BentoML adds to uvicorn, for traces nothing exports.
SERVICE_CONFIG: dict = {"traffic": {"timeout": 30}, "tracing": {"excluded_urls": ["/score"]}}


# One worker on purpose: features and the replay cache are in-process state, so a second worker would
# see half of each symbol's ticks. Scale out by sharding symbols across replicas instead.
@bentoml.service(name="tick_scorer", workers=1, **SERVICE_CONFIG)
@bentoml.asgi_app(app, path="/")
class TickScorer:
    """Scores ticks with the `champion` versions of a universe's `direction-15m` and `direction-30m` models."""

    def __init__(self) -> None:
        _exit_with_parent()
        _log_slow_collections()
        os.environ["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] = "false"  # and tickml loads native files only
        self.config = config = ServingConfig.from_env()
        self.universe = get_universe(config.universe)
        self.shard = Shard.parse(config.shard) if config.shard else None
        history = store_history(open_store()) if config.warm_start else None
        self.state = ScoringState(None, history=history)
        self.watcher = ChampionWatcher(
            self.universe,
            self._swap,
            uri=config.tracking_uri,
            interval_s=config.reload_interval_s,
            shadow=config.shadow,
        )
        self.watcher.start()  # never raises: a registry fault leaves the service up and not ready
        app.state.scorer = self

    def _swap(self, pair: ChampionPair, shadow: ChampionPair | None) -> None:
        self.state.swap(pair, shadow)
        if self.config.gc_freeze:
            # Everything loaded so far is long-lived: moved out of the collector's generations, full
            # collections stop walking it on the hot path (`python -m benchmarks --only load`).
            _freezing.set()
            try:
                gc.collect()
                gc.freeze()
            finally:
                _freezing.clear()

    def __is_ready__(self) -> bool:
        status = self.watcher.status
        if not status.ready:
            raise HTTPException(503, f"not ready: {status.problem}")
        return True
