"""Running the BentoML scoring service as a child process: start, wait until ready, stop with its workers."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

SERVICE = "serving.service:TickScorer"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve_command(port: int, host: str = "127.0.0.1") -> list[str]:
    """The `bentoml serve` command line for the tickml service on `host`:`port`."""
    bentoml = Path(sys.executable).with_name("bentoml")
    return [str(bentoml), "serve", SERVICE, "--host", host, "--port", str(port)]


def start(port: int, *, log_path: Path | None = None, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start `bentoml serve` in a session of its own; `env` is added to this process's environment."""
    env = {"BENTOML_DO_NOT_TRACK": "True", **os.environ, **(env or {})}
    if log_path is None:
        return subprocess.Popen(
            serve_command(port),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )
    with log_path.open("ab") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            serve_command(port), stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env
        )


def wait_ready(
    proc: subprocess.Popen, url: str, *, timeout_s: float = 120.0, log_path: Path | None = None
) -> None:
    """Block until GET {url}/readyz answers 200; raise with the log's tail if the process dies or times out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-3000:] if log_path and log_path.exists() else ""
            raise RuntimeError(f"scoring service exited with code {proc.returncode}:\n{tail}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    stop(proc)
    raise TimeoutError(f"scoring service at {url} not ready after {timeout_s:.0f}s")


def stop(proc: subprocess.Popen, *, timeout_s: float = 30.0) -> None:
    """Stop bentoml's watcher and every worker it started; nothing may outlive the caller."""
    stop_all([proc], timeout_s=timeout_s)


def stop_all(procs: list[subprocess.Popen], *, timeout_s: float = 30.0) -> None:
    """Stop processes started in sessions of their own (`start_new_session`), with everything they started.

    Their descendants are collected first, since some run in sessions of their own (bentoml's workers): each
    group gets a graceful SIGTERM and `timeout_s` (shared) to end, a SIGKILL after that, and whatever was
    collected and still runs is killed. A group whose leader already exited is still signalled.
    """
    tree: list[psutil.Process] = []
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            tree += psutil.Process(proc.pid).children(recursive=True)
    for proc in procs:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    for proc in procs:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    for process in tree:  # psutil refuses to signal a pid that has since been reused
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
