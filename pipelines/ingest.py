"""Chunked, streaming ingest of source files into a tick store, with the end-of-run accounting table."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from feature_store.instruments import declare_symbol, is_declared
from feature_store.schema import QUARANTINE_REASONS
from feature_store.store import TickStore
from pipelines.sources import Mapping, open_source, read_source
from pipelines.sources.chunk import EMPTY, VALUE_FIELDS, Source
from pipelines.sources.kernel import BY_CONTENT, BY_EXCHANGE_SEQ
from pipelines.sources.preflight import check_file
from pipelines.sources.registry import DEFAULT_CHUNK_ROWS
from pipelines.sources.validate import Checked, Validator

# Stated fields a stored tick may hold otherwise, so content ignores them: the side (a row without a trade at
# the start of a file stores side 0 whatever its source said) and the size quoted at an empty book side.
_SIDE = VALUE_FIELDS.index("side")
_BOOK = [(VALUE_FIELDS.index(p), VALUE_FIELDS.index(f"{p}_size")) for p in ("bid", "ask")]
_EPOCH = dt.date(1970, 1, 1).toordinal()


@dataclass
class FileReport:
    """What one file became: every tick-bearing row read is a new tick, an already-stored tick or a
    quarantined row; the source's other lines (e.g. depth updates) are counted by kind in `not_ticks`."""

    path: str
    fmt: str
    rows_read: int = 0
    ticks_new: int = 0
    ticks_already: int = 0
    quarantined: dict[str, int] = field(default_factory=dict)  # rows by reason, this run's verdicts
    quarantine_new: int = 0  # of those, rows not in the store's quarantine before
    not_ticks: dict[str, int] = field(default_factory=dict)  # lines that are not tick events, by kind
    volume_rederived: int = 0  # stored ticks whose derived cumulative volume was made the running sum again
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
            total.volume_rederived += f.volume_rederived
            for reason, n in f.quarantined.items():
                total.quarantined[reason] = total.quarantined.get(reason, 0) + n
            for kind, n in f.not_ticks.items():
                total.not_ticks[kind] = total.not_ticks.get(kind, 0) + n
        return total

    def table(self) -> str:
        """Plain-text table: per file rows read, ticks stored (new), already stored, quarantined (and how
        many are new to the quarantine), quarantined by reason (the reasons that occurred), the lines that
        are not ticks by kind (the kinds that occurred), seconds."""
        total = self.total()
        reasons = [r for r in QUARANTINE_REASONS if total.quarantined.get(r)]
        kinds = sorted(total.not_ticks)
        header = ["file", "rows read", "stored", "already stored", "quarantined", "new in quarantine"]
        header += reasons + kinds + ["seconds"]
        lines = [self._row(f, Path(f.path).name, reasons, kinds) for f in self.files]
        if len(self.files) > 1:
            lines.append(self._row(total, "total", reasons, kinds))
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
    def _row(f: FileReport, name: str, reasons: list[str], kinds: list[str]) -> list:
        counts = [f.rows_read, f.ticks_new, f.ticks_already, f.quarantined_total, f.quarantine_new]
        counts += [f.quarantined.get(r, 0) for r in reasons] + [f.not_ticks.get(k, 0) for k in kinds]
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

    Every path is checked first (`preflight.check_file`): a file that cannot be ingested stops the run
    before anything is stored. Each chunk is validated (state such as the last kept tick, carried-forward
    price and book and the cumulative volume runs on across chunks); ticks that are an event the store
    holds already (docs/ingest.md, "Identity") are counted as already stored and not written, the others go
    to `store.write_ticks`, quarantined rows to `store.write_quarantine`, so memory holds one chunk, whatever
    the file size. Symbols not configured yet are declared on the source's venue before their first ticks
    are stored. Where the source's volume is derived, each symbol-day the file added ticks to is then made
    consistent again (`store.rederive_volume`): files may arrive in any order. `progress(n)` is called after
    each chunk with the number of source rows it held (an increment: `tqdm.update` fits). Options are those
    of `pipelines.sources.open_source`; timestamps are stored in UTC.
    """
    if isinstance(mapping, str | Path):
        mapping = Mapping.load(mapping)  # once for every file, and a bad mapping fails before any write
    paths = list(paths)
    for path in paths:
        check_file(path, fmt)
    report = IngestReport()
    for path in paths:
        started = time.perf_counter()
        source = open_source(path, fmt, mapping=mapping, symbol=symbol, date=date, chunk_rows=chunk_rows)
        file = _ingest(source, fmt, store, progress)
        file.seconds = time.perf_counter() - started
        report.files.append(file)
    return report


def _ingest(
    source: Source, fmt: str, store: TickStore, progress: Callable[[int], object] | None
) -> FileReport:
    validator = Validator(str(source.path), source.venue, source.rules)
    file = FileReport(str(source.path), fmt)
    declared: set[str] = set()
    touched: set[tuple[str, dt.date]] = set()  # symbol-days this file added ticks to
    for chunk in source.chunks:
        checked = validator.check(chunk)
        ticks = checked.ticks
        if len(ticks):
            _declare(ticks["symbol"], source.venue, declared)
            known = _already_stored(store, checked, validator.identity)
            fresh = ticks[~known] if known.any() else ticks
            new = store.write_ticks(fresh) if len(fresh) else 0
            file.ticks_new += new
            file.ticks_already += len(ticks) - new
            if new and source.rules.cumulative_volume:
                touched.update(_symbol_days(fresh["symbol"].to_numpy(), checked.day[~known]))
        quarantine = checked.quarantine
        if len(quarantine):
            file.quarantine_new += store.write_quarantine(quarantine)
            for reason, n in quarantine["reason"].value_counts().items():
                file.quarantined[reason] = file.quarantined.get(reason, 0) + int(n)
        file.rows_read += len(chunk)
        if progress is not None:
            progress(len(chunk))
        del chunk, checked, ticks, quarantine  # free this chunk before the next one is read
    for symbol_day in sorted(touched):
        file.volume_rederived += store.rederive_volume(*symbol_day)
    file.not_ticks = dict(source.not_ticks)
    return file


def _declare(symbols: pd.Series, venue: str | None, declared: set[str]) -> None:
    """Declare on `venue` each symbol the instruments configuration lacks: its ticks are about to be stored
    (validation kept them on the venue's defaults; the store needs the instrument for their days)."""
    for symbol in pd.unique(symbols):
        if symbol not in declared:
            if not is_declared(symbol) and venue is not None:
                declare_symbol(symbol, venue)
            declared.add(symbol)


def _already_stored(store: TickStore, checked: Checked, identity: int) -> np.ndarray:
    """Which ticks of a validated chunk are an event the store holds already (docs/ingest.md, "Identity")."""
    if identity == BY_EXCHANGE_SEQ:
        return _stored_events(store, checked)
    if identity == BY_CONTENT:
        return _stored_content(store, checked)
    return np.zeros(len(checked.ticks), dtype=bool)  # (symbol, ts, seq): write_ticks is idempotent on it


def _stored_events(store: TickStore, checked: Checked) -> np.ndarray:
    """Ticks whose (symbol, trading day, seq) is stored; the store is asked for each symbol-day's seq range
    of the chunk only, so a file appending to its day reads nothing it does not overlap."""
    seq = checked.ticks["seq"].to_numpy()
    known = np.zeros(len(seq), dtype=bool)
    for (symbol, day), rows in _symbol_days(checked.ticks["symbol"].to_numpy(), checked.day).items():
        stored = store.stored_seqs(symbol, day, int(seq[rows].min()), int(seq[rows].max()))
        if len(stored):
            known[rows] = np.isin(seq[rows], stored)
    return known


def _stored_content(store: TickStore, checked: Checked) -> np.ndarray:
    """Ticks equal to a stored tick of their symbol at the same ts in every field their row states (side
    aside): where seq is a row number, the same event in another capture has another seq."""
    ticks, stated = checked.ticks, checked.stated
    known = np.zeros(len(ticks), dtype=bool)
    ts = pd.DatetimeIndex(ticks["ts"]).asi8
    for symbol, rows in ticks.groupby("symbol", sort=False).indices.items():
        first, last = ts[rows].min(), ts[rows].max()
        stored = store.read_ticks(symbol, pd.Timestamp(first, tz="UTC"), pd.Timestamp(last + 1, tz="UTC"))
        if stored.empty:
            continue
        pairs = pd.DataFrame({"ts": ts[rows], "i": rows}).merge(
            pd.DataFrame({"ts": pd.DatetimeIndex(stored["ts"]).asi8, "j": np.arange(len(stored))}), on="ts"
        )
        if pairs.empty:
            continue
        i, j = pairs["i"].to_numpy(), pairs["j"].to_numpy()
        mine = stated[i]  # a copy: fancy indexing
        mine[:, _SIDE] = np.nan
        for price, size in _BOOK:
            mine[mine[:, price] == EMPTY, size] = np.nan
        theirs = stored[list(VALUE_FIELDS)].to_numpy(dtype=np.float64)[j]
        same = np.isnan(mine) | (mine == theirs) | ((mine == EMPTY) & np.isnan(theirs))
        known[i[same.all(axis=1)]] = True
    return known


def _symbol_days(symbols: np.ndarray, day: np.ndarray) -> dict[tuple[str, dt.date], np.ndarray]:
    """Row positions of each (symbol, trading day); `day` is days since 1970-01-01."""
    if len(symbols) and symbols[0] == symbols[-1] and day[0] == day[-1] and (symbols == symbols[0]).all():
        groups = {(symbols[0], day[0]): np.arange(len(symbols))}  # a file of one symbol-day: no grouping
    else:
        groups = pd.DataFrame({"s": symbols, "d": day}).groupby(["s", "d"], sort=False).indices
    return {(str(s), dt.date.fromordinal(_EPOCH + int(d))): rows for (s, d), rows in groups.items()}


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
