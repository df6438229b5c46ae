"""The PostgreSQL schema: versioned migrations, day partitions created on demand, indexes that are used."""

from __future__ import annotations

import datetime as dt
import threading

import pandas as pd
import psycopg
import pytest

from feature_store.instruments import get_instrument
from feature_store.store import PostgresTickStore, TickKey
from feature_store.store._common import trading_days
from feature_store.store.migrations import MIGRATIONS, SCHEMA_VERSION, V1, migrate
from feature_store.store.postgres import stored_seqs_query, ticks_after_query
from pipelines.simulate import simulate_session
from tests.test_store_contract import T0, make_ticks

DAY = pd.Timedelta(days=1).value


def partitions(url: str) -> list[str]:
    """Names of the partitions attached to `ticks`, sorted."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'ticks'::regclass ORDER BY 1"
        )
        return [row[0] for row in rows]


def versions(url: str) -> list[int]:
    with psycopg.connect(url) as conn:
        return [row[0] for row in conn.execute("SELECT version FROM tickml_schema ORDER BY version")]


def v1_database(url: str, ticks: pd.DataFrame) -> None:
    """A database as the v1 code left it: its DDL, its version row, ticks and their days written its way."""
    with psycopg.connect(url) as conn:
        conn.execute(V1)
        conn.execute("INSERT INTO tickml_schema (version) VALUES (1)")
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO ticks (symbol, ts_ns, seq, ts, price, size, volume, side, bid, ask, bid_size, "
                "ask_size, oi) VALUES (%s, %s, %s, timestamptz 'epoch' + %s / 1000 * interval '1 microsecond', "
                "%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [
                    (r.symbol, r.ts.value, r.seq, r.ts.value, r.price, r.size, r.volume, r.side)
                    + tuple(None if pd.isna(v) else v for v in (r.bid, r.ask, r.bid_size, r.ask_size, r.oi))
                    for r in ticks.itertuples()
                ],
            )
            days = {(s, d) for s, d in zip(ticks["symbol"], trading_days(ticks), strict=True)}
            cur.executemany("INSERT INTO tick_days (symbol, day) VALUES (%s, %s)", sorted(days))
        conn.execute("INSERT INTO cursors (name, value) VALUES ('stream:NIFTY', '42')")


# partitions --------------------------------------------------------------------------------------------


def test_a_new_store_has_no_tick_partitions(pg_db_url: str) -> None:
    PostgresTickStore(pg_db_url).close()

    assert partitions(pg_db_url) == []


def test_a_write_creates_the_partition_of_each_trading_day_it_touches(pg_db_url: str) -> None:
    store = PostgresTickStore(pg_db_url)

    store.write_ticks(make_ticks([0, 10, DAY, DAY + 10, 3 * DAY]))

    assert partitions(pg_db_url) == ["ticks_20251229", "ticks_20251230", "ticks_20260101"]
    store.close()


def test_partitions_follow_the_exchange_local_trading_day(pg_db_url: str) -> None:
    store = PostgresTickStore(pg_db_url)
    evening = pd.Timestamp("2025-12-30 01:00", tz="UTC").value - T0  # 20:00 in New York on the 29th

    store.write_ticks(make_ticks([evening], symbol="AMZN"))

    assert partitions(pg_db_url) == ["ticks_20251229"]
    store.close()


def test_each_partition_has_its_part_of_the_primary_key_and_of_the_seq_index(pg_db_url: str) -> None:
    store = PostgresTickStore(pg_db_url)

    store.write_ticks(make_ticks([0, 10, DAY]))
    store.write_ticks(make_ticks([0, 5, 20]))  # into an existing partition, through ON CONFLICT

    with psycopg.connect(pg_db_url) as conn:
        indexes = conn.execute(
            "SELECT c.relname, x.indisprimary FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid "
            "WHERE x.indrelid IN ('ticks_20251229'::regclass, 'ticks_20251230'::regclass) ORDER BY 1"
        ).fetchall()
    assert indexes == [
        ("ticks_20251229_pkey", True),
        ("ticks_20251229_symbol_seq", False),
        ("ticks_20251230_pkey", True),
        ("ticks_20251230_symbol_seq", False),
    ]
    store.close()


def test_a_dropped_partition_is_created_again_by_the_next_write(pg_db_url: str) -> None:
    store = PostgresTickStore(pg_db_url)
    store.write_ticks(make_ticks([0, 10]))
    with psycopg.connect(pg_db_url) as conn:
        conn.execute("DROP TABLE ticks_20251229")
        conn.execute("DELETE FROM tick_days")

    new = store.write_ticks(make_ticks([0, 10, 20]))

    assert (new, store.read_ticks("NIFTY")["seq"].tolist()) == (3, [0, 1, 2])
    store.close()


def test_ticks_land_in_their_day_partition(pg_db_url: str) -> None:
    store = PostgresTickStore(pg_db_url)

    store.write_ticks(make_ticks([0, 10, DAY]))

    with psycopg.connect(pg_db_url) as conn:
        counts = conn.execute("SELECT tableoid::regclass::text, count(*) FROM ticks GROUP BY 1 ORDER BY 1")
        assert counts.fetchall() == [("ticks_20251229", 2), ("ticks_20251230", 1)]
    store.close()


def test_writers_racing_into_one_new_day_both_store_their_ticks(pg_db_url: str) -> None:
    stores = [PostgresTickStore(pg_db_url) for _ in range(2)]
    barrier = threading.Barrier(2)
    results: list[int] = []

    def write(store: PostgresTickStore, symbol: str) -> None:
        barrier.wait()
        results.append(store.write_ticks(make_ticks(list(range(0, 2000, 10)), symbol=symbol)))

    threads = [
        threading.Thread(target=write, args=(s, sym))
        for s, sym in zip(stores, ["NIFTY", "BTCUSDT"], strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert (results, partitions(pg_db_url)) == ([200, 200], ["ticks_20251229"])
    for store in stores:
        store.close()


# migrations --------------------------------------------------------------------------------------------


def test_a_new_database_is_migrated_to_the_latest_version(pg_db_url: str) -> None:
    PostgresTickStore(pg_db_url).close()

    assert versions(pg_db_url) == [m.version for m in MIGRATIONS]


def test_migrating_twice_applies_nothing(pg_db_url: str) -> None:
    PostgresTickStore(pg_db_url).close()

    with psycopg.connect(pg_db_url) as conn, conn.cursor() as cur:
        applied = migrate(cur)

    assert (applied, versions(pg_db_url)) == ([], list(range(1, SCHEMA_VERSION + 1)))


def test_stores_opened_at_once_on_a_new_database_migrate_it_once(pg_db_url: str) -> None:
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def open_store() -> None:
        barrier.wait()
        try:
            PostgresTickStore(pg_db_url).close()
        except BaseException as error:  # noqa: BLE001 - collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert (errors, versions(pg_db_url)) == ([], list(range(1, SCHEMA_VERSION + 1)))


def test_migration_steps_are_numbered_one_by_one_from_one() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))


# upgrading a v1 database -------------------------------------------------------------------------------


@pytest.fixture
def v1_ticks() -> pd.DataFrame:
    """Ticks of two symbols over two trading days, one of them in New York's evening."""
    nifty = make_ticks([0, 10, 10, DAY], seqs=[0, 1, 2, 0], bid=[23999.95, None, 23999.9, 23999.95])
    evening = pd.Timestamp("2025-12-30 01:00", tz="UTC").value - T0
    amzn = make_ticks([evening, evening + 1], symbol="AMZN")
    return pd.concat([amzn, nifty], ignore_index=True)


def test_upgrading_a_v1_database_keeps_every_tick(pg_db_url: str, v1_ticks: pd.DataFrame) -> None:
    v1_database(pg_db_url, v1_ticks)

    store = PostgresTickStore(pg_db_url)

    stored = pd.concat([store.read_ticks(s) for s in ("AMZN", "NIFTY")], ignore_index=True)
    pd.testing.assert_frame_equal(stored, v1_ticks, check_exact=True)
    store.close()


def test_upgrading_a_v1_database_partitions_its_ticks_by_trading_day(
    pg_db_url: str, v1_ticks: pd.DataFrame
) -> None:
    v1_database(pg_db_url, v1_ticks)

    PostgresTickStore(pg_db_url).close()

    assert (partitions(pg_db_url), versions(pg_db_url)) == (
        ["ticks_20251229", "ticks_20251230"],
        list(range(1, SCHEMA_VERSION + 1)),
    )


def test_upgrading_a_v1_database_counts_its_ticks_per_day(pg_db_url: str, v1_ticks: pd.DataFrame) -> None:
    v1_database(pg_db_url, v1_ticks)

    store = PostgresTickStore(pg_db_url)

    assert [(s["symbol"], s["day"], s["ticks"]) for s in store.stats()] == [
        ("AMZN", "2025-12-29", 2),
        ("NIFTY", "2025-12-29", 3),
        ("NIFTY", "2025-12-30", 1),
    ]
    store.close()


def test_an_upgraded_v1_database_keeps_cursors_and_stays_idempotent(
    pg_db_url: str, v1_ticks: pd.DataFrame
) -> None:
    v1_database(pg_db_url, v1_ticks)
    store = PostgresTickStore(pg_db_url)

    new = store.write_ticks(v1_ticks)

    assert (new, store.get_cursor("stream:NIFTY")) == (0, "42")
    store.close()


# the index behind ticks_after ---------------------------------------------------------------------------


def test_ticks_after_reads_the_cursors_partition_by_its_index(pg_db_url: str) -> None:
    nifty = get_instrument("NIFTY")
    days = nifty.trading_days(dt.date(2026, 1, 5), 3)
    store = PostgresTickStore(pg_db_url)
    for day in days:
        store.write_ticks(simulate_session(nifty, day, seed=3))
    middle = store.read_ticks("NIFTY", *nifty.session_bounds(days[1])).iloc[1000]
    query, params = ticks_after_query("NIFTY", TickKey(middle["ts"].value, int(middle["seq"])), 50)

    with psycopg.connect(pg_db_url) as conn:
        conn.execute("ANALYZE ticks")
        plan = "\n".join(row[0] for row in conn.execute(psycopg.sql.SQL("EXPLAIN {}").format(query), params))

    assert "Index Scan using ticks_20260106_pkey on ticks_20260106" in plan
    assert "ticks_20260105" not in plan
    assert "Seq Scan" not in plan
    store.close()


# the index behind stored_seqs ---------------------------------------------------------------------------


def test_a_database_of_schema_v4_gets_the_seq_index_on_its_existing_partitions(pg_db_url: str) -> None:
    with psycopg.connect(pg_db_url) as conn, conn.transaction(), conn.cursor() as cur:
        migrate(cur, target=4)
        cur.execute("CREATE TABLE ticks_20251229 (LIKE ticks INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
        cur.execute(
            "ALTER TABLE ticks ATTACH PARTITION ticks_20251229 FOR VALUES FROM ('2025-12-29') TO ('2025-12-30')"
        )

    store = PostgresTickStore(pg_db_url)  # migrates to the latest version

    with psycopg.connect(pg_db_url) as conn:
        indexes = conn.execute(
            "SELECT c.relname FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid "
            "WHERE x.indrelid = 'ticks_20251229'::regclass AND NOT x.indisprimary"
        ).fetchall()
    assert (versions(pg_db_url)[-1], len(indexes)) == (SCHEMA_VERSION, 1)
    store.close()


def test_stored_seqs_of_a_chunks_range_scans_the_seq_index_of_its_day(pg_db_url: str) -> None:
    nifty = get_instrument("NIFTY")
    days = nifty.trading_days(dt.date(2026, 1, 5), 2)
    store = PostgresTickStore(pg_db_url)
    for day in days:
        store.write_ticks(simulate_session(nifty, day, seed=3))

    query, params = stored_seqs_query("NIFTY", days[1], 1000, 1100)

    with psycopg.connect(pg_db_url) as conn:
        conn.execute("ANALYZE ticks")
        plan = "\n".join(row[0] for row in conn.execute(f"EXPLAIN {query}", params))

    assert "ticks_20260106_symbol_seq" in plan
    assert "ticks_20260105" not in plan
    assert "Seq Scan" not in plan
    store.close()
