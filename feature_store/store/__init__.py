"""The tick store: one interface, Parquet and PostgreSQL backends, and the one place that picks one."""

from __future__ import annotations

import os
from pathlib import Path

from feature_store.store.base import TickKey, TickStore
from feature_store.store.parquet import ParquetTickStore
from feature_store.store.postgres import PostgresTickStore

__all__ = ["ParquetTickStore", "PostgresTickStore", "TickKey", "TickStore", "default_home", "open_store"]


def default_home() -> Path:
    """$TICKML_HOME, else `./.tickml` under the current directory (absolute): the embedded stores' root."""
    return Path(os.environ.get("TICKML_HOME") or Path.cwd() / ".tickml").resolve()


def open_store(url: str | None = None, home: str | Path | None = None) -> TickStore:
    """PostgreSQL at `url` (or $TICKML_PG_URL) when set, else Parquet under `home` ($TICKML_HOME, ./.tickml).

    An empty string counts as unset, so production is opt-in and everything else falls back to local.
    """
    url = url or os.environ.get("TICKML_PG_URL")
    if url:
        return PostgresTickStore(url)
    return ParquetTickStore(home or default_home())
