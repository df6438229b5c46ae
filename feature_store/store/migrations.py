"""Versioned schema of the PostgreSQL tick store: numbered steps, applied in order, each recorded once.

A step is never edited once released; a change to the schema is a new step at the end. `migrate` runs
every step the database has not recorded yet, in one transaction under an advisory lock, so two
processes opening the store at once, or a second run, change nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from psycopg import sql

from feature_store.instruments import get_instrument

# Version 1 (the walking skeleton). Timestamps are epoch nanoseconds (UTC) in bigint columns because
# timestamptz keeps only microseconds; `ts` beside them is the same instant truncated to µs, for people
# and SQL tools.
V1 = """
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
"""

# Version 2: the quarantine. One row per rejected source row, keyed by where it came from; `day` is the
# exchange-local trading day (NULL when the timestamp is unknown), `ts_ns` NULL when unparseable.
V2 = """
CREATE TABLE quarantine (
    source text NOT NULL,
    row bigint NOT NULL,
    symbol text NOT NULL,
    day date,
    ts_ns bigint,
    ts timestamptz,
    reason text NOT NULL,
    detail text NOT NULL,
    raw text NOT NULL,
    quarantined_at_ns bigint NOT NULL,
    PRIMARY KEY (source, row)
);
-- read_quarantine(symbol, day) and the per-day counts of stats()
CREATE INDEX quarantine_symbol_day ON quarantine (symbol, day, reason);
"""


# Version 3: ticks range-partitioned by trading day, one partition per day for all symbols. The key is
# `day`, the exchange-local trading day of the tick's instrument (the day of the Parquet layout, of
# Dagster's partitions and of stats), not a UTC range: a symbol-day lies in exactly one partition
# whatever the exchange's time zone, so reading or re-loading it touches one table. (symbol, ts_ns)
# determines the day, so the primary key (symbol, ts_ns, seq, day) is as unique as (symbol, ts_ns, seq);
# its prefix serves "ticks of symbol S after (ts_ns, seq)" inside each partition. Partitions are created
# when a write first touches their day (`begin_partition`, `finish_partition`); tick_days gains the
# stored tick count of each symbol-day, kept by every write, so stats() reads no tick.
V3_TICKS = """
ALTER TABLE ticks RENAME TO ticks_v1;
ALTER TABLE ticks_v1 RENAME CONSTRAINT ticks_pkey TO ticks_v1_pkey;
CREATE TABLE ticks (
    symbol text NOT NULL,
    day date NOT NULL,
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
    PRIMARY KEY (symbol, ts_ns, seq, day)
) PARTITION BY RANGE (day);
ALTER TABLE tick_days ADD COLUMN ticks bigint NOT NULL DEFAULT 0;
"""


def partition_name(day: dt.date) -> str:
    """The ticks partition of one exchange-local trading day, e.g. ticks_20251229."""
    return f"ticks_{day:%Y%m%d}"


def create_partition(cur: psycopg.Cursor, day: dt.date) -> bool:
    """Create and attach the (empty) ticks partition of `day` unless it exists; return whether it was created."""
    if not begin_partition(cur, day):
        return False
    finish_partition(cur, day)
    return True


def begin_partition(cur: psycopg.Cursor, day: dt.date) -> bool:
    """Create the table of `day`'s partition, not attached yet and without index; False if it exists.

    The caller may bulk-load it, then must call `finish_partition` in the same transaction: an index
    built once over sorted rows costs a fraction of keeping it up to date row by row. Until the
    transaction ends, a transaction-level advisory lock makes any other writer of the same new day wait
    and then find the partition.
    """
    cur.execute("SELECT pg_advisory_xact_lock(hashtext('tickml.partition'), %s)", [_day_number(day)])
    name = partition_name(day)
    if cur.execute("SELECT to_regclass(%s) IS NOT NULL", [name]).fetchone()[0]:
        return False
    # the CHECK matches the partition bound, so ATTACH needs no scan to prove the rows belong
    cur.execute(
        sql.SQL(
            "CREATE TABLE {} (LIKE ticks INCLUDING DEFAULTS INCLUDING CONSTRAINTS, "
            "CONSTRAINT {} CHECK (day >= {} AND day < {}))"
        ).format(sql.Identifier(name), sql.Identifier(f"{name}_day"), *_bounds(day))
    )
    return True


def finish_partition(cur: psycopg.Cursor, day: dt.date) -> None:
    """Index and attach the partition table `begin_partition` created.

    ATTACH PARTITION takes SHARE UPDATE EXCLUSIVE on `ticks`, which readers and writers of other days
    never wait for, where CREATE TABLE ... PARTITION OF would queue every reader behind an ACCESS
    EXCLUSIVE lock while a long load holds the table.
    """
    name = partition_name(day)
    # a primary key, not just a unique index: ATTACH adopts a matching constraint as the partition's part
    # of ticks' primary key, where it would ignore a plain unique index and build a second one
    cur.execute(
        sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} PRIMARY KEY (symbol, ts_ns, seq, day)").format(
            sql.Identifier(name), sql.Identifier(f"{name}_pkey")
        )
    )
    # built here, once over the loaded rows; ATTACH adopts it as the partition's part of ticks_symbol_seq
    # (a partition made while migrating to v3 has it before v5 creates ticks_symbol_seq, which adopts it)
    cur.execute(
        sql.SQL("CREATE INDEX {} ON {} (symbol, seq)").format(
            sql.Identifier(f"{name}_symbol_seq"), sql.Identifier(name)
        )
    )
    cur.execute(
        sql.SQL("ALTER TABLE ticks ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})").format(
            sql.Identifier(name), *_bounds(day)
        )
    )


def _bounds(day: dt.date) -> tuple[sql.Literal, sql.Literal]:
    return sql.Literal(day), sql.Literal(day + dt.timedelta(days=1))


def _day_number(day: dt.date) -> int:
    return day.toordinal() - dt.date(2000, 1, 1).toordinal()


def _v3_move_ticks(cur: psycopg.Cursor) -> None:
    """Copy v1's ticks into their day partitions (trading day from each symbol's exchange time zone)."""
    symbols = [row[0] for row in cur.execute("SELECT DISTINCT symbol FROM ticks_v1 ORDER BY symbol")]
    for symbol in symbols:
        try:
            zone = get_instrument(symbol).timezone
        except KeyError as error:
            raise RuntimeError(
                f"cannot upgrade the tick store to schema v3: {error.args[0]}; its trading days need "
                "the exchange time zone"
            ) from None
        # ts is ts_ns truncated to the µs: never on the other side of a midnight from ts_ns
        local_day = sql.SQL("(ts AT TIME ZONE {})::date").format(sql.Literal(zone))
        days = cur.execute(
            sql.SQL("SELECT DISTINCT {} FROM ticks_v1 WHERE symbol = %s").format(local_day), [symbol]
        ).fetchall()
        for (day,) in days:
            create_partition(cur, day)
        cur.execute(
            sql.SQL(
                "INSERT INTO ticks SELECT symbol, {}, ts_ns, seq, ts, price, size, volume, side, "
                "bid, ask, bid_size, ask_size, oi FROM ticks_v1 WHERE symbol = %s"
            ).format(local_day),
            [symbol],
        )
    cur.execute("DELETE FROM tick_days")
    cur.execute(
        "INSERT INTO tick_days (symbol, day, ticks) SELECT symbol, day, count(*) FROM ticks GROUP BY 1, 2"
    )
    cur.execute("DROP TABLE ticks_v1")


# Version 4: symbols and sources compare byte by byte (COLLATE "C"). Keys of the indexes every tick
# write updates start with the symbol, and a locale's comparison costs about as much as the rest of the
# insert; byte order is also how Python and Arrow sort, so both backends list rows in one order.
V4 = """
ALTER TABLE ticks ALTER COLUMN symbol TYPE text COLLATE "C";
ALTER TABLE tick_days ALTER COLUMN symbol TYPE text COLLATE "C";
ALTER TABLE predictions ALTER COLUMN symbol TYPE text COLLATE "C";
ALTER TABLE quarantine ALTER COLUMN source TYPE text COLLATE "C", ALTER COLUMN symbol TYPE text COLLATE "C";
"""


# Version 5: an index on (symbol, seq) in every day partition. For sources whose seq is the exchange's event
# number, (symbol, trading day, seq) is a tick's identity, and ingest asks for the stored seqs of a chunk's
# seq range (`stored_seqs`): a range scan of this index, not a read of the symbol's whole day. Not unique:
# where seq is a file's row number, two captures of one day reuse the same numbers for other ticks.
V5 = """
CREATE INDEX ticks_symbol_seq ON ticks (symbol, seq);
"""


# Version 6: a shadow challenger's predictions, scored beside the champion's: same columns, same key.
V6 = """
CREATE TABLE shadow_predictions (LIKE predictions INCLUDING ALL);
"""


@dataclass(frozen=True)
class Migration:
    """One schema step: `sql`, then `run` (for what SQL alone cannot do); `version` is then recorded."""

    version: int
    description: str
    sql: str
    run: Callable[[psycopg.Cursor], None] | None = None


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "ticks, tick_days, predictions, cursors", V1),
    Migration(2, "quarantine", V2),
    Migration(3, "ticks range-partitioned by trading day, tick counts per day", V3_TICKS, _v3_move_ticks),
    Migration(4, "symbols and sources in byte order (COLLATE C)", V4),
    Migration(5, "an index on (symbol, seq) in every tick partition", V5),
    Migration(6, "shadow_predictions, a challenger's predictions beside the champion's", V6),
)
SCHEMA_VERSION = MIGRATIONS[-1].version


def applied_versions(cur: psycopg.Cursor) -> set[int]:
    """Versions recorded in tickml_schema (empty for a database tickml never opened)."""
    exists = cur.execute("SELECT to_regclass('tickml_schema') IS NOT NULL").fetchone()[0]
    if not exists:
        return set()
    return {row[0] for row in cur.execute("SELECT version FROM tickml_schema")}


def migrate(cur: psycopg.Cursor, target: int = SCHEMA_VERSION) -> list[int]:
    """Apply the steps up to `target` that the database lacks, in order; return the versions applied.

    Must run inside a transaction: the advisory lock is held until it ends, so concurrent callers wait
    and then find nothing left to do.
    """
    # CREATE ... IF NOT EXISTS still races on the catalog when two processes open the store at once
    cur.execute("SELECT pg_advisory_xact_lock(hashtext('tickml.schema'))")
    done = applied_versions(cur)
    applied = []
    for step in MIGRATIONS:
        if step.version > target or step.version in done:
            continue
        cur.execute(step.sql)
        if step.run is not None:
            step.run(cur)
        cur.execute("INSERT INTO tickml_schema (version) VALUES (%s)", [step.version])
        applied.append(step.version)
    return applied
