"""`tickml demo` end to end at a small size: real Dagster runs, MLflow registry, bentoml serve, streaming."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import psutil
from dagster import AssetKey, DagsterInstance, DagsterRunStatus
from mlflow import MlflowClient

TICKML = str(Path(sys.executable).with_name("tickml"))


def _served_pids(home: str) -> set[int]:
    """Scoring service processes started for the tick store `home` (not another test worker's)."""
    pids = set()
    for proc in psutil.process_iter(["pid", "cmdline"]):
        if "serving.service:TickScorer" in " ".join(proc.info["cmdline"] or []):
            try:
                if proc.environ().get("TICKML_HOME") == home:
                    pids.add(proc.info["pid"])
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
    return pids


def _int(text: str) -> int:
    return int(text.replace(",", ""))


def _env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "TICKML_HOME": str(tmp_path / "home"),
        "DAGSTER_HOME": str(tmp_path / "dagster"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}",
    }


def _gate_lines(stdout: str) -> list[tuple[float, float, str, float]]:
    """(held-out log loss, prior log loss, verdict, lower bound) of each model in the summary."""
    found = re.findall(
        r"held-out log loss ([\d.]+) vs training prior ([\d.]+) .*gate (PASSED|REFUSED), 95% lower bound of the "
        r"gain ([+-][\d.]+)",
        stdout,
    )
    return [(float(a), float(b), v, float(c)) for a, b, v, c in found]


def test_demo_runs_the_whole_path_with_champions_that_beat_the_prior(tmp_path):
    env = _env(tmp_path)

    # the demo's own training days and signal; only the live part is shorter
    result = subprocess.run(
        [TICKML, "demo", "--live-minutes", "4", "--speed", "240"],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    gates = _gate_lines(result.stdout)
    assert len(gates) == 2
    for model_ll, prior_ll, verdict, lower in gates:
        assert verdict == "PASSED" and lower > 0 and model_ll < prior_ll
    assert "backtest, held out      champions: direction-15m/1, direction-30m/1" in result.stdout
    assert re.search(r"\| champions \| [\d,]+ \|", result.stdout) and "| weighted vote |" in result.stdout
    assert re.search(r"strategies beats not trading|Beating not trading", result.stdout)
    live_day = re.search(r"live session            (\d{4}-\d\d-\d\d):", result.stdout)[1]
    live, probes = map(
        _int, re.search(r"([\d,]+) ticks streamed \+ (\d+) single-tick", result.stdout).groups()
    )
    stored, new = map(
        _int, re.search(r"predictions stored\s+([\d,]+) \(([\d,]+) new", result.stdout).groups()
    )
    assert live > 400 and stored == new == live + probes
    assert re.search(r"single tick: p50 [\d.]+ ms, p99 [\d.]+ ms", result.stdout)
    with DagsterInstance.from_config(str(tmp_path / "dagster")) as instance:
        runs = instance.get_runs()
        # the 10 symbol-days as one run (a single-run backfill), then one training run
        assert sorted(r.job_name for r in runs) == ["ticks_job", "training_job"]
        assert all(r.status == DagsterRunStatus.SUCCESS for r in runs)
        assert len(instance.get_materialized_partitions(AssetKey("tick_features"))) == 10
        # the live session's progress, as the streaming driver reported it
        reports = instance.fetch_materializations(AssetKey("live_predictions"), limit=1000).records
        assert reports and {r.partition_key for r in reports} == {f"{live_day}|NIFTY"}
        assert sum(r.asset_materialization.metadata["ticks_scored"].value for r in reports) == live
    assert "streaming driver        `tickml stream`'s loop" in result.stdout
    client = MlflowClient(env["MLFLOW_TRACKING_URI"], env["MLFLOW_TRACKING_URI"])
    for name in ("direction-15m", "direction-30m"):
        assert str(client.get_model_version_by_alias(name, "champion").version) == "1"
    assert _served_pids(env["TICKML_HOME"]) == set()


def test_demo_on_a_random_walk_refuses_both_candidates_and_serves_nothing(tmp_path):
    env = _env(tmp_path)

    result = subprocess.run(
        [TICKML, "demo", "--days", "6", "--signal", "0"], capture_output=True, text=True, timeout=900, env=env
    )

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    gates = _gate_lines(result.stdout)
    assert [g[2] for g in gates] == ["REFUSED", "REFUSED"] and all(g[3] <= 0 for g in gates)
    assert "live session            skipped: no champion for direction-15m, direction-30m" in result.stdout
    assert "backtest, held out      candidates (the gate did not promote both)" in result.stdout
    client = MlflowClient(env["MLFLOW_TRACKING_URI"], env["MLFLOW_TRACKING_URI"])
    for name in ("direction-15m", "direction-30m"):
        assert client.get_registered_model(name).aliases == {}
