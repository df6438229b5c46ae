"""Fixtures with a real scoring service: `bentoml serve serving.service:TickScorer` on a free port.

The service is started once per session against the `champions` MLflow store, so its per-symbol state
is shared by every test that talks to it: use `fresh_day` for ticks later than any scored before.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from feature_store.instruments import get_instrument
from pipelines.streaming import ScoringClient
from tickml import service

STARTUP_TIMEOUT_S = 180.0
# Far beyond any other fixture's dates, so the served state only ever moves forward.
FIRST_SERVED_DAY = dt.date(2031, 1, 6)
SERVED_SYMBOLS = ("NIFTY", "AMZN", "NIFTY_REPLAY")
# The served days lie years ahead of the clock, so this service allows it (tests/test_service_input.py
# checks the default refuses such ticks)
FAR_AHEAD_S = 20 * 365 * 86_400
# NIFTY_REPLAY is a NIFTY twin that only the live/backtest identity test streams, so its service state
# starts fresh there, as a backtest's does; a lower confidence threshold lets the small champions trade.
REPLAY_SYMBOL = "NIFTY_REPLAY"
SERVED_INSTRUMENTS = {
    "symbols": {REPLAY_SYMBOL: {"venue": "NSE", "price": 24000.0, "trading": {"min_confidence": 0.45}}},
    "universes": {"default": {"symbols": list(SERVED_SYMBOLS)}},
}


@pytest.fixture(scope="session")
def served_instruments(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The instruments file of the session's scoring service (set TICKML_INSTRUMENTS to it to agree)."""
    path = tmp_path_factory.mktemp("served") / "instruments.yaml"
    path.write_text(yaml.safe_dump(SERVED_INSTRUMENTS))
    return path


@pytest.fixture(scope="session")
def scoring_service_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of the session's scoring service: its log is `serve.log`."""
    return tmp_path_factory.mktemp("bentoml")


@pytest.fixture(scope="session")
def scoring_service(champions: str, served_instruments: Path, scoring_service_dir: Path) -> Iterator[str]:
    """Base URL of a real `bentoml serve` of TickScorer, ready (GET /readyz is 200) with both champions."""
    workdir = scoring_service_dir
    port = service.free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = workdir / "serve.log"
    # the champions were trained on NIFTY; the tests stream SERVED_SYMBOLS through them as one universe
    env = {
        "MLFLOW_TRACKING_URI": champions,
        "BENTOML_HOME": str(workdir / "home"),
        "TICKML_INSTRUMENTS": str(served_instruments),
        "TICKML_HOME": str(workdir / "store"),  # an empty tick store: every symbol starts fresh
        "TICKML_MAX_AHEAD_S": str(FAR_AHEAD_S),
    }
    process = service.start(port, log_path=log_path, env=env)
    try:
        service.wait_ready(process, url, timeout_s=STARTUP_TIMEOUT_S, log_path=log_path)
        yield url
    finally:
        service.stop(process)


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


def serve_banner(args: list[str], env: dict[str, str]) -> str:
    """The line `tickml serve ARGS` prints before it becomes the service; the service is then stopped."""
    tickml = Path(sys.executable).with_name("tickml")
    proc = subprocess.Popen(
        [str(tickml), "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
        env={**os.environ, "BENTOML_DO_NOT_TRACK": "True", **env},
    )
    try:
        assert proc.stdout is not None
        return proc.stdout.readline().strip()
    finally:
        service.stop(proc)
        proc.stdout.close()
