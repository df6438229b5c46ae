"""`tickml ui`: the Dagster UI (`dagster dev`) and the MLflow UI as one foreground command.

It stops both, with every process they started, within seconds of Ctrl-C, SIGINT or SIGTERM (sent to it or to
its process group, as a terminal or a supervisor does), when either UI exits, and when the process that started
it goes away or is being stopped (`make ui` sent SIGINT alone, without a terminal, waits for its children).
Each UI runs in a session of its own, so a signal meant for this command cannot stop one of them half-way;
their processes are collected before being stopped, so a child that left their session is stopped too.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from tickml.service import stop_all

GRACE_S = 5.0  # SIGTERM, then SIGKILL whatever still runs after this long
_STOPPING = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _caught(pid: int) -> set[int]:
    """The signals `pid` has a handler for (Linux /proc; empty elsewhere)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            mask = next(int(line.split()[1], 16) for line in status if line.startswith("SigCgt:"))
    except (OSError, StopIteration, ValueError):
        return set()
    return {s for s in _STOPPING if mask >> (s - 1) & 1}


def _parent_stopping(pid: int, caught: set[int]) -> bool:
    """Whether `pid` dropped its handler of a signal it used to catch: GNU make does that when it gets SIGINT
    on its own (no terminal sends it to the whole group), and then waits for its children to end."""
    return bool(caught - _caught(pid))


def ui_commands(host: str, dagster_port: int, mlflow_port: int, root: Path) -> dict[str, list[str]]:
    """The two UIs' command lines, on `host` (127.0.0.1 unless told otherwise)."""
    bin_dir = Path(sys.executable).parent
    mlflow_root = root / "mlruns"
    return {
        "dagster": [str(bin_dir / "dagster"), "dev", "-w", str(root / "workspace.yaml")]
        + ["-h", host, "-p", str(dagster_port)],
        "mlflow": [str(bin_dir / "mlflow"), "ui", "--backend-store-uri", os.environ["MLFLOW_TRACKING_URI"]]
        + ["--default-artifact-root", str(mlflow_root), "--host", host, "--port", str(mlflow_port)],
    }


def run_ui(host: str, dagster_port: int, mlflow_port: int, root: Path | None = None) -> int:
    """Run both UIs until a signal, one of them exiting, or this command's parent going away."""
    root = root or Path.cwd()
    stop, why = threading.Event(), []

    def on_signal(signum: int, _frame) -> None:
        why.append(signal.Signals(signum).name)
        stop.set()

    for signum in _STOPPING:
        signal.signal(signum, on_signal)
    parent = os.getppid()
    parent_caught = _caught(parent)
    procs: dict[str, subprocess.Popen] = {}
    try:
        for name, command in ui_commands(host, dagster_port, mlflow_port, root).items():
            procs[name] = subprocess.Popen(command, start_new_session=True, stdin=subprocess.DEVNULL)
        print(
            f"Dagster UI on http://{host}:{dagster_port}, MLflow UI on http://{host}:{mlflow_port} "
            "(Ctrl-C stops both)",
            flush=True,
        )
        while not stop.wait(0.5):
            if os.getppid() != parent:
                why.append(f"its parent {parent} is gone")
                break
            if _parent_stopping(parent, parent_caught):
                why.append(f"its parent {parent} is stopping")
                break
            ended = [name for name, proc in procs.items() if proc.poll() is not None]
            if ended:
                why.append(f"{ended[0]} exited with code {procs[ended[0]].returncode}")
                break
    finally:
        print(
            f"tickml ui: stopping both UIs ({why[0] if why else 'interrupted'})", file=sys.stderr, flush=True
        )
        stop_all(list(procs.values()), timeout_s=GRACE_S)
    return 0 if why and (why[0] in {s.name for s in _STOPPING} or "parent" in why[0]) else 1
