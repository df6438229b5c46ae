"""Embedded defaults for the environment: DAGSTER_HOME, MLflow store and tick store under the project."""

from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    """The folder holding workspace.yaml (the source checkout), else the current directory."""
    here = Path(__file__).resolve().parent.parent
    return here if (here / "workspace.yaml").exists() else Path.cwd()


def apply_defaults() -> dict[str, str]:
    """Set DAGSTER_HOME, MLFLOW_TRACKING_URI and TICKML_HOME where unset; returns the values in effect."""
    root = project_root()
    defaults = {
        "DAGSTER_HOME": str(root / "dagster_home"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlruns' / 'mlflow.db'}",
        "TICKML_HOME": str(root / ".tickml"),
    }
    for key, value in defaults.items():
        os.environ.setdefault(key, value)
    Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    return {k: os.environ[k] for k in defaults}
