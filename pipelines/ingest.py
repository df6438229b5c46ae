"""Chunked, streaming ingest of source files into a tick store, with the end-of-run accounting table."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from feature_store.schema import QUARANTINE_REASONS
from feature_store.store import TickStore
from pipelines.sources import Mapping, open_source, read_source
from pipelines.sources.registry import DEFAULT_CHUNK_ROWS
from pipelines.sources.validate import Validator


@dataclass
class FileReport:
    """What one file became: every row read is a new tick, an already-stored tick or a quarantined row."""

    path: str
    fmt: str
    rows_read: int = 0
    ticks_new: int = 0
    ticks_already: int = 0
    quarantined: dict[str, int] = field(default_factory=dict)  # rows by reason, this run's verdicts
    quarantine_new: int = 0  # of those, rows not in the store's quarantine before
    seconds: float = 0.0

    @property
    def quarantined_total(self) -> int:
        return sum(self.quarantined.values())

    @property
    def accounted(self) -> bool:
        """rows read == ticks stored (new) + already stored + quarantined."""
        return self.rows_read == self.ticks_new + self.ticks_already + self.quarantined_total


@dataclass
class IngestReport:
    """Per-file accounting of an ingest run; `table()` is the text printed at its end."""

    files: list[FileReport] = field(default_factory=list)

    @property
    def accounted(self) -> bool:
        return all(f.accounted for f in self.files)

    def total(self) -> FileReport:
        """All files summed (path "total")."""
        total = FileReport("total", "")
        for f in self.files:
            total.rows_read += f.rows_read
            total.ticks_new += f.ticks_new
            total.ticks_already += f.ticks_already
            total.quarantine_new += f.quarantine_new
            total.seconds += f.seconds
            for reason, n in f.quarantined.items():
                total.quarantined[reason] = total.quarantined.get(reason, 0) + n
        return total

    def table(self) -> str:
        """Plain-text table: per file rows read, ticks stored (new), already stored, quarantined (and how
        many are new to the quarantine), quarantined by reason (the reasons that occurred), seconds."""
        total = self.total()
        reasons = [r for r in QUARANTINE_REASONS if total.quarantined.get(r)]
        header = ["file", "rows read", "stored", "already stored", "quarantined", "new in quarantine"]
        header += reasons + ["seconds"]
        lines = [self._row(f, Path(f.path).name, reasons) for f in self.files]
        if len(self.files) > 1:
            lines.append(self._row(total, "total", reasons))
        widths = [max(len(str(row[k])) for row in [header, *lines]) for k in range(len(header))]

        def render(row: list) -> str:
            cells = [str(row[0]).ljust(widths[0])]
            cells += [str(cell).rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
            return "  ".join(cells).rstrip()

        rule = "  ".join("-" * w for w in widths)
        body = [render(row) for row in lines]
        if len(self.files) > 1:
            body.insert(-1, rule)
        return "\n".join([render(header), rule, *body])

    @staticmethod
    def _row(f: FileReport, name: str, reasons: list[str]) -> list:
        counts = [f.rows_read, f.ticks_new, f.ticks_already, f.quarantined_total, f.quarantine_new]
        counts += [f.quarantined.get(r, 0) for r in reasons]
        return [name, *(f"{n:,}" for n in counts), f"{f.seconds:.2f}"]


def ingest_files(
    paths: Iterable[str | Path],
    fmt: str,
    store: TickStore,
    *,
    mapping: Mapping | str | Path | None = None,
    symbol: str | None = None,
    date: str | dt.date | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    progress: Callable[[int], object] | None = None,
) -> IngestReport:
    """Ingest each file of format `fmt` into `store`, `chunk_rows` source rows at a time.

    Each chunk is validated (state such as the last kept tick, carried-forward price and book and the
    cumulative volume runs on across chunks) and written at once: ticks with `store.write_ticks`,
    quarantined rows with `store.write_quarantine`, so memory holds one chunk, whatever the file size.
    Both writes are idempotent, so ingesting a file again stores nothing new. `progress(n)` is called
    after each chunk with the number of source rows it held (an increment: `tqdm.update` fits).
    Options are those of `pipelines.sources.open_source`; timestamps are stored in UTC.
    """
    if isinstance(mapping, str | Path):
        mapping = Mapping.load(mapping)  # once for every file, and a bad mapping fails before any write
    report = IngestReport()
    for path in paths:
        started = time.perf_counter()
        source = open_source(path, fmt, mapping=mapping, symbol=symbol, date=date, chunk_rows=chunk_rows)
        validator = Validator(str(source.path), source.venue, source.rules)
        file = FileReport(str(source.path), fmt)
        for chunk in source.chunks:
            ticks, quarantine = validator.validate(chunk)
            new = store.write_ticks(ticks) if len(ticks) else 0
            file.ticks_new += new
            file.ticks_already += len(ticks) - new
            if len(quarantine):
                file.quarantine_new += store.write_quarantine(quarantine)
                for reason, n in quarantine["reason"].value_counts().items():
                    file.quarantined[reason] = file.quarantined.get(reason, 0) + int(n)
            file.rows_read += len(chunk)
            if progress is not None:
                progress(len(chunk))
            del chunk, ticks, quarantine  # free this chunk before the next one is read
        file.seconds = time.perf_counter() - started
        report.files.append(file)
    return report


def read_file(
    path: str | Path,
    fmt: str,
    *,
    mapping: Mapping | str | Path | None = None,
    symbol: str | None = None,
    date: str | dt.date | None = None,
) -> pd.DataFrame:
    """The schema-valid canonical ticks (UTC `ts`) one file yields, in file order, without a store;
    its quarantined rows are left out (`pipelines.sources.read_source` returns both)."""
    return read_source(path, fmt, mapping=mapping, symbol=symbol, date=date).ticks
