"""Backtest replay speed: recorded ticks through the serving code path in process, against a naive loop
that posts each tick to the HTTP service (what a backtest written against the live API would do)."""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from pathlib import Path

import pandas as pd

from benchmarks.scoring import FIRST_DAY, _champions
from feature_store.instruments import get_instrument
from pipelines import registry
from pipelines.backtest import report
from pipelines.backtest.engine import run_backtest
from pipelines.scoring import ChampionPair
from pipelines.simulate import simulate_days, simulate_session
from pipelines.streaming import ScoringClient, ticks_payload
from tickml import service


def run(*, days: int = 3, http_ticks: int = 2000) -> str:
    """Replay `days` simulated NIFTY sessions (champions only, then with the six rules), and post
    `http_ticks` ticks one request each to `bentoml serve`; returns a markdown table."""
    work = Path(tempfile.mkdtemp(prefix="tickml-bench-"))
    uri = f"sqlite:///{work / 'mlflow.db'}"
    _champions(uri)
    nifty = get_instrument("NIFTY")
    sessions = nifty.trading_days(FIRST_DAY + dt.timedelta(days=30), days + 1)
    ticks = pd.concat(simulate_days(nifty, sessions[:days], seed=5, signal=1.5), ignore_index=True)
    pair = ChampionPair(registry.load_champion("direction-15m"), registry.load_champion("direction-30m"))

    started = time.perf_counter()
    alone = run_backtest(nifty, ticks, pair, rules={})
    alone_s = time.perf_counter() - started
    started = time.perf_counter()
    everything = run_backtest(nifty, ticks, pair)
    everything_s = time.perf_counter() - started

    payload = ticks_payload(simulate_session(nifty, sessions[days], seed=5, signal=1.5).iloc[:http_ticks])
    port = service.free_port()
    proc = service.start(port, log_path=work / "serve.log", env={"MLFLOW_TRACKING_URI": uri})
    try:
        service.wait_ready(proc, f"http://127.0.0.1:{port}", log_path=work / "serve.log")
        with ScoringClient(f"http://127.0.0.1:{port}") as client:
            started = time.perf_counter()
            for tick in payload:
                client.score([tick])
            http_s = time.perf_counter() - started
    finally:
        service.stop(proc)
    s = alone.seconds
    n = len(ticks)
    return "\n".join(
        [
            f"## Backtest replay ({n:,} simulated NIFTY ticks over {days} sessions, both champions, {dt.date.today()})",
            "",
            "| path | ticks | seconds | ticks/s | vs naive |",
            "|---|---:|---:|---:|---:|",
            f"| naive: one POST /score per tick to `bentoml serve` (baseline) | {http_ticks:,} | {http_s:.2f} | "
            f"{http_ticks / http_s:,.0f} | 1.0x |",
            f"| replay, champions: features {s['features']:.2f} s + models {s['models']:.2f} s + filter "
            f"{s['filter']:.2f} s | {n:,} | {sum(s.values()):.2f} | {alone.ticks_per_second:,.0f} | "
            f"{alone.ticks_per_second / (http_ticks / http_s):,.0f}x |",
            f"| the same, whole call (fills, metrics, SPA/StepM) | {n:,} | {alone_s:.2f} | {n / alone_s:,.0f} | |",
            f"| champions + six rules, whole call | {n:,} | {everything_s:.2f} | {n / everything_s:,.0f} | |",
            "",
            "What the replay found (benchmark champions, planted signal 1.5):",
            "",
            report.markdown(everything).split("\n", 2)[2],
        ]
    )
