"""The request timeout the service runs under (`serving.bentoml_fixes`): it answers 504 when nothing has
started in time and, unlike BentoML's own, leaves no timer (and the context it holds) behind a request."""

from __future__ import annotations

import asyncio
import gc

import pytest
from bentoml._internal.server.http import traffic

from serving.bentoml_fixes import TimeoutMiddleware


def _app(delay_s: float = 0.0, fail: bool = False):
    async def app(scope, receive, send) -> None:
        await asyncio.sleep(delay_s)
        if fail:
            raise RuntimeError("handler failed")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    return app


async def _call(middleware) -> list[dict]:
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b""}

    async def send(message: dict) -> None:
        sent.append(message)

    await middleware({"type": "http", "path": "/score", "method": "POST", "headers": []}, receive, send)
    return sent


def _live_timers(middleware_cls: type, requests: int) -> int:
    async def run() -> int:
        middleware = middleware_cls(_app(), timeout=30.0)
        for _ in range(requests):
            assert [m.get("status") for m in await _call(middleware)][0] == 200
        gc.collect()
        return sum(isinstance(o, asyncio.TimerHandle) and not o.cancelled() for o in gc.get_objects())

    return asyncio.run(run())


def test_no_timer_outlives_its_request_where_bentomls_keeps_one_per_request_for_the_timeout() -> None:
    assert traffic.TimeoutMiddleware is TimeoutMiddleware  # what BentoML builds the app with, once imported

    assert _live_timers(TimeoutMiddleware, 500) == 0
    assert _live_timers(traffic.TimeoutMiddleware.__mro__[1], 500) >= 500  # BentoML's own, for contrast


def test_a_request_without_an_answer_in_time_gets_504_and_a_failing_one_its_error_at_once() -> None:
    sent = asyncio.run(_call(TimeoutMiddleware(_app(delay_s=5.0), timeout=0.1)))
    assert sent[0]["status"] == 504 and b"no answer within 0.1 s" in sent[1]["body"]

    async def failing() -> float:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(RuntimeError, match="handler failed"):
            await _call(TimeoutMiddleware(_app(fail=True), timeout=30.0))
        return loop.time() - started

    assert asyncio.run(failing()) < 1.0


def test_the_scoring_service_is_built_with_this_timeout_and_without_a_span_for_score() -> None:
    from _bentoml_impl.server.app import ServiceAppFactory

    from serving.service import TickScorer

    TickScorer.inject_config()
    middlewares = {m.cls: m.kwargs for m in ServiceAppFactory(TickScorer).middlewares}

    assert TimeoutMiddleware in middlewares and traffic.TimeoutMiddleware.__mro__[1] not in middlewares
    tracing = next(kwargs for cls, kwargs in middlewares.items() if cls.__name__ == "OpenTelemetryMiddleware")
    assert tracing["excluded_urls"].url_disabled("http://127.0.0.1:3001/score")
    assert not tracing["excluded_urls"].url_disabled("http://127.0.0.1:3001/models")
