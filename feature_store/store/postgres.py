"""Production tick store: PostgreSQL through psycopg 3, bulk writes by COPY, nanosecond keys as bigint."""

from __future__ import annotations

import datetime as dt
import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg import sql

from feature_store.instruments import get_instrument
from feature_store.schema import (
    PREDICTION_DTYPES,
    QUARANTINE_DTYPES,
    TICK_DTYPES,
    coerce_predictions,
    coerce_quarantine,
    coerce_ticks,
)
from feature_store.store._common import (
    check_limit,
    prepare_predictions,
    prepare_quarantine,
    prepare_ticks,
    stats_rows,
    utc,
)
from feature_store.store._pgticks import rederive_volume, write_ticks
from feature_store.store.base import TickKey, TickStore
from feature_store.store.migrations import migrate

_CSV_TYPES = {"str": pa.string(), "int64": pa.int64(), "int8": pa.int8(), "float64": pa.float64()}
_NS = pa.timestamp("ns", tz="UTC")
_CSV_WRITE = pacsv.WriteOptions(include_header=False, quoting_style="all_valid")


class _Layout:
    """How a canonical frame maps to a table: timestamp columns travel as `<name>_ns` epoch nanoseconds."""

    def __init__(self, table: str, dtypes: dict[str, str]) -> None:
        self.table = table
        self.dtypes = dtypes
        self.db_columns = [f"{c}_ns" if _is_time(t) else c for c, t in dtypes.items()]
        self.csv_schema = pa.schema(
            [(c, pa.int64() if _is_time(t) else _CSV_TYPES[t]) for c, t in dtypes.items()]
        )

    def to_csv_table(self, frame: pd.DataFrame) -> pa.Table:
        """Arrow columns in `db_columns` order; NaN, None and NaT become nulls, so NULL in PostgreSQL."""
        arrays = []
        for col, dtype in self.dtypes.items():
            if _is_time(dtype):
                missing = frame[col].isna().to_numpy()
                arrays.append(pa.array(pd.DatetimeIndex(frame[col]).asi8, pa.int64(), mask=missing))
            else:
                arrays.append(pa.Array.from_pandas(frame[col], type=self.csv_schema.field(col).type))
        return pa.Table.from_arrays(arrays, names=self.db_columns)

    def select_list(self) -> sql.Composable:
        return sql.SQL(", ").join(
            sql.SQL("{} AS {}").format(sql.Identifier(db), sql.Identifier(c))
            for db, c in zip(self.db_columns, self.dtypes, strict=True)
        )

    def from_csv_table(self, table: pa.Table) -> pd.DataFrame:
        for i, (col, dtype) in enumerate(self.dtypes.items()):
            if _is_time(dtype):
                table = table.set_column(i, col, table[col].cast(_NS))
        return table.to_pandas()


def _is_time(dtype: str) -> bool:
    return dtype.startswith("datetime64")


TICKS = _Layout("ticks", TICK_DTYPES)
PREDICTIONS = _Layout("predictions", PREDICTION_DTYPES)
SHADOW_PREDICTIONS = _Layout("shadow_predictions", PREDICTION_DTYPES)
QUARANTINE = _Layout("quarantine", QUARANTINE_DTYPES)


class PostgresTickStore(TickStore):
    """Ticks, trading days, predictions and cursors in PostgreSQL; the schema is created on open.

    One connection per store, used under a lock so a store may be shared by threads; every method is
    one transaction. Ticks go by binary COPY into their trading day's partition (`_pgticks`); predictions
    and quarantine rows COPY into a temp table and insert with ON CONFLICT DO NOTHING. Every write is
    idempotent on its key and the first stored version of a row wins. The schema is `migrations`.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._lock = threading.RLock()
        self._conn: psycopg.Connection | None = None
        self._closed = False
        self._partitions: set[dt.date] = set()  # days whose partition is known to exist
        with self._transaction() as cur:
            migrate(cur)

    def close(self) -> None:
        """Close the connection; the store is unusable afterwards."""
        with self._lock:
            self._closed = True
            if self._conn is not None:
                self._conn.close()

    # ticks ---------------------------------------------------------------------------------------------

    def write_ticks(self, ticks: pd.DataFrame) -> int:
        """Validate and store canonical ticks (UTC `ts`); return how many (symbol, ts, seq) were new.

        One transaction: a failed write stores nothing. Partitions of new days are created, loaded,
        indexed and attached in it (see `_pgticks`).
        """
        frame = prepare_ticks(ticks)
        if frame.empty:
            return 0
        try:
            with self._transaction() as cur:
                new, days = write_ticks(cur, frame, self._partitions)
        except psycopg.errors.UndefinedTable:
            # a partition this handle knew was dropped (retention, a restore): forget them all, once
            self._partitions.clear()
            with self._transaction() as cur:
                new, days = write_ticks(cur, frame, self._partitions)
        self._partitions |= days  # committed: these partitions exist now
        return new

    def read_ticks(
        self, symbol: str, start: pd.Timestamp | None = None, end: pd.Timestamp | None = None
    ) -> pd.DataFrame:
        """Ticks of `symbol` with start <= ts < end (UTC; None is unbounded), ordered by (ts, seq)."""
        start, end = utc(start), utc(end)
        where, params = _time_filter(start, end)
        days, day_params = _day_filter(symbol, start, end)
        query = sql.SQL("SELECT {} FROM ticks WHERE symbol = %s{}{} ORDER BY ts_ns, seq").format(
            TICKS.select_list(), where, days
        )
        return coerce_ticks(self._select(TICKS, query, [symbol, *params, *day_params]))

    def ticks_after(self, symbol: str, after: TickKey | None, limit: int | None = None) -> pd.DataFrame:
        """Up to `limit` ticks of `symbol` strictly after `after` (epoch ns UTC, seq), in (ts, seq) order."""
        check_limit(limit)
        query, params = ticks_after_query(symbol, after, limit)
        return coerce_ticks(self._select(TICKS, query, params))

    def stored_seqs(
        self, symbol: str, day: dt.date, first: int | None = None, last: int | None = None
    ) -> np.ndarray:
        """Sorted distinct seqs of `symbol`'s stored ticks on trading `day` with first <= seq <= last: a range
        scan of the day partition's (symbol, seq) index."""
        query, params = stored_seqs_query(symbol, day, first, last)
        with self._transaction() as cur:
            rows = cur.execute(query, params).fetchall()
        return np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))

    def rederive_volume(self, symbol: str, day: dt.date) -> int:
        """Volume of `symbol`'s ticks on trading `day` := running sum of size in (ts, seq) order, in one
        UPDATE (one transaction); return how many ticks changed."""
        with self._transaction() as cur:
            return rederive_volume(cur, symbol, day)

    def symbols(self) -> list[str]:
        """Symbols with at least one stored tick, sorted."""
        with self._transaction() as cur:
            rows = cur.execute("SELECT DISTINCT symbol FROM tick_days WHERE ticks > 0 ORDER BY symbol")
            return [row[0] for row in rows]

    def days(self, symbol: str) -> list[dt.date]:
        """Exchange-local trading days with stored ticks of `symbol`, sorted."""
        with self._transaction() as cur:
            rows = cur.execute(
                "SELECT day FROM tick_days WHERE symbol = %s AND ticks > 0 ORDER BY day", [symbol]
            )
            return [row[0] for row in rows]

    # predictions ---------------------------------------------------------------------------------------

    def write_predictions(self, predictions: pd.DataFrame, *, shadow: bool = False) -> int:
        """Store prediction rows (UTC `ts`, `scored_at`); return how many (symbol, ts, seq) were new."""
        frame = prepare_predictions(predictions)
        if frame.empty:
            return 0
        with self._transaction() as cur:
            return self._insert(cur, SHADOW_PREDICTIONS if shadow else PREDICTIONS, frame)

    def read_predictions(
        self,
        symbol: str | None = None,
        start: pd.Timestamp | None = None,
        end: pd.Timestamp | None = None,
        *,
        shadow: bool = False,
    ) -> pd.DataFrame:
        """Predictions with start <= ts < end (UTC; None is unbounded), ordered by (symbol, ts, seq)."""
        layout = SHADOW_PREDICTIONS if shadow else PREDICTIONS
        where, params = _time_filter(start, end)
        if symbol is not None:
            where, params = sql.SQL(" AND symbol = %s{}").format(where), [symbol, *params]
        query = sql.SQL("SELECT {} FROM {} WHERE true{} ORDER BY symbol, ts_ns, seq").format(
            layout.select_list(), sql.Identifier(layout.table), where
        )
        return coerce_predictions(self._select(layout, query, params))

    # cursors -------------------------------------------------------------------------------------------

    def get_cursor(self, name: str) -> str | None:
        """The stored value of streaming cursor `name`, or None if never set."""
        with self._transaction() as cur:
            row = cur.execute("SELECT value FROM cursors WHERE name = %s", [name]).fetchone()
        return None if row is None else row[0]

    def set_cursor(self, name: str, value: str) -> None:
        """Durably store streaming cursor `name` (overwrites); `updated_at` is the server's UTC now()."""
        with self._transaction() as cur:
            cur.execute(
                "INSERT INTO cursors (name, value, updated_at) VALUES (%s, %s, now()) "
                "ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at",
                [name, value],
            )

    # quarantine and stats -----------------------------------------------------------------------------

    def write_quarantine(self, rows: pd.DataFrame) -> int:
        """Store quarantined rows (UTC `ts`); idempotent on (source, row); return how many were new."""
        frame = prepare_quarantine(rows)
        if frame.empty:
            return 0
        frame["day"] = frame["day"].replace("", None)  # an unknown day is NULL in the date column
        with self._transaction() as cur:
            return self._insert(cur, QUARANTINE, frame)

    def read_quarantine(self, symbol: str | None = None, day: dt.date | None = None) -> pd.DataFrame:
        """Quarantined rows, optionally of one symbol and/or trading day, ordered by (source, row)."""
        where, params = sql.SQL(""), []
        if symbol is not None:
            where, params = sql.SQL(" AND symbol = %s"), [symbol]
        if day is not None:
            where, params = sql.SQL("{} AND day = %s").format(where), [*params, day]
        query = sql.SQL('SELECT {} FROM quarantine WHERE true{} ORDER BY source, "row"').format(
            QUARANTINE.select_list(), where
        )
        return coerce_quarantine(self._select(QUARANTINE, query, params))

    def stats(self) -> list[dict]:
        """Ticks (tick_days' counts, kept by every write) and quarantined rows by reason per symbol-day."""
        with self._transaction() as cur:
            counts = cur.execute("SELECT symbol, day, ticks FROM tick_days WHERE ticks > 0").fetchall()
            quarantined = cur.execute(
                "SELECT symbol, coalesce(day::text, ''), reason, count(*) FROM quarantine GROUP BY 1, 2, 3"
            ).fetchall()
        ticks = {(symbol, day.isoformat()): n for symbol, day, n in counts}
        return stats_rows(ticks, {(s, d, r): n for s, d, r, n in quarantined})

    # plumbing ------------------------------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Cursor]:
        with self._lock:
            if self._closed:
                raise RuntimeError("PostgresTickStore is closed")
            if self._conn is None or self._conn.closed or self._conn.broken:
                self._conn = psycopg.connect(self.url, autocommit=True)
                # any value > 0 makes float8 text output shortest-exact: prices survive CSV COPY bit for bit
                self._conn.execute("SET extra_float_digits = 1")
                # dates travel as text in CSV COPY: YYYY-MM-DD whatever the server's default
                self._conn.execute("SET DateStyle = ISO")
            with self._conn.transaction(), self._conn.cursor() as cur:
                yield cur

    def _insert(self, cur: psycopg.Cursor, layout: _Layout, frame: pd.DataFrame) -> int:
        """COPY `frame` into a temp table, then insert what is not stored yet; return the new row count."""
        incoming = sql.Identifier(f"incoming_{layout.table}")
        columns = sql.SQL(", ").join(map(sql.Identifier, layout.db_columns))
        cur.execute(
            sql.SQL("CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA").format(
                incoming, columns, sql.Identifier(layout.table)
            )
        )
        copy_sql = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(incoming, columns)
        with cur.copy(copy_sql) as copy:
            for batch in layout.to_csv_table(frame).to_batches(max_chunksize=100_000):
                buffer = io.BytesIO()
                # quoting every non-null value keeps '' distinct from NULL (an unquoted empty field)
                pacsv.write_csv(batch, buffer, _CSV_WRITE)
                copy.write(buffer.getvalue())
        cur.execute(
            sql.SQL(
                "INSERT INTO {table} (ts, {columns}) "
                "SELECT timestamptz 'epoch' + ts_ns / 1000 * interval '1 microsecond', {columns} "
                "FROM {incoming} ON CONFLICT DO NOTHING"
            ).format(table=sql.Identifier(layout.table), columns=columns, incoming=incoming)
        )
        return cur.rowcount

    def _select(self, layout: _Layout, query: sql.Composable, params: list) -> pd.DataFrame:
        buffer = io.BytesIO()
        with self._transaction() as cur:
            with cur.copy(sql.SQL("COPY ({}) TO STDOUT (FORMAT csv)").format(query), params) as copy:
                for block in copy:
                    buffer.write(block)
        if buffer.tell() == 0:
            return layout.from_csv_table(layout.csv_schema.empty_table())
        table = pacsv.read_csv(
            io.BytesIO(buffer.getvalue()),
            read_options=pacsv.ReadOptions(column_names=layout.csv_schema.names),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types=layout.csv_schema,
                # PostgreSQL writes NULL as an unquoted empty field and only that: text such as "NaN" or
                # "null" arrives unquoted and must stay text
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
            ),
        )
        return layout.from_csv_table(table)


def ticks_after_query(symbol: str, after: TickKey | None, limit: int | None) -> tuple[sql.Composed, list]:
    """The SELECT of `ticks_after` and its parameters: an index range scan of the cursor's days only."""
    where, params = sql.SQL(""), []
    if after is not None:
        days, day_params = _day_filter(symbol, pd.Timestamp(after.ts_ns, tz="UTC"), None)
        where = sql.SQL(" AND (ts_ns, seq) > (%s, %s){}").format(days)
        params = [int(after.ts_ns), int(after.seq), *day_params]
    # LIMIT NULL means no limit in PostgreSQL
    query = sql.SQL("SELECT {} FROM ticks WHERE symbol = %s{} ORDER BY ts_ns, seq LIMIT %s").format(
        TICKS.select_list(), where
    )
    return query, [symbol, *params, limit]


def stored_seqs_query(symbol: str, day: dt.date, first: int | None, last: int | None) -> tuple[str, list]:
    """The SELECT of `stored_seqs` and its parameters: a range scan of one day partition's seq index."""
    query, params = "SELECT DISTINCT seq FROM ticks WHERE symbol = %s AND day = %s", [symbol, day]
    if first is not None:
        query, params = query + " AND seq >= %s", [*params, int(first)]
    if last is not None:
        query, params = query + " AND seq <= %s", [*params, int(last)]
    return query + " ORDER BY seq", params


def _day_filter(
    symbol: str, start: pd.Timestamp | None, end: pd.Timestamp | None
) -> tuple[sql.Composable, list]:
    """Conditions on the partition key `day` that hold for every tick with start <= ts <= end.

    A symbol's trading day never decreases as its ts grows, so the days of the bounds bound the day
    and PostgreSQL reads only those partitions. Nothing for a symbol without an instrument: it has no
    stored ticks either.
    """
    try:
        trading_day = get_instrument(symbol).trading_day
    except KeyError:
        return sql.SQL(""), []
    parts, params = [], []
    if start is not None:
        parts.append(sql.SQL(" AND day >= %s"))
        params.append(trading_day(pd.DatetimeIndex([start]))[0])
    if end is not None:
        parts.append(sql.SQL(" AND day <= %s"))
        params.append(trading_day(pd.DatetimeIndex([end]))[0])
    return sql.Composed(parts), params


def _time_filter(start: pd.Timestamp | None, end: pd.Timestamp | None) -> tuple[sql.Composable, list]:
    """SQL conditions (each prefixed by AND) and parameters for start <= ts < end, UTC bounds."""
    parts, params = [], []
    if (start := utc(start)) is not None:
        parts.append(sql.SQL(" AND ts_ns >= %s"))
        params.append(start.value)
    if (end := utc(end)) is not None:
        parts.append(sql.SQL(" AND ts_ns < %s"))
        params.append(end.value)
    return sql.Composed(parts), params
