"""Writing ticks into the day partitions of PostgreSQL: binary COPY, and ON CONFLICT only when needed.

One (symbol, trading day) at a time, under a transaction-level advisory lock on that pair so tickml
writers of the same symbol-day take turns. When every incoming tick comes after the last stored one
of its symbol-day (an empty symbol-day, the next chunk of a file, a live feed appending), nothing can
conflict and the ticks are COPied straight into the partition. Otherwise (a re-ingest, an overlapping
batch) they are COPied into a temp table and inserted with ON CONFLICT DO NOTHING, so the first stored
version of a tick wins. Each write adds its new ticks to tick_days.ticks in the same transaction.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import psycopg
from psycopg import sql

from feature_store.store._common import trading_days
from feature_store.store._pgbinary import HEADER, TICK_COPY_COLUMNS, TRAILER, tick_rows
from feature_store.store.migrations import partition_name

_COLUMNS = sql.SQL(", ").join(map(sql.Identifier, TICK_COPY_COLUMNS))
_INCOMING = "incoming_ticks"
# bounded COPY messages: a day of ticks never sits in memory twice as one bytes object
COPY_ROWS = 100_000


def day_groups(frame: pd.DataFrame) -> list[tuple[str, dt.date, pd.DataFrame]]:
    """(symbol, trading day, ticks) of a prepared frame, sorted by symbol and day; ticks keep their order."""
    groups = frame.groupby([frame["symbol"], trading_days(frame)], sort=True)
    return [(symbol, day, part) for (symbol, day), part in groups]


def write_day(cur: psycopg.Cursor, symbol: str, day: dt.date, ticks: pd.DataFrame) -> int:
    """Store the ticks of one symbol-day (sorted by ts, seq, keys unique) in its existing partition.

    Must run inside a transaction; returns how many ticks were new.
    """
    day_number = day.toordinal() - dt.date(2000, 1, 1).toordinal()
    cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s), %s)", [symbol, day_number])
    partition = sql.Identifier(partition_name(day))
    last = cur.execute(
        sql.SQL("SELECT ts_ns, seq FROM {} WHERE symbol = %s ORDER BY ts_ns DESC, seq DESC LIMIT 1").format(
            partition
        ),
        [symbol],
    ).fetchone()
    first = (int(ticks["ts"].iloc[0].value), int(ticks["seq"].iloc[0]))
    if last is None or first > tuple(last):
        _copy(cur, partition, symbol, day, ticks)
        new = len(ticks)
    else:
        new = _merge(cur, partition, symbol, day, ticks)
    if new:
        cur.execute(
            "INSERT INTO tick_days (symbol, day, ticks) VALUES (%s, %s, %s) "
            "ON CONFLICT (symbol, day) DO UPDATE SET ticks = tick_days.ticks + EXCLUDED.ticks",
            [symbol, day, new],
        )
    return new


def _copy(cur: psycopg.Cursor, table: sql.Identifier, symbol: str, day: dt.date, ticks: pd.DataFrame) -> None:
    with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(table, _COLUMNS)) as copy:
        copy.write(HEADER)
        for start in range(0, len(ticks), COPY_ROWS):
            copy.write(tick_rows(ticks.iloc[start : start + COPY_ROWS], symbol, day))
        copy.write(TRAILER)


def _merge(
    cur: psycopg.Cursor, partition: sql.Identifier, symbol: str, day: dt.date, ticks: pd.DataFrame
) -> int:
    # one temp table per connection, emptied by every commit
    cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS {_INCOMING} (LIKE ticks) ON COMMIT DELETE ROWS")
    cur.execute(f"TRUNCATE {_INCOMING}")  # an earlier symbol-day of the same write
    incoming = sql.Identifier(_INCOMING)
    _copy(cur, incoming, symbol, day, ticks)
    cur.execute(
        sql.SQL("INSERT INTO {} ({columns}) SELECT {columns} FROM {} ON CONFLICT DO NOTHING").format(
            partition, incoming, columns=_COLUMNS
        )
    )
    return cur.rowcount
