"""The offline store: features and labels per (kind, symbol, trading day), and versioned datasets per universe."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from pathlib import Path

import pandas as pd


def _write_atomic(path: Path, frame: pd.DataFrame) -> Path:
    """Write `frame` to `path` via a temporary file so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)
    return path


class OfflineStore:
    """Parquet frames under `root/offline/<kind>/symbol=<S>/day=<YYYY-MM-DD>.parquet` (days are exchange-local)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root) / "offline"

    def _path(self, kind: str, symbol: str, day: dt.date) -> Path:
        return self.root / kind / f"symbol={symbol}" / f"day={day.isoformat()}.parquet"

    def write(self, kind: str, symbol: str, day: dt.date, frame: pd.DataFrame) -> Path:
        """Replace the frame of (kind, symbol, day) atomically; returns its path."""
        return _write_atomic(self._path(kind, symbol, day), frame)

    def days(self, kind: str, symbol: str) -> list[dt.date]:
        """Trading days stored for (kind, symbol), sorted."""
        folder = self.root / kind / f"symbol={symbol}"
        return sorted(
            dt.date.fromisoformat(p.stem.removeprefix("day=")) for p in folder.glob("day=*.parquet")
        )

    def symbols(self, kind: str) -> list[str]:
        """Symbols with at least one stored frame of `kind`, sorted."""
        return sorted(p.name.removeprefix("symbol=") for p in (self.root / kind).glob("symbol=*"))

    def read(self, kind: str, symbol: str, days: list[dt.date] | None = None) -> pd.DataFrame:
        """Concatenated frames of (kind, symbol) for `days` (all stored days when None), in day order."""
        days = self.days(kind, symbol) if days is None else days
        missing = [d for d in days if not self._path(kind, symbol, d).exists()]
        if missing:
            raise FileNotFoundError(f"no {kind} for {symbol} on {[d.isoformat() for d in missing]}")
        frames = [pd.read_parquet(self._path(kind, symbol, d)) for d in days]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def _dataset_path(self, universe: str, version: str) -> Path:
        return self.root / "datasets" / f"universe={universe}" / f"{version}.parquet"

    def write_dataset(self, universe: str, version: str, frame: pd.DataFrame) -> Path:
        """Store version `version` (e.g. the Dagster run id) of `universe`'s training dataset; returns its path.

        Versions are never overwritten by other versions, so a model can always be traced to its rows.
        """
        return _write_atomic(self._dataset_path(universe, version), frame)

    def read_dataset(self, universe: str, version: str) -> pd.DataFrame:
        """Version `version` of `universe`'s training dataset; FileNotFoundError when it does not exist."""
        path = self._dataset_path(universe, version)
        if not path.exists():
            raise FileNotFoundError(
                f"no training dataset {version!r} of universe {universe!r} at {path}; "
                "materialise training_dataset for that universe first"
            )
        return pd.read_parquet(path)
