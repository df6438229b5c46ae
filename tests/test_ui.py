"""`make ui` (Dagster's `dagster dev` and the MLflow UI) stops with everything it started within 10 seconds,
without a terminal: SIGINT to make alone (which then waits for its children), or SIGTERM to make alone."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tickml.service import free_port

ROOT = Path(__file__).resolve().parents[1]


def _up(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_make_ui_leaves_nothing_running_10_s_after_a_signal_to_make_alone(
    signum: signal.Signals, tmp_path: Path
) -> None:
    dagster_port, mlflow_port = free_port(), free_port()
    env = {
        **os.environ,
        "DAGSTER_PORT": str(dagster_port),
        "MLFLOW_PORT": str(mlflow_port),
        "DAGSTER_HOME": str(tmp_path),
    }
    with (tmp_path / "ui.log").open("wb") as log:
        make = subprocess.Popen(
            ["make", "-s", "ui"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # no terminal, and no group signal from pytest's
        )
    urls = [f"http://127.0.0.1:{dagster_port}/server_info", f"http://127.0.0.1:{mlflow_port}/health"]
    deadline, tree = time.monotonic() + 180, []
    try:
        while not all(_up(url) for url in urls):
            assert make.poll() is None, (tmp_path / "ui.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the UIs did not come up in 180 s"
            time.sleep(1.0)
        tree = [psutil.Process(make.pid), *psutil.Process(make.pid).children(recursive=True)]
        assert len(tree) > 4  # make, tickml ui, dagster dev with its webserver and daemon, mlflow ...

        os.kill(make.pid, signum)
        stopped = time.monotonic()
        alive = tree
        while alive and time.monotonic() - stopped < 10:
            alive = [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
            time.sleep(0.2)

        assert not alive, [" ".join(p.cmdline()[:3]) for p in alive]
        assert not any(_up(url) for url in urls)
        assert "stopping both UIs" in (tmp_path / "ui.log").read_text()
    finally:
        if make.poll() is None:
            tree += psutil.Process(make.pid).children(recursive=True)
        for process in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        make.kill()
        make.wait(timeout=30)
