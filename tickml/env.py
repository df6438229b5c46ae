"""Embedded defaults for the environment, decided once for the CLI and every process it starts."""

from __future__ import annotations

import os
from pathlib import Path

from feature_store.store import default_home
from pipelines.tracking import tracking_uri


def apply_defaults() -> dict[str, str]:
    """Set TICKML_HOME, MLFLOW_TRACKING_URI and DAGSTER_HOME where unset, from the current directory
    (the project root under `make`), so child processes (bentoml serve, dagster) see the same stores."""
    defaults = {
        "TICKML_HOME": str(default_home()),
        "MLFLOW_TRACKING_URI": tracking_uri(),
        "DAGSTER_HOME": str(Path.cwd() / "dagster_home"),
    }
    for key, value in defaults.items():
        os.environ.setdefault(key, value)
    # a progress bar per artifact download fills the terminal during training; the CLI shows its own
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    return {k: os.environ[k] for k in defaults}
