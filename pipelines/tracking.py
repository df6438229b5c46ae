"""Where MLflow lives: one definition of the default tracking URI, importable without importing MLflow."""

from __future__ import annotations

import os
from pathlib import Path


def tracking_uri() -> str:
    """$MLFLOW_TRACKING_URI, else the embedded default `sqlite:///<cwd>/mlruns/mlflow.db`."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlruns' / 'mlflow.db'}"
