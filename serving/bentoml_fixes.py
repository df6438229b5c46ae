"""A fix to BentoML applied before a service's app is built: import this module first.

BentoML 1.4's `TimeoutMiddleware` (the 504 after `traffic.timeout` when no response has started) never
cancels its timer: each request's timer, the task context it copied and the OpenTelemetry span in that
context stay alive for the whole timeout, about 30,000 of each at 1,000 requests/s with a 30 s timeout, and
every full garbage collection walks them: the 0.1-0.6 s stalls that `python -m benchmarks --only load`
measured. The replacement behaves the same and cancels the timer once the response starts.
"""

from __future__ import annotations

import asyncio

from bentoml._internal.server.http import traffic
from starlette.responses import JSONResponse


class TimeoutMiddleware(traffic.TimeoutMiddleware):
    """504 when no response has started within the timeout; the timer goes once it has. A request that
    fails before it answers ends the wait at once (BentoML's waits for the timeout)."""

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        loop = asyncio.get_running_loop()
        started = loop.create_future()
        timer = loop.call_later(self.timeout, self._set_timer_out, started)

        async def _send(message) -> None:
            if not started.done():
                started.set_result(None)
                timer.cancel()
            await send(message)

        task = asyncio.ensure_future(self.app(scope, receive, _send))
        task.add_done_callback(lambda _: started.done() or started.set_result(None))
        try:
            await started
        except TimeoutError:
            if task.cancel():
                body = {"error": f"no answer within {self.timeout:g} s"}
                return await JSONResponse(body, status_code=504)(scope, receive, send)
        finally:
            timer.cancel()
        await task


traffic.TimeoutMiddleware = TimeoutMiddleware  # BentoML imports it from there when it builds the app
