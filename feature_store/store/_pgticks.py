"""Writing ticks into the day partitions of PostgreSQL: binary COPY, and ON CONFLICT only when needed.

A day without a partition gets a new table, loaded by COPY, then indexed once and attached (see
`migrations.begin_partition`). In an existing partition, one (symbol, trading day) at a time is written
under a transaction-level advisory lock on that pair, so tickml writers of the same symbol-day take
turns. When every incoming tick comes after the last stored one of its symbol-day (an empty
symbol-day, the next chunk of a file, a live feed appending), nothing can conflict and the ticks are
COPied straight into the partition. Otherwise (a re-ingest, an overlapping batch) they are COPied into
a temp table and inserted with ON CONFLICT DO NOTHING, so the first stored version of a tick wins.
Each write adds its new ticks to tick_days.ticks in the same transaction.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import psycopg
from psycopg import sql

from feature_store.store._common import day_runs
from feature_store.store._pgbinary import HEADER, TICK_COPY_COLUMNS, TRAILER, tick_rows
from feature_store.store.migrations import begin_partition, finish_partition, partition_name

_COLUMNS = sql.SQL(", ").join(map(sql.Identifier, TICK_COPY_COLUMNS))
_INCOMING = "incoming_ticks"
# bounded COPY messages: a day of ticks never sits in memory twice as one bytes object
COPY_ROWS = 100_000


def write_ticks(
    cur: psycopg.Cursor, frame: pd.DataFrame, known_days: set[dt.date]
) -> tuple[int, set[dt.date]]:
    """Store a prepared frame (sorted by symbol, ts, seq; keys unique); return (new ticks, its days).

    Must run inside a transaction. `known_days` are days whose partition is known to exist already.
    Every advisory lock is taken in one order (new days' partitions, then symbol-days, each sorted), so
    concurrent writers wait for each other but never deadlock.
    """
    groups = [(symbol, day, frame.iloc[start:stop]) for symbol, day, start, stop in day_runs(frame)]
    days = {day for _, day, _ in groups}
    fresh = {day for day in sorted(days - known_days) if begin_partition(cur, day)}
    new = sum(write_day(cur, symbol, day, part, fresh=day in fresh) for symbol, day, part in groups)
    for day in sorted(fresh):
        finish_partition(cur, day)
    return new, days


def write_day(
    cur: psycopg.Cursor, symbol: str, day: dt.date, ticks: pd.DataFrame, *, fresh: bool = False
) -> int:
    """Store the ticks of one symbol-day (sorted by ts, seq, keys unique) in its partition's table.

    `fresh`: the table was created by this transaction (nothing stored, no index yet). Must run inside a
    transaction; returns how many ticks were new.
    """
    lock_symbol_day(cur, symbol, day)
    partition = sql.Identifier(partition_name(day))
    last = None
    if not fresh:
        last = cur.execute(
            sql.SQL(
                "SELECT ts_ns, seq FROM {} WHERE symbol = %s ORDER BY ts_ns DESC, seq DESC LIMIT 1"
            ).format(partition),
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


def lock_symbol_day(cur: psycopg.Cursor, symbol: str, day: dt.date) -> None:
    """Wait for, then hold until the transaction ends, the advisory lock of one symbol-day's ticks."""
    day_number = day.toordinal() - dt.date(2000, 1, 1).toordinal()
    cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s), %s)", [symbol, day_number])


def rederive_volume(cur: psycopg.Cursor, symbol: str, day: dt.date) -> int:
    """Set the volume of one symbol-day's ticks to the running sum of size in (ts, seq) order, under the
    symbol-day's lock; return how many ticks changed. Must run inside a transaction."""
    lock_symbol_day(cur, symbol, day)
    # the window adds sizes one row at a time in key order (float8 `+`), as validation derives volume
    cur.execute(
        "UPDATE ticks AS t SET volume = r.running "
        "FROM (SELECT ts_ns, seq, sum(size) OVER (ORDER BY ts_ns, seq) AS running "
        "      FROM ticks WHERE symbol = %s AND day = %s) AS r "
        "WHERE t.symbol = %s AND t.day = %s AND t.ts_ns = r.ts_ns AND t.seq = r.seq "
        "AND t.volume <> r.running",
        [symbol, day, symbol, day],
    )
    return cur.rowcount


def _copy(cur: psycopg.Cursor, table: sql.Identifier, symbol: str, day: dt.date, ticks: pd.DataFrame) -> None:
    # No COPY FREEZE, although a fresh day's table would allow it: frozen rows are visible to snapshots
    # taken before the commit, so a reader could see day D+1 of a write before the same write's ticks of
    # day D, and a streaming cursor would skip them.
    options = sql.SQL("FORMAT BINARY")
    with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN ({})").format(table, _COLUMNS, options)) as copy:
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
