"""Fixtures with a real scoring service: `bentoml serve serving.service:TickScorer` on a free port.

The service is started once per session against the `champions` MLflow store, so its per-symbol state
is shared by every test that talks to it: use `fresh_day` for ticks later than any scored before.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from feature_store.instruments import get_instrument
from pipelines.streaming import ScoringClient

REPO = Path(__file__).resolve().parents[1]
STARTUP_TIMEOUT_S = 180.0
# Far beyond any other fixture's dates, so the served state only ever moves forward.
FIRST_SERVED_DAY = dt.date(2031, 1, 6)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop(process: subprocess.Popen) -> None:
    """Stop bentoml's watcher and every worker it started; nothing may outlive the test session.

    Workers run in process groups of their own, so they are collected before the watcher goes: a
    graceful SIGTERM lets the watcher stop them, and whatever still runs afterwards is killed.
    """
    if process.poll() is not None:
        return
    workers = psutil.Process(process.pid).children(recursive=True)
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    for worker in workers:  # psutil refuses to signal a pid that has since been reused
        with contextlib.suppress(psutil.NoSuchProcess):
            worker.kill()


@pytest.fixture(scope="session")
def scoring_service(champions: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a real `bentoml serve` of TickScorer, ready (GET /readyz is 200) with both champions."""
    workdir = tmp_path_factory.mktemp("bentoml")
    port = _free_port()
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": champions,
        "BENTOML_HOME": str(workdir / "home"),
        "BENTOML_DO_NOT_TRACK": "True",
    }
    log_path = workdir / "serve.log"
    command = [
        str(Path(sys.executable).with_name("bentoml")), "serve", "serving.service:TickScorer",
        "--host", "127.0.0.1", "--port", str(port),
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"bentoml serve exited with {process.returncode}:\n{log_path.read_text()[-4000:]}")
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"bentoml serve not ready after {STARTUP_TIMEOUT_S}s:\n{log_path.read_text()[-4000:]}")
            time.sleep(0.5)
        yield url
    finally:
        _stop(process)


@pytest.fixture
def scoring_client(scoring_service: str) -> Iterator[ScoringClient]:
    """A client of the session's scoring service with its own persistent connection."""
    with ScoringClient(scoring_service, timeout=60.0) as client:
        yield client


_last_served_day = [FIRST_SERVED_DAY - dt.timedelta(days=1)]


@pytest.fixture
def fresh_day() -> Callable[[str], dt.date]:
    """`fresh_day(symbol)`: a trading day of `symbol` later than any handed out before in this session."""

    def next_day(symbol: str) -> dt.date:
        day = get_instrument(symbol).trading_days(_last_served_day[0] + dt.timedelta(days=1), 1)[0]
        _last_served_day[0] = day
        return day

    return next_day
