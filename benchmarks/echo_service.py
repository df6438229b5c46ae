"""A route that does no work, for `benchmarks/overhead.py`: served by bare uvicorn (`app`) or by `bentoml serve`
(`Echo`, with the service settings given as JSON in TICKML_ECHO_CONFIG), so the difference is the server stack.
"""

from __future__ import annotations

import json
import os

import bentoml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import serving.bentoml_fixes  # noqa: F401 - as the tickml service runs

ANSWER = b'{"predictions":[]}'


async def score(request: Request) -> Response:
    await request.body()
    return Response(ANSWER, media_type="application/json")


app = Starlette(routes=[Route("/score", score, methods=["POST"])])


@bentoml.service(name="echo", workers=1, **json.loads(os.environ.get("TICKML_ECHO_CONFIG", "{}")))
@bentoml.asgi_app(app, path="/")
class Echo:
    """Answers POST /score with an empty prediction list."""
