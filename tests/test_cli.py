"""The `tickml` command line: help that helps, clear refusals, and the commands that write to the store."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from feature_store.instruments import get_instrument
from feature_store.store import open_store
from pipelines.simulate import simulate_session
from pipelines.sources import FORMATS
from tests.data import DATA
from tests.fixtures_serving import serve_banner
from tickml import data_commands, service

TICKML = str(Path(sys.executable).with_name("tickml"))


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [TICKML, *args], capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})}
    )


def test_help_lists_every_command():
    result = run("--help")

    assert result.returncode == 0
    for command in ("demo", "serve", "stream", "feed", "simulate", "train", "backtest"):
        assert command in result.stdout


@pytest.mark.parametrize("command", ["demo", "serve", "stream", "feed", "simulate", "train", "backtest"])
def test_each_command_has_help(command):
    result = run(command, "--help")

    assert result.returncode == 0 and "usage: tickml" in result.stdout


def test_bad_date_is_refused_with_the_expected_format():
    result = run("simulate", "--start", "21/11/2026")

    assert result.returncode == 2 and "YYYY-MM-DD" in result.stderr


def test_feed_refuses_a_day_without_a_session(tmp_path):
    result = run("feed", "--day", "2026-11-21", env={"TICKML_HOME": str(tmp_path)})  # a Saturday

    assert result.returncode == 2 and "not a trading day" in result.stderr


def test_simulate_writes_sessions_into_the_store(tmp_path):
    result = run("simulate", "--start", "2026-10-19", "--days", "2", env={"TICKML_HOME": str(tmp_path)})

    assert result.returncode == 0, result.stderr
    # 2026-10-20 is Dussehra, an NSE holiday: the exchange calendar skips it
    assert open_store(home=tmp_path).days("NIFTY") == [dt.date(2026, 10, 19), dt.date(2026, 10, 21)]


def test_feed_plays_minutes_of_a_session_into_the_store(tmp_path):
    result = run(
        "feed", "--day", "2026-10-19", "--minutes", "2", "--speed", "600", env={"TICKML_HOME": str(tmp_path)}
    )

    ticks = open_store(home=tmp_path).read_ticks("NIFTY")
    assert result.returncode == 0, result.stderr
    assert 200 < len(ticks) < 400  # 2–3 events a second for two market minutes
    assert ticks["ts"].iloc[-1] - ticks["ts"].iloc[0] < dt.timedelta(minutes=2)


def test_serve_answers_http_on_the_requested_port(champions, tmp_path):
    from tickml import service

    port = service.free_port()
    proc = subprocess.Popen(
        [TICKML, "serve", "--port", str(port)],
        stdout=(tmp_path / "serve.log").open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "MLFLOW_TRACKING_URI": champions},
    )
    try:
        service.wait_ready(proc, f"http://127.0.0.1:{port}", log_path=tmp_path / "serve.log")
        models = httpx.get(f"http://127.0.0.1:{port}/models", timeout=10).json()
    finally:
        service.stop(proc)

    assert [m["name"] for m in models["models"]] == ["direction-15m", "direction-30m"]
    assert proc.poll() is not None


def test_serve_without_a_champion_starts_and_says_why_it_is_not_ready_yet(tmp_path):
    registry = tmp_path / "mlflow.db"

    banner = serve_banner(
        ["--port", str(service.free_port())], {"MLFLOW_TRACKING_URI": f"sqlite:///{registry}"}
    )

    assert banner.startswith("serving nothing yet (no MLflow registry at")
    assert "`tickml train`" in banner and "/readyz answers 503" in banner
    assert not registry.exists()  # serving only reads the registry


def test_stream_once_scores_new_ticks_and_keeps_its_cursor(scoring_service, fresh_day, tmp_path):
    ticks = simulate_session(get_instrument("NIFTY"), fresh_day("NIFTY"), seed=31, signal=1.0).iloc[:250]
    open_store(home=tmp_path).write_ticks(ticks)
    env = {"TICKML_HOME": str(tmp_path)}

    first = run("stream", "--once", "--backfill", "--url", scoring_service, env=env)
    second = run("stream", "--once", "--backfill", "--url", scoring_service, env=env)

    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert "scored 250 ticks, stored 250 predictions" in first.stdout
    assert "scored" not in second.stdout  # the cursor in the store says everything is done
    assert len(open_store(home=tmp_path).read_predictions("NIFTY")) == 250


def test_ingest_prints_its_table_and_a_second_run_stores_nothing(tmp_path):
    env = {"TICKML_HOME": str(tmp_path)}
    files = [str(DATA / "b3" / "PETR4_05032025.csv"), str(DATA / "b3" / "PETR4_19032025.csv")]

    first = run("ingest", *files, "--format", "b3", env=env)
    second = run("ingest", *files, "--format", "b3", env=env)

    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert "crossed_book" in first.stdout and "PETR4_05032025.csv" in first.stdout
    stats = json.loads(run("store", "stats", "--json", env=env).stdout)
    by_day = {row["day"]: row for row in stats}
    assert by_day["2025-03-05"]["ticks"] + by_day["2025-03-05"]["quarantined"] == 4043
    assert by_day["2025-03-05"]["reasons"] == {"crossed_book": 82}
    assert set(stats[0]) == {"symbol", "day", "ticks", "quarantined", "reasons"}
    assert sum(r["ticks"] for r in stats) == 3961 + 1816


def test_ingest_refuses_a_bad_mapping_with_the_key_and_exit_2(tmp_path):
    mapping = tmp_path / "bad.yaml"
    mapping.write_text("columns:\n  prise: last\n")
    data = tmp_path / "ticks.csv"
    data.write_text("ts,last\n2026-11-20T04:00:00Z,100\n")

    result = run(
        "ingest",
        str(data),
        "--format",
        "mapped",
        "--mapping",
        str(mapping),
        env={"TICKML_HOME": str(tmp_path)},
    )

    assert result.returncode == 2 and "tickml ingest: refused" in result.stderr and "prise" in result.stderr


def test_ingest_refuses_a_missing_file_by_name_and_exit_2(tmp_path):
    result = run(
        "ingest", str(tmp_path / "nowhere.csv"), "--format", "b3", env={"TICKML_HOME": str(tmp_path)}
    )

    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"tickml ingest: no such file: {tmp_path / 'nowhere.csv'}"]


def test_ingest_format_choices_are_the_registrys_formats():
    assert data_commands.FORMATS == FORMATS


def test_store_stats_on_an_empty_store_says_so(tmp_path):
    result = run("store", "stats", env={"TICKML_HOME": str(tmp_path)})

    assert result.returncode == 0 and "holds no ticks" in result.stdout


@pytest.mark.parametrize(
    ("path", "fmt", "symbol"),
    [("b3/PETR4_05032025.csv", "b3", "NEWSYM"), ("binance/btcusdt_20240808.gz", "binance", None)],
)
def test_features_parity_reads_a_file_and_writes_nothing(tmp_path, path, fmt, symbol):
    env = {"TICKML_HOME": str(tmp_path / "home"), "DAGSTER_HOME": str(tmp_path / "dagster")}
    args = ["features", "parity", str(DATA / path), "--format", fmt] + (
        ["--symbol", symbol] if symbol else []
    )

    result = run(*args, env=env)

    assert result.returncode == 0, result.stderr
    assert "all features identical" in result.stdout
    assert list(tmp_path.iterdir()) == []  # no store, no instruments file, no Dagster home
