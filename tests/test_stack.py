"""The production stack run for real (`tickml stack up`, what `make stack` does) on loopback ports.

One test walks what an operator does: start the stack, launch the ticks and training jobs through Dagster's
GraphQL API (as the UI does), see the champion in the MLflow server's registry and the running service pick
it up, stream a simulated session into PostgreSQL, kill -9 one process of each kind and see supervisord
restore it with nothing lost, then stop the stack with SIGTERM to supervisord. Its timings are printed
(`pytest -s tests/test_stack.py`) for the closing notes.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pandas as pd
import psycopg
import pytest
from dagster_graphql import DagsterGraphQLClient
from mlflow import MlflowClient

from feature_store.instruments import get_instrument
from orchestration.local import RANGE_END, RANGE_START
from orchestration.ticks.partitions import symbol_day_key
from pipelines.simulate import simulate_session
from tickml import stack
from tickml.demo import TRAIN_START, demo_training
from tickml.service import free_port
from tickml.train import training_config

pytestmark = pytest.mark.timeout(1500)

TICKML = str(Path(sys.executable).with_name("tickml"))
# The demo's 10 days and search with a stronger planted signal (as tests/fixtures_models.py), bounded by trials
# and not by time, so a busy machine trains the same models: measured in-process, the 30-minute candidate
# passes the gate with a 95% lower bound of +0.0135 (+0.0049 at the demo's signal: too thin to rely on)
DAYS, SEED, SIGNAL = 10, 7, 2.0
TRAINING = {**demo_training(DAYS), "timeout_s": 600.0}
FEED_MINUTES, FEED_SPEED = 20, 20.0
KINDS = ["feed", "stream", "scoring", "postgres", "mlflow", "dagster-webserver", "dagster-daemon"]
LOCATION = {"repositoryLocationName": "orchestration.definitions", "repositoryName": "__repository__"}


def _wait(what: str, check, timeout_s: float, every_s: float = 1.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def _run_finished(client: DagsterGraphQLClient, run_id: str, timeout_s: float) -> str:
    def done():
        status = client.get_run_status(run_id).value
        return status if status in {"SUCCESS", "FAILURE", "CANCELED"} else None

    return _wait(f"run {run_id}", done, timeout_s, every_s=3.0)


def _add_partition(client: DagsterGraphQLClient, name: str, key: str) -> None:
    result = client._execute(
        """mutation($sel: RepositorySelector!, $name: String!, $key: String!) {
             addDynamicPartition(repositorySelector: $sel, partitionsDefName: $name, partitionKey: $key) {
               __typename ... on PythonError { message } } }""",
        {"sel": LOCATION, "name": name, "key": key},
    )
    assert result["addDynamicPartition"]["__typename"] in {
        "AddDynamicPartitionSuccess",
        "DuplicateDynamicPartitionError",
    }, result


def _program_pid(config: stack.StackConfig, name: str) -> int | None:
    """The pid of the process the program's wrapper runs (the server itself), when it runs."""
    return dict(stack.iter_program_pids(config)).get(name)


def _healthy(config: stack.StackConfig, name: str, env: dict[str, str], since: float | None = None) -> bool:
    service = {s.name: s for s in config.services()}[name]
    return stack.healthy(service, config, env, since=since) is None


@pytest.fixture
def stack_dir() -> Path:
    # not pytest's tmp_path (mode 700): PostgreSQL runs as its own user when the tests run as root
    root = Path(tempfile.mkdtemp(prefix="tickml-stack-"))
    root.chmod(0o755)
    return root / "stack"


def test_the_stack_trains_serves_streams_survives_kill_9_and_stops(stack_dir: Path) -> None:
    secret = f"stack-{secrets.token_hex(12)}"
    ports = {
        "postgres": free_port(),
        "mlflow": free_port(),
        "dagster-webserver": free_port(),
        "scoring": free_port(),
    }
    nifty = get_instrument("NIFTY")
    train_days = nifty.trading_days(TRAIN_START, DAYS)
    live_day = nifty.trading_days(train_days[-1] + dt.timedelta(days=1), 1)[0]
    feed = f"--day {live_day} --speed {FEED_SPEED:g} --minutes {FEED_MINUTES} --seed {SEED} --signal {SIGNAL}"
    env = {
        **os.environ,
        stack.PASSWORD_ENV: secret,
        "TICKML_RELOAD_INTERVAL_S": "2",  # the service looks for a new champion every 2 s
        "TICKML_STACK_DIR": str(stack_dir),
    }
    timings: dict[str, float] = {}
    clock = time.monotonic()
    up = subprocess.run(
        [TICKML, "stack", "up", *(a for n, p in ports.items() for a in ("--port", f"{n}={p}"))]
        + ["--feed", feed, "--hold", "stream", "--hold", "feed"],
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    timings["stack up"] = time.monotonic() - clock
    config = stack.StackConfig.load(stack_dir)
    stack_env = {**env, **stack.environment(config.place, secret)}
    try:
        assert up.returncode == 0, up.stderr[-4000:]
        for name in ("postgres", "mlflow", "dagster-webserver", "dagster-daemon", "scoring"):
            assert f"{name} " in up.stderr and _healthy(config, name, stack_env)

        # 1. the ticks job and the training job, launched through Dagster's GraphQL API like the UI does
        dagster = DagsterGraphQLClient("127.0.0.1", port_number=ports["dagster-webserver"])
        _add_partition(dagster, "symbols", "NIFTY")
        for day in train_days:
            _add_partition(dagster, "trading_days", day.isoformat())
        clock = time.monotonic()
        ticks_run = dagster.submit_job_execution(
            "ticks_job",
            run_config={
                "ops": {"raw_ticks": {"config": {"source": "simulator", "seed": SEED, "signal": SIGNAL}}}
            },
            tags={
                RANGE_START: str(symbol_day_key(train_days[0].isoformat(), "NIFTY")),
                RANGE_END: str(symbol_day_key(train_days[-1].isoformat(), "NIFTY")),
            },
        )
        assert _run_finished(dagster, ticks_run, 600) == "SUCCESS"
        timings["ticks_job"] = time.monotonic() - clock
        _add_partition(dagster, "universes", "default")
        clock = time.monotonic()
        config_training = training_config(**TRAINING)
        training_run = dagster.submit_job_execution(
            "training_job", run_config=config_training, tags={"dagster/partition": "default"}
        )
        assert _run_finished(dagster, training_run, 900) == "SUCCESS"
        timings["training_job"] = time.monotonic() - clock

        # 2. the champion is in the MLflow server's registry, and the running service picks it up
        registry = MlflowClient(tracking_uri=config.place.url("mlflow"))
        champions = {
            name: registry.get_model_version_by_alias(name, "champion").version
            for name in ("direction-15m", "direction-30m")
        }
        clock = time.monotonic()
        service = config.place.url("scoring")
        served = _wait(
            "the service to load the champions",
            lambda: (
                httpx.get(f"{service}/readyz", timeout=5).status_code == 200
                and httpx.get(f"{service}/models", timeout=5).json()
            ),
            120,
        )
        timings["service picks up the champion"] = time.monotonic() - clock
        assert {m["name"]: m["version"] for m in served["models"]} == champions, served

        # 3. a simulated live session streamed into PostgreSQL, with one process of each kind killed on the way
        session = simulate_session(nifty, live_day, seed=SEED, signal=SIGNAL)
        session = session[session["ts"] < session["ts"].iloc[0] + dt.timedelta(minutes=FEED_MINUTES)]

        def stream_cursor() -> str | None:
            with psycopg.connect(stack_env["TICKML_PG_URL"]) as conn:
                row = conn.execute("SELECT value FROM cursors WHERE name = 'stream'").fetchone()
            return row[0] if row else None

        def start(name: str) -> None:
            assert (
                subprocess.run([TICKML, "stack", "start", name], env=env, capture_output=True).returncode == 0
            )

        # the stream first, at the live edge (after the history's last tick), then the session it scores
        start("stream")
        edge = _wait("the stream to take its place at the live edge", stream_cursor, 60, 0.5)
        assert f'"ts":"{train_days[-1]}' in edge, edge
        start("feed")
        bounds = nifty.session_bounds(live_day)

        def stored(table: str) -> int:  # a connection per look: PostgreSQL itself is killed on the way
            with psycopg.connect(stack_env["TICKML_PG_URL"], autocommit=True) as conn:
                row = conn.execute(
                    f"SELECT count(*) FROM {table} WHERE symbol = 'NIFTY' AND ts >= %s AND ts < %s", bounds
                ).fetchone()
            return int(row[0])

        restored: dict[str, float] = {}
        for kind in KINDS:
            if kind == "feed":  # mid-way through its session
                _wait("the feed to store some ticks", lambda: stored("ticks") > 200, 60, 0.5)
            pid = _wait(f"{kind} to run", lambda k=kind: _program_pid(config, k), 60)
            os.kill(pid, signal.SIGKILL)
            clock = time.monotonic()
            _wait(
                f"{kind} restored",
                lambda k=kind, p=pid: (
                    _program_pid(config, k) not in (None, p) and _healthy(config, k, stack_env)
                ),
                120,
                0.5,
            )
            restored[kind] = time.monotonic() - clock
        timings.update({f"kill -9 {k}: restored after": v for k, v in restored.items()})

        # nothing lost: every tick of the session stored once, and one prediction for each
        clock = time.monotonic()
        _wait("the feed to finish", lambda: stored("ticks") == len(session), 300, 2)
        _wait("every tick scored", lambda: stored("predictions") == len(session), 300, 2)
        timings["drain after the kills"] = time.monotonic() - clock
        with psycopg.connect(stack_env["TICKML_PG_URL"]) as conn:
            unscored = conn.execute(
                "SELECT count(*) FROM ticks t LEFT JOIN predictions p USING (symbol, ts, seq) "
                "WHERE t.symbol = 'NIFTY' AND t.ts >= %s AND t.ts < %s AND p.seq IS NULL",
                bounds,
            ).fetchone()
        assert unscored == (0,)

        # the platform still knows everything it knew before the kills
        assert {dagster.get_run_status(r).value for r in (ticks_run, training_run)} == {"SUCCESS"}
        assert (
            registry.get_model_version_by_alias("direction-15m", "champion").version
            == champions["direction-15m"]
        )
        events = dagster._execute(
            """{ assetOrError(assetKey: {path: ["live_predictions"]}) {
                 ... on Asset { assetMaterializations(limit: 1) { partition metadataEntries {
                   label ... on IntMetadataEntry { intValue } ... on TextMetadataEntry { text } } } } } }"""
        )["assetOrError"]["assetMaterializations"]
        (latest,) = events  # the newest report of the session: the day's total and where it got to
        entries = {m["label"]: m.get("intValue", m.get("text")) for m in latest["metadataEntries"]}
        assert latest["partition"] == f"{live_day}|NIFTY"
        assert entries["predictions_stored_day"] == len(session)
        last = pd.Timestamp(session["ts"].iloc[-1]).tz_convert(nifty.tz)
        assert entries["last_tick"].startswith(f"{last:%Y-%m-%d %H:%M:%S}")

        rss = {name: _tree_rss_mb(pid) for name, pid in stack.iter_program_pids(config)}
        print(
            "\nRSS per program after the session (MB): " + ", ".join(f"{k} {v:.0f}" for k, v in rss.items())
        )

        # 4. no secret in the repository, the stack's files and logs, or any process's command line
        leaks = [
            str(p)
            for p in [*stack_dir.rglob("*"), *(Path(stack.ROOT) / f for f in _tracked_files())]
            if p.is_file() and "pgdata" not in p.parts and secret.encode() in p.read_bytes()
        ]
        assert leaks == []
        assert not [p.pid for p in stack.stack_processes(config) if secret in " ".join(p.cmdline())]
    finally:
        # 5. SIGTERM to supervisord (what a service manager sends) stops everything within 10 s
        pid = stack.supervisord_pid(config) if (stack_dir / "stack.json").exists() else None
        stopped_in, left = None, []
        if pid:
            clock = time.monotonic()
            os.kill(pid, signal.SIGTERM)
            while stack.stack_processes(config) and time.monotonic() - clock < 30:
                time.sleep(0.2)
            stopped_in = time.monotonic() - clock
            left = [" ".join(p.cmdline())[:100] for p in stack.stack_processes(config)]
        subprocess.run([TICKML, "stack", "down"], env=env, capture_output=True, timeout=60)
        print("\nstack timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
        print(f"stack stopped by SIGTERM in {stopped_in} s")
    assert pid and not left, left
    assert stopped_in < 10


def _tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and everything it started, in MB."""
    import psutil

    root = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]) / 2**20


def _tracked_files() -> list[str]:
    result = subprocess.run(["git", "ls-files"], cwd=stack.ROOT, capture_output=True, text=True)
    return result.stdout.split() if result.returncode == 0 else []


def test_stack_up_refuses_a_port_it_does_not_know(tmp_path: Path) -> None:
    result = subprocess.run(
        [TICKML, "stack", "up", "--dir", str(tmp_path), "--port", "redis=6379"],
        capture_output=True,
        text=True,
    )

    assert result.returncode == 2
    assert "--port redis=6379: expected NAME=PORT with NAME one of postgres, mlflow" in result.stderr


def test_the_password_file_is_created_once_readable_by_its_owner_only(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(stack.PASSWORD_ENV, raising=False)
    monkeypatch.setenv(stack.PASSWORD_FILE_ENV, str(tmp_path / "secret" / "pg-password"))

    first, second = stack.password(), stack.password()

    assert first == second and len(first) >= 24
    assert (tmp_path / "secret" / "pg-password").stat().st_mode & 0o777 == 0o600
    monkeypatch.setenv(stack.PASSWORD_ENV, "from-the-environment")
    assert stack.password() == "from-the-environment"


def test_sigint_and_stack_down_each_stop_everything_within_10_s(stack_dir: Path) -> None:
    ports = [a for n in stack.DEFAULT_PORTS for a in ("--port", f"{n}={free_port()}")]
    env = {
        **os.environ,
        stack.PASSWORD_ENV: f"stack-{secrets.token_hex(12)}",
        "TICKML_STACK_DIR": str(stack_dir),
    }
    seconds = {}
    for how in ("SIGINT to supervisord", "tickml stack down"):
        up = subprocess.run(
            [TICKML, "stack", "up", *ports], env=env, capture_output=True, text=True, timeout=400
        )
        config = stack.StackConfig.load(stack_dir)
        assert up.returncode == 0, up.stderr[-3000:]
        assert len(stack.stack_processes(config)) > 10  # the servers, their workers and supervisord
        clock = time.monotonic()
        if how.startswith("SIGINT"):
            os.kill(stack.supervisord_pid(config), signal.SIGINT)
            while stack.stack_processes(config) and time.monotonic() - clock < 30:
                time.sleep(0.2)
        else:
            down = subprocess.run(
                [TICKML, "stack", "down"], env=env, capture_output=True, text=True, timeout=60
            )
            assert down.returncode == 0 and "nothing of it runs" in down.stderr, down.stderr
        seconds[how] = time.monotonic() - clock
        assert stack.stack_processes(config) == [], how
    print(f"\nstack stop times (s): {seconds}")
    assert max(seconds.values()) < 10, seconds
