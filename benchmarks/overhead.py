"""What BentoML's server stack costs a request, setting by setting: the same no-op route (`echo_service`)
served by bare uvicorn (httptools, uvloop: what BentoML runs on) and by `bentoml serve` with its defaults, with
each of its per-request middlewares turned off in turn, and with tickml's own service settings
(`serving.service.SERVICE_CONFIG`). One lean client on a persistent connection, one server at a time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from benchmarks.scoring import _poster, _row, _timed
from serving.service import SERVICE_CONFIG
from tickml import service

ROOT = Path(__file__).resolve().parents[1]
BODY = json.dumps(
    {"ticks": [{"symbol": "NIFTY", "ts": "2026-10-19T10:00:00+05:30", "seq": 1, "price": 24000.0, "qty": 1}]}
).encode()
NO_ACCESS_LOG = {"logging": {"access": {"enabled": False}}}
NO_TRACING = {"tracing": {"excluded_urls": ["/score"]}}
NO_METRICS = {"metrics": {"enabled": False}}
SETTINGS = (
    ("BentoML defaults", {}),
    ("BentoML, access log off", NO_ACCESS_LOG),
    ("BentoML, OpenTelemetry skips /score", NO_TRACING),
    ("BentoML, request metrics off", NO_METRICS),
    ("BentoML, all three off", {**NO_ACCESS_LOG, **NO_TRACING, **NO_METRICS}),
    ("BentoML with tickml's service settings", SERVICE_CONFIG),
)


def _wait(port: int, proc: subprocess.Popen, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode}")
        with contextlib.suppress(OSError):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("POST", "/score", body=BODY, headers={"content-type": "application/json"})
            if conn.getresponse().status == 200:
                return
        time.sleep(0.3)
    raise TimeoutError(f"server on port {port} not answering after {timeout_s:.0f} s")


@contextlib.contextmanager
def _serving(command: list[str], port: int, env: dict[str, str], log: Path) -> Iterator[None]:
    with log.open("ab") as out:
        proc = subprocess.Popen(
            command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env
        )
    try:
        _wait(port, proc)
        yield
    finally:
        service.stop(proc)


def _measure(port: int, requests: int) -> list[float]:
    post = _poster(port)
    _timed(post, [BODY] * 300)  # warm-up
    return _timed(post, [BODY] * requests)


def run(*, requests: int = 2000) -> str:
    """`requests` no-op POSTs per setting; returns a markdown table."""
    work = Path(tempfile.mkdtemp(prefix="tickml-overhead-"))
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "BENTOML_DO_NOT_TRACK": "True", "BENTOML_HOME": str(work / "bentoml")}
    rows, medians = [], {}
    port = service.free_port()
    uvicorn = [str(bin_dir / "uvicorn"), "benchmarks.echo_service:app", "--port", str(port)]
    uvicorn += ["--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning"]
    with _serving(uvicorn, port, env, work / "uvicorn.log"):
        latencies = _measure(port, requests)
    rows.append(_row("bare uvicorn (baseline)", latencies))
    medians["bare uvicorn (baseline)"] = float(np.median(latencies))
    for label, config in SETTINGS:
        port = service.free_port()
        command = [str(bin_dir / "bentoml"), "serve", "benchmarks.echo_service:Echo", "--port", str(port)]
        with _serving(command, port, {**env, "TICKML_ECHO_CONFIG": json.dumps(config)}, work / "bentoml.log"):
            latencies = _measure(port, requests)
        rows.append(_row(label, latencies))
        medians[label] = float(np.median(latencies))
    base = medians["bare uvicorn (baseline)"]
    return "\n".join(
        [
            f"## BentoML's server stack ({requests} no-op POST /score per setting after 300 warm-up, lean "
            f"client, persistent connection, {dt.date.today()})",
            "",
            "| server | p50 ms | p99 ms | p99.9 ms | requests/s (1 client) |",
            "|---|---:|---:|---:|---:|",
            *rows,
            "",
            "Added over bare uvicorn at p50: "
            + "; ".join(f"{label} +{ms - base:.3f} ms" for label, ms in list(medians.items())[1:])
            + f". tickml's settings: `{json.dumps(SERVICE_CONFIG)}`.",
        ]
    )
