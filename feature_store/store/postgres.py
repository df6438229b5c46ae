"""Production tick store: PostgreSQL through psycopg 3, bulk writes by COPY, nanosecond keys as bigint."""

from __future__ import annotations

import datetime as dt
import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg import sql

from feature_store.schema import PREDICTION_DTYPES, TICK_DTYPES, coerce_predictions, coerce_ticks
from feature_store.store._common import check_limit, prepare_predictions, prepare_ticks, trading_days, utc
from feature_store.store.base import TickKey, TickStore

SCHEMA_VERSION = 1
# Version 1 of the schema. Timestamps are epoch nanoseconds (UTC) in bigint columns because timestamptz
# keeps only microseconds; `ts` beside them is the same instant truncated to µs, for people and SQL tools.
# Later versions (day range-partitioning of ticks) go in as new migrations after this one, never edits.
SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS tickml_schema (
    version integer PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS ticks (
    symbol text NOT NULL,
    ts_ns bigint NOT NULL,
    seq bigint NOT NULL,
    ts timestamptz NOT NULL,
    price double precision NOT NULL,
    size double precision NOT NULL,
    volume double precision NOT NULL,
    side smallint NOT NULL,
    bid double precision,
    ask double precision,
    bid_size double precision,
    ask_size double precision,
    oi double precision,
    -- also the index of "ticks of symbol S after (ts_ns, seq)": a row comparison on its prefix
    PRIMARY KEY (symbol, ts_ns, seq)
);
-- exchange-local trading days with ticks, maintained on write so days() and symbols() never scan ticks
CREATE TABLE IF NOT EXISTS tick_days (
    symbol text NOT NULL,
    day date NOT NULL,
    PRIMARY KEY (symbol, day)
);
CREATE TABLE IF NOT EXISTS predictions (
    symbol text NOT NULL,
    ts_ns bigint NOT NULL,
    seq bigint NOT NULL,
    ts timestamptz NOT NULL,
    p15_down double precision,
    p15_trap_down double precision,
    p15_flat double precision,
    p15_trap_up double precision,
    p15_up double precision,
    p30_down double precision,
    p30_flat double precision,
    p30_up double precision,
    signal text,
    confidence double precision,
    action text,
    reason text,
    model_15m_version text,
    model_30m_version text,
    scored_at_ns bigint,
    PRIMARY KEY (symbol, ts_ns, seq)
);
CREATE TABLE IF NOT EXISTS cursors (
    name text PRIMARY KEY,
    value text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO tickml_schema (version) VALUES (1) ON CONFLICT DO NOTHING;
"""

_CSV_TYPES = {"str": pa.string(), "int64": pa.int64(), "int8": pa.int8(), "float64": pa.float64()}
_NS = pa.timestamp("ns", tz="UTC")
_CSV_WRITE = pacsv.WriteOptions(include_header=False, quoting_style="all_valid")


def migrate(cur: psycopg.Cursor) -> None:
    """Bring the database to `SCHEMA_VERSION`; safe to run concurrently from many processes."""
    # CREATE ... IF NOT EXISTS still races on the catalog when two processes open the store at once
    cur.execute("SELECT pg_advisory_xact_lock(hashtext('tickml.schema'))")
    cur.execute(SCHEMA_V1)


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


class PostgresTickStore(TickStore):
    """Ticks, trading days, predictions and cursors in PostgreSQL; the schema is created on open.

    One connection per store, used under a lock so a store may be shared by threads; every method is
    one transaction. Writes COPY into a temp table and insert with ON CONFLICT DO NOTHING, so they are
    idempotent on (symbol, ts_ns, seq) and the first stored version of a tick wins.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._lock = threading.RLock()
        self._conn: psycopg.Connection | None = None
        self._closed = False
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
        """Validate and store canonical ticks (UTC `ts`); return how many (symbol, ts, seq) were new."""
        frame = prepare_ticks(ticks)
        if frame.empty:
            return 0
        days = sorted(set(zip(frame["symbol"], trading_days(frame), strict=True)))
        with self._transaction() as cur:
            new = self._insert(cur, TICKS, frame)
            cur.executemany(
                "INSERT INTO tick_days (symbol, day) VALUES (%s, %s) ON CONFLICT DO NOTHING", days
            )
        return new

    def read_ticks(
        self, symbol: str, start: pd.Timestamp | None = None, end: pd.Timestamp | None = None
    ) -> pd.DataFrame:
        """Ticks of `symbol` with start <= ts < end (UTC; None is unbounded), ordered by (ts, seq)."""
        where, params = _time_filter(start, end)
        query = sql.SQL("SELECT {} FROM ticks WHERE symbol = %s{} ORDER BY ts_ns, seq").format(
            TICKS.select_list(), where
        )
        return coerce_ticks(self._select(TICKS, query, [symbol, *params]))

    def ticks_after(self, symbol: str, after: TickKey | None, limit: int | None = None) -> pd.DataFrame:
        """Up to `limit` ticks of `symbol` strictly after `after` (epoch ns UTC, seq), in (ts, seq) order."""
        check_limit(limit)
        where, params = sql.SQL(""), []
        if after is not None:
            where, params = sql.SQL(" AND (ts_ns, seq) > (%s, %s)"), [int(after.ts_ns), int(after.seq)]
        # LIMIT NULL means no limit in PostgreSQL
        query = sql.SQL("SELECT {} FROM ticks WHERE symbol = %s{} ORDER BY ts_ns, seq LIMIT %s").format(
            TICKS.select_list(), where
        )
        return coerce_ticks(self._select(TICKS, query, [symbol, *params, limit]))

    def symbols(self) -> list[str]:
        """Symbols with at least one stored tick, sorted."""
        with self._transaction() as cur:
            return [row[0] for row in cur.execute("SELECT DISTINCT symbol FROM tick_days ORDER BY symbol")]

    def days(self, symbol: str) -> list[dt.date]:
        """Exchange-local trading days with stored ticks of `symbol`, sorted."""
        with self._transaction() as cur:
            rows = cur.execute("SELECT day FROM tick_days WHERE symbol = %s ORDER BY day", [symbol])
            return [row[0] for row in rows]

    # predictions ---------------------------------------------------------------------------------------

    def write_predictions(self, predictions: pd.DataFrame) -> int:
        """Store prediction rows (UTC `ts`, `scored_at`); return how many (symbol, ts, seq) were new."""
        frame = prepare_predictions(predictions)
        if frame.empty:
            return 0
        with self._transaction() as cur:
            return self._insert(cur, PREDICTIONS, frame)

    def read_predictions(
        self, symbol: str | None = None, start: pd.Timestamp | None = None, end: pd.Timestamp | None = None
    ) -> pd.DataFrame:
        """Predictions with start <= ts < end (UTC; None is unbounded), ordered by (symbol, ts, seq)."""
        where, params = _time_filter(start, end)
        if symbol is not None:
            where, params = sql.SQL(" AND symbol = %s{}").format(where), [symbol, *params]
        query = sql.SQL("SELECT {} FROM predictions WHERE true{} ORDER BY symbol, ts_ns, seq").format(
            PREDICTIONS.select_list(), where
        )
        return coerce_predictions(self._select(PREDICTIONS, query, params))

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
                column_types=layout.csv_schema, strings_can_be_null=True, quoted_strings_can_be_null=False
            ),
        )
        return layout.from_csv_table(table)


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
