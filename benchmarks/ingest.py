"""Ingest speed and memory: the tick stores' bulk writes against a naive executemany INSERT, in one run.

Every path writes the same simulated NIFTY ticks, in chunks of the ingest reader's size, into a fresh
store: Parquet, PostgreSQL's COPY path on new days and again on the same ticks (the re-ingest path,
nothing new), and the reference design's one INSERT per tick by `cursor.executemany` into a plain table
on a slice (its rate is per tick, so the ratio holds). PostgreSQL is a pgserver instance started here.
Memory: a CSV larger than the memory a child process may use (RLIMIT_DATA) is ingested by
`pipelines.ingest.ingest_files` in that child; its peak RSS is reported, for a file of many trading days
and for one whose every row is on one day (each chunk then appends to the same day).
"""

from __future__ import annotations

import datetime as dt
import resource
import shutil
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from feature_store.instruments import get_instrument
from feature_store.store import ParquetTickStore, PostgresTickStore, TickStore
from feature_store.store.migrations import V1
from pipelines.simulate import simulate_session

FIRST_DAY = dt.date(2026, 1, 5)  # a Monday
CHUNK_ROWS = 500_000  # pipelines.sources.registry.DEFAULT_CHUNK_ROWS: what ingest hands the store
ONE_DAY_STEP = pd.Timedelta(microseconds=1_000)  # 1,000 ticks a second: a busy index future
MIB = 1 << 20
_NAIVE_INSERT = (
    "INSERT INTO ticks (symbol, ts_ns, seq, ts, price, size, volume, side, bid, ask, bid_size, ask_size, oi) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
# a CSV shaped like a broker's tick capture: ISO time, last trade, aggressor letter, five book levels
_MAPPING = """\
venue: NSE
timezone: UTC
columns:
  ts: {column: ts, format: iso}
  symbol: sym
  seq: seq
  price: ltp
  size: qty
  volume: vol
  side: {column: aggr, values: {B: 1, S: -1, "N": 0}}
  bid: bid_px_1
  ask: ask_px_1
  bid_size: bid_qty_1
  ask_size: ask_qty_1
"""


def simulated_ticks(count: int) -> pd.DataFrame:
    """At least `count` simulated NIFTY ticks over consecutive trading days from FIRST_DAY (UTC ts)."""
    nifty = get_instrument("NIFTY")
    frames, total, day = [], 0, FIRST_DAY
    while total < count:
        (day,) = nifty.trading_days(day, 1)
        frames.append(simulate_session(nifty, day, seed=11))
        total += len(frames[-1])
        day += dt.timedelta(days=1)
    return pd.concat(frames, ignore_index=True).iloc[:count]


def timed_writes(store: TickStore, ticks: pd.DataFrame) -> tuple[float, int]:
    """Seconds to write `ticks` in CHUNK_ROWS chunks, and how many were new."""
    started, new = time.perf_counter(), 0
    for start in range(0, len(ticks), CHUNK_ROWS):
        new += store.write_ticks(ticks.iloc[start : start + CHUNK_ROWS])
    return time.perf_counter() - started, new


def naive_inserts(url: str, ticks: pd.DataFrame, *, pipelined: bool = True) -> float:
    """Seconds for the reference design's path: one INSERT per tick into a plain table, one transaction.

    `pipelined`: by `cursor.executemany`, which psycopg 3 sends in pipeline mode (no wait for each
    row's reply); otherwise one `execute` per tick, a network round trip each, as psycopg 2 did.
    """
    with psycopg.connect(url) as conn:
        conn.execute(V1)  # the walking skeleton's plain, unpartitioned ticks table
        conn.execute("TRUNCATE ticks")
        started = time.perf_counter()
        rows = [
            (r.symbol, r.ts.value, r.seq, r.ts, r.price, r.size, r.volume, r.side)
            + tuple(None if v != v else v for v in (r.bid, r.ask, r.bid_size, r.ask_size, r.oi))
            for r in ticks.itertuples(index=False)
        ]
        with conn.cursor() as cur:
            if pipelined:
                cur.executemany(_NAIVE_INSERT, rows)
            else:
                for row in rows:
                    cur.execute(_NAIVE_INSERT, row)
        conn.commit()
        return time.perf_counter() - started


def write_capture_csv(path: Path, min_bytes: int, *, one_day: bool = False) -> int:
    """Write a capture-shaped CSV of at least `min_bytes` (20 simulated days repeated 4 weeks apart).

    `one_day`: the same rows on FIRST_DAY alone, one every ONE_DAY_STEP from the open, with seq and the
    cumulative volume running on (fits the session up to about 20 million rows).
    """
    nifty = get_instrument("NIFTY")
    days = nifty.trading_days(FIRST_DAY, 20)  # four whole weeks: a shift by 28 days keeps every weekday
    sessions = [simulate_session(nifty, day, seed=11) for day in days]
    if one_day:
        sessions = [_one_day(pd.concat(sessions, ignore_index=True))]
    names = ["ts", "sym", "seq", "ltp", "qty", "vol", "aggr"]
    names += [
        f"{side}_{what}_{level}" for level in range(1, 6) for side in ("bid", "ask") for what in ("px", "qty")
    ]
    schema = pa.schema([(n, pa.string() if n in ("ts", "sym", "aggr") else pa.float64()) for n in names])
    rows, block = 0, 0
    with pacsv.CSVWriter(path, schema, write_options=pacsv.WriteOptions(quoting_style="none")) as writer:
        while path.stat().st_size < min_bytes:
            for frame in sessions:
                if one_day:
                    frame = _next_rows(frame, rows)
                    shift = pd.Timedelta(0)
                else:
                    shift = pd.Timedelta(days=28 * block)
                writer.write_table(_capture_table(frame, shift, schema))
                rows += len(frame)
            block += 1
    return rows


def _one_day(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame`'s rows moved to FIRST_DAY's session from the open, ONE_DAY_STEP apart, seq 0, 1, …"""
    open_, _ = get_instrument("NIFTY").session_bounds(FIRST_DAY)
    steps = pd.RangeIndex(len(frame))
    return frame.assign(ts=open_ + ONE_DAY_STEP * steps, seq=steps, volume=frame["size"].cumsum())


def _next_rows(frame: pd.DataFrame, done: int) -> pd.DataFrame:
    """The one-day frame again after `done` rows (whole copies of it) were written: time, seq and volume run on."""
    volume_done = frame["volume"].iloc[-1] * (done // len(frame))
    return frame.assign(
        ts=frame["ts"] + ONE_DAY_STEP * done, seq=frame["seq"] + done, volume=frame["volume"] + volume_done
    )


def _capture_table(frame: pd.DataFrame, shift: pd.Timedelta, schema: pa.Schema) -> pa.Table:
    ts = pa.array(frame["ts"] + shift)
    columns = {
        "ts": pc.strftime(ts, format="%Y-%m-%dT%H:%M:%SZ"),
        "sym": pa.array(frame["symbol"]),
        "seq": frame["seq"].astype("float64"),
        "ltp": frame["price"],
        "qty": frame["size"],
        "vol": frame["volume"],
        "aggr": pa.array(np.array(["S", "N", "B"])[frame["side"].to_numpy() + 1]),
    }
    for level in range(1, 6):
        step = 0.05 * (level - 1)
        columns[f"bid_px_{level}"] = (frame["bid"] - step).round(2)
        columns[f"bid_qty_{level}"] = frame["bid_size"] * level
        columns[f"ask_px_{level}"] = (frame["ask"] + step).round(2)
        columns[f"ask_qty_{level}"] = frame["ask_size"] * level
    return pa.table({n: columns[n] for n in schema.names}, schema=schema)


def _limit_memory(limit_bytes: int) -> None:
    # RLIMIT_DATA caps heap and private anonymous mappings, i.e. what the process can fill; RLIMIT_AS
    # would also count the address space numba/LLVM and thread stacks reserve and never touch
    resource.setrlimit(resource.RLIMIT_DATA, (limit_bytes, limit_bytes))


def _ingest_in_child(csv: str, mapping: str, home: str, chunk_rows: int) -> tuple[int, float, float]:
    from pipelines.ingest import ingest_files  # in the child: its imports count against its limit

    started = time.perf_counter()
    report = ingest_files([csv], "mapped", ParquetTickStore(home), mapping=mapping, chunk_rows=chunk_rows)
    seconds = time.perf_counter() - started
    return report.total().rows_read, seconds, _peak_rss()


def _peak_rss() -> int:
    """This process's peak resident set in bytes.

    VmHWM, the high-water mark of this process's own memory map: ru_maxrss would do on a fresh process,
    but Linux carries it over from the parent into a spawned child (the child runs in the parent's
    memory until it execs), so it would report the parent's peak whenever that is higher.
    """
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # no procfs: Linux reports KiB


def memory_row(work: Path, file_mib: int, limit_mib: int, chunk_rows: int, *, one_day: bool = False) -> str:
    """Ingest a CSV of `file_mib` in a child limited to `limit_mib`; one markdown row of what happened."""
    csv, mapping = work / "capture.csv", work / "mapping.yaml"
    mapping.write_text(_MAPPING)
    rows = write_capture_csv(csv, file_mib * MIB, one_day=one_day)
    size = csv.stat().st_size
    spawn = get_context("spawn")  # a fresh interpreter: no memory inherited from this process
    with ProcessPoolExecutor(
        1, mp_context=spawn, initializer=_limit_memory, initargs=(limit_mib * MIB,)
    ) as pool:
        try:
            read, seconds, peak = pool.submit(
                _ingest_in_child, str(csv), str(mapping), str(work / f"home-{one_day}"), chunk_rows
            ).result()
            outcome = f"{peak / MIB:,.0f} MiB | {read / seconds:,.0f} rows/s"
        except Exception as error:  # noqa: BLE001 - a MemoryError in the child is the finding to report
            outcome = f"failed: {type(error).__name__} | -"
    csv.unlink()
    return (
        f"| {size / MIB:,.0f} MiB CSV ({rows:,} rows{', one trading day' if one_day else ''}) into Parquet, "
        f"chunk_rows={chunk_rows:,} "
        f"| {limit_mib:,} MiB | {outcome} |"
    )


def _row(path: str, ticks: int, seconds: float, baseline: float, target: str) -> str:
    rate = ticks / seconds
    return f"| {path} | {ticks:,} | {seconds:.2f} | {rate:,.0f} | {rate / baseline:,.1f}× | {target} |"


def run(
    *,
    ticks: int = 2_000_000,
    baseline_ticks: int = 50_000,
    memory_file_mib: int = 1_200,
    memory_limit_mib: int = 1_024,
    chunk_rows: int = 100_000,
) -> str:
    """Measure store writes against the naive baseline and ingest memory; returns markdown tables."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        import pgserver

    work = Path(tempfile.mkdtemp(prefix="tickml-bench-ingest-"))
    server = pgserver.get_server(work / "pgdata", cleanup_mode="stop")
    try:
        frame = simulated_ticks(ticks)
        with psycopg.connect(server.get_uri(), autocommit=True) as conn:
            for name in ("naive", "store"):
                conn.execute(f"CREATE DATABASE {name}")
        naive = naive_inserts(server.get_uri("naive"), frame.iloc[:baseline_ticks])
        baseline = baseline_ticks / naive
        round_trips = naive_inserts(
            server.get_uri("naive"), frame.iloc[: baseline_ticks // 5], pipelined=False
        )

        parquet = ParquetTickStore(work / "parquet")
        pq_new, _ = timed_writes(parquet, frame)
        pq_again, _ = timed_writes(parquet, frame)
        postgres = PostgresTickStore(server.get_uri("store"))
        pg_new, _ = timed_writes(postgres, frame)
        pg_again, _ = timed_writes(postgres, frame)
        postgres.close()
        days = frame["ts"].dt.tz_convert("Asia/Kolkata").dt.date.nunique()
        lines = [
            f"## Ingest: {len(frame):,} simulated NIFTY ticks over {days} trading days, "
            f"written in chunks of {CHUNK_ROWS:,} ({dt.date.today()})",
            "",
            "| path | ticks | s | ticks/s | vs naive | target |",
            "|---|---:|---:|---:|---:|---|",
            _row(
                "naive baseline: one INSERT per tick by `executemany` (psycopg 3 pipelines it), plain table",
                baseline_ticks,
                naive,
                baseline,
                "",
            ),
            _row(
                "for scale: one INSERT per tick by `execute`, a round trip each (psycopg 2's executemany)",
                baseline_ticks // 5,
                round_trips,
                baseline,
                "",
            ),
            _row("Parquet, new days", len(frame), pq_new, baseline, "≥ 1,000,000/s"),
            _row("Parquet, same ticks again (nothing new)", len(frame), pq_again, baseline, ""),
            _row(
                "PostgreSQL, new days: binary COPY, then index",
                len(frame),
                pg_new,
                baseline,
                "≥ 300,000/s, ≥ 20×",
            ),
            _row(
                "PostgreSQL, same ticks again: COPY + INSERT … ON CONFLICT",
                len(frame),
                pg_again,
                baseline,
                "",
            ),
            "",
            "| ingest of a file larger than the memory allowed | RLIMIT_DATA | peak RSS | rows/s |",
            "|---|---:|---:|---:|",
            memory_row(work, memory_file_mib, memory_limit_mib, chunk_rows),
            memory_row(work, memory_file_mib, memory_limit_mib, chunk_rows, one_day=True),
        ]
        return "\n".join(lines)
    finally:
        server.cleanup()
        shutil.rmtree(work, ignore_errors=True)
