"""Running the BentoML scoring service as a child process: start, wait until ready, stop with its workers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

SERVICE = "serving.service:TickScorer"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve_command(port: int) -> list[str]:
    """The `bentoml serve` command line for the tickml service on `port`."""
    bentoml = Path(sys.executable).with_name("bentoml")
    return [str(bentoml), "serve", SERVICE, "--host", "127.0.0.1", "--port", str(port)]


def start(port: int, *, log_path: Path | None = None, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start `bentoml serve` in its own process group (so `stop` also ends its workers)."""
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 - owned by the child
    return subprocess.Popen(
        serve_command(port), stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, **(env or {})},
    )


def wait_ready(proc: subprocess.Popen, url: str, *, timeout_s: float = 120.0, log_path: Path | None = None) -> None:
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


def stop(proc: subprocess.Popen, *, timeout_s: float = 20.0) -> None:
    """Terminate the service's whole process group; kill it if it does not exit within `timeout_s`."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        return
    try:  # workers that outlived the leader still belong to its group
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
