"""Embedded tick store: Parquet files under one root, one file per symbol and exchange-local trading day."""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote, unquote

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
# small enough that a poll for the newest ticks reads one group, large enough to compress well
ROW_GROUP = 65_536
# files of different symbol-days written at once; more threads than cores only queue on the GIL
WRITER_THREADS = min(4, os.cpu_count() or 1)


class ParquetTickStore(TickStore):
    """Ticks and predictions under `root/{ticks,predictions}/symbol=S/day=YYYY-MM-DD/`, cursors as JSON.

    Quarantined rows live under `root/quarantine/symbol=Q/day=D/quarantine.parquet` sorted by (source, row),
    where Q is the URL-quoted symbol (any text a dirty file holds, "" when unknown) and D is "" when the
    day is unknown. A source row always parses to the same symbol and day, so checking its (source, row)
    key within that one file makes re-ingesting a file quarantine nothing twice.

    Each file holds one symbol's trading day sorted by (ts, seq). A write merges into the stored file
    and replaces it atomically (temp file + os.replace) under a per-partition lock, so writers never
    lose each other's rows and readers see the old or the new file, never half of one.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        for kind in ("ticks", "predictions", "cursors", "quarantine"):
            (self.root / kind).mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"ParquetTickStore({str(self.root)!r})"

    # ticks ---------------------------------------------------------------------------------------------

    def write_ticks(self, ticks: pd.DataFrame) -> int:
        """Validate and merge canonical ticks (UTC `ts`); return how many (symbol, ts, seq) were new."""
        frame = prepare_ticks(ticks)
        return self._write("ticks", frame, TICK_ARROW_SCHEMA)

    def read_ticks(
        self, symbol: str, start: pd.Timestamp | None = None, end: pd.Timestamp | None = None
    ) -> pd.DataFrame:
        """Ticks of `symbol` with start <= ts < end (UTC; None is unbounded), ordered by (ts, seq)."""
        start, end = utc(start), utc(end)
        where = _between(start, end)
        tables = [
            _read(self._file("ticks", symbol, day), TICK_ARROW_SCHEMA, where)
            for day in self._days_between("ticks", symbol, start, end)
        ]
        return _ticks_frame(tables)

    def ticks_after(self, symbol: str, after: TickKey | None, limit: int | None = None) -> pd.DataFrame:
        """Up to `limit` ticks of `symbol` strictly after `after` (epoch ns UTC, seq), in (ts, seq) order."""
        check_limit(limit)
        start, where = None, None
        if after is not None:
            start, ts = pd.Timestamp(after.ts_ns, tz="UTC"), pa.scalar(after.ts_ns, _TS)
            where = (pc.field("ts") > ts) | ((pc.field("ts") == ts) & (pc.field("seq") > after.seq))
        tables, remaining = [], limit
        for day in self._days_between("ticks", symbol, start, None):
            if remaining == 0:
                break
            table = _read(self._file("ticks", symbol, day), TICK_ARROW_SCHEMA, where)
            if remaining is not None:
                table = table.slice(0, remaining)
                remaining -= table.num_rows
            tables.append(table)
        return _ticks_frame(tables)

    def symbols(self) -> list[str]:
        """Symbols with at least one stored tick, sorted."""
        dirs = (self.root / "ticks").glob("symbol=*")
        return sorted(d.name.removeprefix("symbol=") for d in dirs if any(d.glob("day=*/ticks.parquet")))

    def days(self, symbol: str) -> list[dt.date]:
        """Exchange-local trading days with stored ticks of `symbol`, sorted."""
        return self._days("ticks", symbol)

    # predictions ---------------------------------------------------------------------------------------

    def write_predictions(self, predictions: pd.DataFrame) -> int:
        """Store prediction rows (UTC `ts`, `scored_at`); return how many (symbol, ts, seq) were new."""
        frame = prepare_predictions(predictions)
        return self._write("predictions", frame, PREDICTION_ARROW_SCHEMA)

    def read_predictions(
        self, symbol: str | None = None, start: pd.Timestamp | None = None, end: pd.Timestamp | None = None
    ) -> pd.DataFrame:
        """Predictions with start <= ts < end (UTC; None is unbounded), ordered by (symbol, ts, seq)."""
        start, end = utc(start), utc(end)
        if symbol is None:
            dirs = (self.root / "predictions").glob("symbol=*")
            symbols = sorted(d.name.removeprefix("symbol=") for d in dirs)
        else:
            symbols = [symbol]
        where = _between(start, end)
        tables = [PREDICTION_ARROW_SCHEMA.empty_table()]
        for sym in symbols:
            for day in self._days_between("predictions", sym, start, end):
                tables.append(_read(self._file("predictions", sym, day), PREDICTION_ARROW_SCHEMA, where))
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
        _replace_atomically(path, lambda tmp: tmp.write_text(json.dumps(record)))

    # quarantine and stats -----------------------------------------------------------------------------

    def write_quarantine(self, rows: pd.DataFrame) -> int:
        """Store quarantined rows (UTC `ts`); idempotent on (source, row); return how many were new."""
        frame = prepare_quarantine(rows)
        new = 0
        for (symbol, day), part in frame.groupby(["symbol", "day"], sort=False):
            new += self._merge_quarantine(self._quarantine_file(symbol, day), part)
        return new

    def read_quarantine(self, symbol: str | None = None, day: dt.date | None = None) -> pd.DataFrame:
        """Quarantined rows, optionally of one symbol and/or trading day, ordered by (source, row)."""
        pattern = "symbol=*" if symbol is None else f"symbol={quote(symbol, safe='')}"
        pattern += "/day=*" if day is None else f"/day={day.isoformat()}"
        tables = [QUARANTINE_ARROW_SCHEMA.empty_table()]
        tables += [
            _read(f, QUARANTINE_ARROW_SCHEMA) for f in self.root.glob(f"quarantine/{pattern}/*.parquet")
        ]
        table = pa.concat_tables(tables).sort_by([(c, "ascending") for c in QUARANTINE_KEY])
        return coerce_quarantine(table.to_pandas())

    def stats(self) -> list[dict]:
        """Ticks and quarantined rows by reason per (symbol, trading day), from file metadata and reasons only."""
        ticks = {
            (f.parent.parent.name.removeprefix("symbol="), f.parent.name.removeprefix("day=")): (
                pq.read_metadata(f).num_rows  # the footer only: no tick is read to be counted
            )
            for f in self.root.glob("ticks/symbol=*/day=*/ticks.parquet")
        }
        reasons: dict[tuple[str, str, str], int] = {}
        for f in self.root.glob("quarantine/symbol=*/day=*/quarantine.parquet"):
            symbol = unquote(f.parent.parent.name.removeprefix("symbol="))
            day = f.parent.name.removeprefix("day=")
            counts = pc.value_counts(pq.read_table(f, columns=["reason"])["reason"].combine_chunks())
            for item in counts.to_pylist():
                reasons[(symbol, day, item["values"])] = item["counts"]
        return stats_rows(ticks, reasons)

    def _quarantine_file(self, symbol: str, day: str) -> Path:
        # quote(): a quarantined symbol is whatever the dirty file held, "/" and ".." included
        return (
            self.root
            / "quarantine"
            / f"symbol={quote(symbol, safe='')}"
            / f"day={day}"
            / "quarantine.parquet"
        )

    def _merge_quarantine(self, path: Path, batch: pd.DataFrame) -> int:
        """Add the rows of `batch` whose (source, row) is not in `path` yet; return how many were added."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with _locked(path.parent / ".lock"):
            stored = (
                _read(path, QUARANTINE_ARROW_SCHEMA)
                if path.exists()
                else QUARANTINE_ARROW_SCHEMA.empty_table()
            )
            known = pd.MultiIndex.from_arrays([stored["source"].to_pandas(), stored["row"].to_pandas()])
            fresh = batch[~pd.MultiIndex.from_frame(batch[QUARANTINE_KEY]).isin(known)]
            if fresh.empty:
                return 0
            incoming = pa.Table.from_pandas(fresh, schema=QUARANTINE_ARROW_SCHEMA, preserve_index=False)
            merged = pa.concat_tables([stored, incoming]).sort_by([(c, "ascending") for c in QUARANTINE_KEY])
            _replace_atomically(path, lambda tmp: _write_table(merged, tmp))
            return len(fresh)

    # layout --------------------------------------------------------------------------------------------

    def _symbol_dir(self, kind: str, symbol: str) -> Path:
        if not symbol or symbol in (".", "..") or "/" in symbol or "\\" in symbol or "\0" in symbol:
            raise ValueError(f"symbol {symbol!r} cannot name a partition directory")
        return self.root / kind / f"symbol={symbol}"

    def _file(self, kind: str, symbol: str, day: dt.date) -> Path:
        return self._symbol_dir(kind, symbol) / f"day={day.isoformat()}" / f"{kind}.parquet"

    def _cursor_file(self, name: str) -> Path:
        # quote() keeps any cursor name (e.g. "stream:NIFTY/15m") a single, reversible file name
        return self.root / "cursors" / f"{quote(name, safe='')}.json"

    def _days(self, kind: str, symbol: str) -> list[dt.date]:
        files = self._symbol_dir(kind, symbol).glob(f"day=*/{kind}.parquet")
        return sorted(dt.date.fromisoformat(f.parent.name.removeprefix("day=")) for f in files)

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

    def _write(self, kind: str, frame: pd.DataFrame, schema: pa.Schema) -> int:
        """Merge a prepared frame (sorted by symbol, ts, seq) into its symbol-day files; return new rows."""
        table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
        jobs = [
            (self._file(kind, symbol, day), table.slice(start, stop - start))
            for symbol, day, start, stop in day_runs(frame)
        ]
        if len(jobs) <= 1:
            return sum(self._merge(path, part) for path, part in jobs)
        # Parquet encoding, compression and fsync release the GIL: files of other days are written meanwhile
        with ThreadPoolExecutor(max_workers=WRITER_THREADS) as pool:
            return sum(pool.map(lambda job: self._merge(*job), jobs))

    def _merge(self, path: Path, incoming: pa.Table) -> int:
        """Merge `incoming` (one partition, sorted by ts, seq) into `path`; return how many rows were new."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with _locked(path.parent / ".lock"):
            stored = _read(path, incoming.schema) if path.exists() else incoming.schema.empty_table()
            if stored.num_rows == 0 or _key(incoming, 0) > _key(stored, -1):
                merged = pa.concat_tables([stored, incoming])  # the live-feed case: a pure append
            else:
                frame = pd.concat([stored.to_pandas(), incoming.to_pandas()], ignore_index=True)
                # stored rows come first, so a re-sent key never overwrites what was stored
                frame = frame.drop_duplicates(["ts", "seq"], keep="first").sort_values(["ts", "seq"])
                merged = pa.Table.from_pandas(frame, schema=incoming.schema, preserve_index=False)
            new = merged.num_rows - stored.num_rows
            if new:
                _replace_atomically(path, lambda tmp: _write_table(merged, tmp))
            return new


def _write_table(table: pa.Table, path: Path) -> None:
    # zstd at level 1 writes about as fast as the default snappy and a third smaller; dictionaries only
    # where values repeat (symbol, side, labels): on prices they cost time and are dropped anyway
    repeated = [f.name for f in table.schema if f.type == pa.string() or f.name == "side"]
    pq.write_table(
        table,
        path,
        row_group_size=ROW_GROUP,
        compression="zstd",
        compression_level=1,
        use_dictionary=repeated,
    )


def _key(table: pa.Table, row: int) -> tuple[int, int]:
    row = row % table.num_rows
    return table["ts"][row].value, table["seq"][row].as_py()


def _read(path: Path, schema: pa.Schema, where: pc.Expression | None = None) -> pa.Table:
    # `where` is pushed down: row-group statistics skip most of a day when a live reader polls its tail
    return pq.read_table(path, schema=schema, filters=where)


def _between(start: pd.Timestamp | None, end: pd.Timestamp | None) -> pc.Expression | None:
    """Filter start <= ts < end for UTC bounds (None is unbounded); None when both are unbounded."""
    where = None
    if start is not None:
        where = pc.field("ts") >= pa.scalar(start.value, _TS)
    if end is not None:
        below = pc.field("ts") < pa.scalar(end.value, _TS)
        where = below if where is None else where & below
    return where


def _ticks_frame(tables: list[pa.Table]) -> pd.DataFrame:
    if not tables:
        return empty_ticks()
    return coerce_ticks(pa.concat_tables(tables).to_pandas())


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Exclusive advisory lock on `path` across processes (released when the file is closed)."""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _replace_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """Write via `write(tmp)` to a temp file beside `path`, fsync it, then rename it over `path`."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        write(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    # the rename itself is durable only once the directory entry is flushed
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
