"""One entry point per format name: open a source file as candidate chunks, or read it whole into ticks."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from feature_store.schema import QUARANTINE_COLUMNS, coerce_quarantine, empty_ticks, validate_ticks
from pipelines.sources.b3 import open_b3
from pipelines.sources.binance import open_binance
from pipelines.sources.chunk import Source
from pipelines.sources.dhan import open_dhan
from pipelines.sources.kite import open_kite
from pipelines.sources.lobster import open_lobster
from pipelines.sources.mapped import open_mapped
from pipelines.sources.mapping import Mapping
from pipelines.sources.validate import Validator

FORMATS: tuple[str, ...] = ("lobster", "b3", "dhan", "kite", "mapped", "binance")
# 200k rows keep a whole ingest under ~700 MiB RSS (benchmarks/ingest.py measures it under a 1 GiB limit)
DEFAULT_CHUNK_ROWS = 200_000


def open_source(
    path: str | Path,
    fmt: str,
    *,
    mapping: Mapping | str | Path | None = None,
    symbol: str | None = None,
    date: str | dt.date | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> Source:
    """Open `path` as format `fmt` (one of FORMATS); `mapping` is required by, and only for, `mapped`.

    `symbol` overrides the symbol the file names or implies; `date` (LOBSTER only: its times are
    seconds after midnight) overrides the date in the LOBSTER file name.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if (mapping is None) == (fmt == "mapped"):
        raise ValueError("a mapping file is needed for format 'mapped' and only for it")
    if date is not None and fmt != "lobster":
        raise ValueError(f"date applies to LOBSTER files only; {fmt} rows carry their own date")
    if fmt == "lobster":
        return open_lobster(path, symbol=symbol, date=date, chunk_rows=chunk_rows)
    if fmt == "mapped":
        return open_mapped(path, mapping, symbol=symbol, chunk_rows=chunk_rows)
    opener = {"b3": open_b3, "dhan": open_dhan, "kite": open_kite, "binance": open_binance}[fmt]
    return opener(path, symbol=symbol, chunk_rows=chunk_rows)


@dataclass(frozen=True)
class AdapterResult:
    """A whole source file read in memory: the ticks it yields and the rows it quarantines.

    Every row is in exactly one of them: `rows_read == len(ticks) + len(quarantine)`. `venue` is the
    adapter's (None when the file does not say), so a reader can resolve an undeclared symbol in memory.
    """

    ticks: pd.DataFrame
    quarantine: pd.DataFrame
    rows_read: int
    venue: str | None = None


def read_source(path: str | Path, fmt: str, **options) -> AdapterResult:
    """Read a whole file through its adapter and validation (no store): see `open_source` for options."""
    source = open_source(path, fmt, **options)
    validator = Validator(str(source.path), source.venue, source.rules)
    ticks, quarantine, rows = [empty_ticks()], [], 0
    for chunk in source.chunks:
        good, bad = validator.validate(chunk)
        ticks.append(good)
        quarantine.append(bad)
        rows += len(chunk)
    frame = validate_ticks(pd.concat(ticks, ignore_index=True))
    empty = coerce_quarantine(pd.DataFrame({c: [] for c in QUARANTINE_COLUMNS}))
    return AdapterResult(frame, pd.concat([empty, *quarantine], ignore_index=True), rows, source.venue)


def read_lobster(
    message_path: str | Path,
    orderbook_path: str | Path | None = None,
    *,
    symbol: str | None = None,
    date: str | dt.date | None = None,
) -> pd.DataFrame:
    """Schema-valid canonical ticks of a LOBSTER file pair (see `lobster.open_lobster`); quarantined rows
    are left out: `read_source(path, "lobster")` has them."""
    source = open_lobster(message_path, orderbook_path=orderbook_path, symbol=symbol, date=date)
    validator = Validator(str(source.path), source.venue, source.rules)
    ticks = [empty_ticks(), *(validator.validate(chunk)[0] for chunk in source.chunks)]
    return validate_ticks(pd.concat(ticks, ignore_index=True))


def read_b3(path: str | Path, *, symbol: str | None = None) -> pd.DataFrame:
    """Schema-valid canonical ticks of a B3 capture (see `b3.open_b3`); quarantined rows left out."""
    return read_source(path, "b3", symbol=symbol).ticks


def read_dhan(path: str | Path, symbol: str = "NIFTY") -> pd.DataFrame:
    """Schema-valid canonical ticks of a Dhan capture (see `dhan.open_dhan`); quarantined rows left out."""
    return read_source(path, "dhan", symbol=symbol).ticks


def read_kite(path: str | Path, symbol: str = "NIFTY") -> pd.DataFrame:
    """Schema-valid canonical ticks of a Kite capture (see `kite.open_kite`); quarantined rows left out."""
    return read_source(path, "kite", symbol=symbol).ticks
