"""Embedded tick store: Parquet under one root, partitioned by symbol and exchange-local trading day."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from feature_store.instruments import get_instrument
from feature_store.schema import (
    PREDICTION_DTYPES,
    QUARANTINE_DTYPES,
    TICK_DTYPES,
    coerce_predictions,
    coerce_quarantine,
    coerce_ticks,
    empty_ticks,
)
from feature_store.store._common import (
    QUARANTINE_KEY,
    check_limit,
    day_runs,
    prepare_predictions,
    prepare_quarantine,
    prepare_ticks,
    stats_rows,
    utc,
)
from feature_store.store._parts import Part, PartTable, locked, replace_atomically, write_partitions
from feature_store.store.base import TickKey, TickStore

_ARROW_TYPES = {
    "datetime64[ns, UTC]": pa.timestamp("ns", tz="UTC"),
    "str": pa.string(),
    "int64": pa.int64(),
    "int8": pa.int8(),
    "float64": pa.float64(),
}
TICK_ARROW_SCHEMA = pa.schema([(c, _ARROW_TYPES[t]) for c, t in TICK_DTYPES.items()])
PREDICTION_ARROW_SCHEMA = pa.schema([(c, _ARROW_TYPES[t]) for c, t in PREDICTION_DTYPES.items()])
QUARANTINE_ARROW_SCHEMA = pa.schema([(c, _ARROW_TYPES[t]) for c, t in QUARANTINE_DTYPES.items()])
_TS = pa.timestamp("ns", tz="UTC")
# `legacy`: a day's partition was one file of that name before part files; such a day still reads
TICKS = PartTable(TICK_ARROW_SCHEMA, ("ts", "seq"), legacy="ticks.parquet")
PREDICTIONS = PartTable(PREDICTION_ARROW_SCHEMA, ("ts", "seq"), legacy="predictions.parquet")
QUARANTINE = PartTable(QUARANTINE_ARROW_SCHEMA, tuple(QUARANTINE_KEY))
_TABLES = {"ticks": TICKS, "predictions": PREDICTIONS, "shadow_predictions": PREDICTIONS}


def _predictions_kind(shadow: bool) -> str:
    return "shadow_predictions" if shadow else "predictions"


class ParquetTickStore(TickStore):
    """Ticks and predictions under `root/{ticks,predictions}/symbol=S/day=YYYY-MM-DD/`, cursors as JSON.

    A symbol-day is a partition of sorted, disjoint part files named by a manifest (see `_parts`): a
    write after the day's last stored tick adds a part without reading the day, any other write merges
    into the parts it overlaps, and readers see each day's published parts, never a half-written file or
    a key twice. A write publishes a symbol's days in ascending order (see `ticks_after`).

    Quarantined rows live under `root/quarantine/source=H/`, H a hash of the source: every row of a
    source is in one partition keyed by (source, row), so a row quarantined again, whatever symbol and
    day it parsed to then, is found and the first stored version kept, as in PostgreSQL.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        for kind in ("ticks", "predictions", "shadow_predictions", "cursors", "quarantine"):
            (self.root / kind).mkdir(parents=True, exist_ok=True)
        self._adopt_legacy_quarantine()

    def __repr__(self) -> str:
        return f"ParquetTickStore({str(self.root)!r})"

    # ticks ---------------------------------------------------------------------------------------------

    def write_ticks(self, ticks: pd.DataFrame) -> int:
        """Validate and store canonical ticks (UTC `ts`); return how many (symbol, ts, seq) were new."""
        frame = prepare_ticks(ticks)
        return self._write("ticks", frame)

    def read_ticks(
        self, symbol: str, start: pd.Timestamp | None = None, end: pd.Timestamp | None = None
    ) -> pd.DataFrame:
        """Ticks of `symbol` with start <= ts < end (UTC; None is unbounded), ordered by (ts, seq)."""
        start, end = utc(start), utc(end)
        where, keep = _between(start, end), _within(start, end)
        tables = [
            TICKS.read(self._day_dir("ticks", symbol, day), where, keep=keep)
            for day in self._days_between("ticks", symbol, start, end)
        ]
        return _ticks_frame(tables)

    def ticks_after(self, symbol: str, after: TickKey | None, limit: int | None = None) -> pd.DataFrame:
        """Up to `limit` ticks of `symbol` strictly after `after` (epoch ns UTC, seq), in (ts, seq) order.

        The days are listed once, before any is read, and writers publish a symbol's days in ascending
        order: when a write's later day is listed here, its earlier days were published before, so they
        are read as written. A cursor never moves into a day past ticks it has not been shown.
        """
        check_limit(limit)
        start, where, keep = None, None, None
        if after is not None:
            start, ts = pd.Timestamp(after.ts_ns, tz="UTC"), pa.scalar(after.ts_ns, _TS)
            where = (pc.field("ts") > ts) | ((pc.field("ts") == ts) & (pc.field("seq") > after.seq))
            key = (int(after.ts_ns), int(after.seq))

            def keep(part: Part) -> bool:
                return part.last > key  # a part wholly at or before the cursor is not opened

        tables, remaining = [], limit
        for day in self._days_between("ticks", symbol, start, None):
            if remaining == 0:
                break
            table = TICKS.read(self._day_dir("ticks", symbol, day), where, keep=keep, limit=remaining)
            if remaining is not None:
                remaining -= table.num_rows
            tables.append(table)
        return _ticks_frame(tables)

    def stored_seqs(
        self, symbol: str, day: dt.date, first: int | None = None, last: int | None = None
    ) -> np.ndarray:
        """Sorted distinct seqs of `symbol`'s stored ticks on trading `day` with first <= seq <= last.

        Only the seq column is read, and row groups whose seq statistics lie outside the range are skipped.
        """
        where = None
        if first is not None:
            where = pc.field("seq") >= first
        if last is not None:
            below = pc.field("seq") <= last
            where = below if where is None else where & below
        table = TICKS.read(self._day_dir("ticks", symbol, day), where, columns=["seq"])
        return np.unique(table["seq"].to_numpy()).astype(np.int64)

    def rederive_volume(self, symbol: str, day: dt.date) -> int:
        """Volume of `symbol`'s ticks on trading `day` := running sum of size in (ts, seq) order; return how
        many changed. Under the day's lock, only the parts whose volumes change are rewritten, and one
        manifest publishes them all."""
        folder = self._day_dir("ticks", symbol, day)
        if not TICKS.has_rows(folder):
            return 0
        total, changed = 0.0, 0

        def change(part: pa.Table) -> dict[str, pa.Array] | None:
            nonlocal total, changed
            sizes = part["size"].to_numpy()
            # one sequential sum across parts, as validation derives volume tick by tick
            running = np.cumsum(np.concatenate([[total], sizes]))[1:]
            if len(running):
                total = float(running[-1])
            differs = int((running != part["volume"].to_numpy()).sum())
            if not differs:
                return None
            changed += differs
            return {"volume": pa.array(running, pa.float64())}

        with locked(folder):
            TICKS.rewrite(folder, ["size", "volume"], change)
        return changed

    def symbols(self) -> list[str]:
        """Symbols with at least one stored tick, sorted."""
        dirs = (self.root / "ticks").glob("symbol=*")
        return sorted(
            d.name.removeprefix("symbol=") for d in dirs if any(map(TICKS.has_rows, d.glob("day=*")))
        )

    def days(self, symbol: str) -> list[dt.date]:
        """Exchange-local trading days with stored ticks of `symbol`, sorted."""
        return self._days("ticks", symbol)

    # predictions ---------------------------------------------------------------------------------------

    def write_predictions(self, predictions: pd.DataFrame, *, shadow: bool = False) -> int:
        """Store prediction rows (UTC `ts`, `scored_at`); return how many (symbol, ts, seq) were new."""
        frame = prepare_predictions(predictions)
        return self._write(_predictions_kind(shadow), frame)

    def read_predictions(
        self,
        symbol: str | None = None,
        start: pd.Timestamp | None = None,
        end: pd.Timestamp | None = None,
        *,
        shadow: bool = False,
    ) -> pd.DataFrame:
        """Predictions with start <= ts < end (UTC; None is unbounded), ordered by (symbol, ts, seq)."""
        start, end, kind = utc(start), utc(end), _predictions_kind(shadow)
        if symbol is None:
            dirs = (self.root / kind).glob("symbol=*")
            symbols = sorted(d.name.removeprefix("symbol=") for d in dirs)
        else:
            symbols = [symbol]
        where, keep = _between(start, end), _within(start, end)
        tables = [PREDICTION_ARROW_SCHEMA.empty_table()]
        for sym in symbols:
            for day in self._days_between(kind, sym, start, end):
                tables.append(PREDICTIONS.read(self._day_dir(kind, sym, day), where, keep=keep))
        return coerce_predictions(pa.concat_tables(tables).to_pandas())

    # cursors -------------------------------------------------------------------------------------------

    def get_cursor(self, name: str) -> str | None:
        """The stored value of streaming cursor `name`, or None if never set."""
        path = self._cursor_file(name)
        if not path.exists():
            return None
        return json.loads(path.read_text())["value"]

    def set_cursor(self, name: str, value: str) -> None:
        """Durably store streaming cursor `name` (overwrites); `updated_at` is recorded in UTC."""
        record = {"name": name, "value": value, "updated_at": pd.Timestamp.now(tz="UTC").isoformat()}
        path = self._cursor_file(name)
        replace_atomically(path, lambda tmp: tmp.write_text(json.dumps(record)))

    # quarantine and stats -----------------------------------------------------------------------------

    def write_quarantine(self, rows: pd.DataFrame) -> int:
        """Store quarantined rows (UTC `ts`); idempotent on (source, row); return how many were new."""
        frame = prepare_quarantine(rows)
        table = pa.Table.from_pandas(frame, schema=QUARANTINE_ARROW_SCHEMA, preserve_index=False)
        # the frame is sorted by (source, row): each source is one run of rows, kept in order per partition
        by_folder: dict[Path, list[pa.Table]] = {}
        for source, rows_of_source in frame.groupby("source", sort=False).indices.items():
            start, stop = int(rows_of_source[0]), int(rows_of_source[-1]) + 1
            by_folder.setdefault(self._source_dir(source), []).append(table.slice(start, stop - start))
        jobs = [(folder, pa.concat_tables(parts)) for folder, parts in by_folder.items()]
        return write_partitions(QUARANTINE, jobs)

    def read_quarantine(self, symbol: str | None = None, day: dt.date | None = None) -> pd.DataFrame:
        """Quarantined rows, optionally of one symbol and/or trading day, ordered by (source, row)."""
        where = None
        if symbol is not None:
            where = pc.field("symbol") == symbol
        if day is not None:
            on_day = pc.field("day") == day.isoformat()
            where = on_day if where is None else where & on_day
        tables = [QUARANTINE_ARROW_SCHEMA.empty_table()]
        tables += [QUARANTINE.read(folder, where) for folder in self._source_dirs()]
        table = pa.concat_tables(tables).sort_by([(c, "ascending") for c in QUARANTINE_KEY])
        return coerce_quarantine(table.to_pandas())

    def stats(self) -> list[dict]:
        """Ticks (from the day manifests) and quarantined rows by reason per (symbol, trading day)."""
        ticks = {
            (symbol_dir.name.removeprefix("symbol="), day_dir.name.removeprefix("day=")): rows
            for symbol_dir in (self.root / "ticks").glob("symbol=*")
            for day_dir in symbol_dir.glob("day=*")
            if (rows := TICKS.rows(day_dir))  # no tick is read to be counted
        }
        columns = ["symbol", "day", "reason"]
        tables = [pa.schema([QUARANTINE_ARROW_SCHEMA.field(c) for c in columns]).empty_table()]
        tables += [QUARANTINE.read(folder, columns=columns) for folder in self._source_dirs()]
        counts = pa.concat_tables(tables).group_by(columns).aggregate([([], "count_all")])
        reasons = {(s, d, r): n for s, d, r, n in zip(*counts.to_pydict().values(), strict=True)}
        return stats_rows(ticks, reasons)

    def _source_dir(self, source: str) -> Path:
        # a hash: a source is any path or feed name, too long or too odd for a directory name
        digest = hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()[:20]
        return self.root / "quarantine" / f"source={digest}"

    def _source_dirs(self) -> list[Path]:
        return sorted((self.root / "quarantine").glob("source=*"))

    def _adopt_legacy_quarantine(self) -> None:
        """Move quarantine files of the earlier layout (one per symbol and day) into source partitions."""
        for path in sorted(self.root.glob("quarantine/symbol=*/day=*/quarantine.parquet")):
            try:
                rows = pq.read_table(path, schema=QUARANTINE_ARROW_SCHEMA).to_pandas()
            except FileNotFoundError:
                continue  # another process adopted it first
            self.write_quarantine(rows)
            path.unlink(missing_ok=True)

    # layout --------------------------------------------------------------------------------------------

    def _symbol_dir(self, kind: str, symbol: str) -> Path:
        if not symbol or symbol in (".", "..") or "/" in symbol or "\\" in symbol or "\0" in symbol:
            raise ValueError(f"symbol {symbol!r} cannot name a partition directory")
        return self.root / kind / f"symbol={symbol}"

    def _day_dir(self, kind: str, symbol: str, day: dt.date) -> Path:
        return self._symbol_dir(kind, symbol) / f"day={day.isoformat()}"

    def _cursor_file(self, name: str) -> Path:
        # quote() keeps any cursor name (e.g. "stream:NIFTY/15m") a single, reversible file name
        return self.root / "cursors" / f"{quote(name, safe='')}.json"

    def _days(self, kind: str, symbol: str) -> list[dt.date]:
        """Days with rows published, so a day a writer is still creating is not listed yet."""
        folders = self._symbol_dir(kind, symbol).glob("day=*")
        table = _TABLES[kind]
        return sorted(
            dt.date.fromisoformat(f.name.removeprefix("day=")) for f in folders if table.has_rows(f)
        )

    def _days_between(
        self, kind: str, symbol: str, start: pd.Timestamp | None, end: pd.Timestamp | None
    ) -> list[dt.date]:
        """Stored days that can hold rows with start <= ts <= end (trading day is monotonic in ts)."""
        days = self._days(kind, symbol)
        if days and (start is not None or end is not None):
            trading_day = get_instrument(symbol).trading_day
            if start is not None:
                first = trading_day(pd.DatetimeIndex([start]))[0]
                days = [d for d in days if d >= first]
            if end is not None:
                last = trading_day(pd.DatetimeIndex([end]))[0]
                days = [d for d in days if d <= last]
        return days

    # writing -------------------------------------------------------------------------------------------

    def _write(self, kind: str, frame: pd.DataFrame) -> int:
        """Store a prepared frame (sorted by symbol, ts, seq) in its symbol-day partitions; return new rows.

        `day_runs` lists each symbol's days in ascending order, the order `write_partitions` publishes in.
        """
        table = pa.Table.from_pandas(frame, schema=_TABLES[kind].schema, preserve_index=False)
        jobs = [
            (self._day_dir(kind, symbol, day), table.slice(start, stop - start))
            for symbol, day, start, stop in day_runs(frame)
        ]
        return write_partitions(_TABLES[kind], jobs)


def _between(start: pd.Timestamp | None, end: pd.Timestamp | None) -> pc.Expression | None:
    """Filter start <= ts < end for UTC bounds (None is unbounded); None when both are unbounded."""
    where = None
    if start is not None:
        where = pc.field("ts") >= pa.scalar(start.value, _TS)
    if end is not None:
        below = pc.field("ts") < pa.scalar(end.value, _TS)
        where = below if where is None else where & below
    return where


def _within(start: pd.Timestamp | None, end: pd.Timestamp | None) -> Callable[[Part], bool]:
    """Whether a part's (ts, seq) range can hold rows with start <= ts < end: the parts worth opening."""

    def keep(part: Part) -> bool:
        return (start is None or part.last[0] >= start.value) and (end is None or part.first[0] < end.value)

    return keep


def _ticks_frame(tables: list[pa.Table]) -> pd.DataFrame:
    if not tables:
        return empty_ticks()
    return coerce_ticks(pa.concat_tables(tables).to_pandas())
