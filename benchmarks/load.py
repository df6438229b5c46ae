"""A sustained load on one scoring service: a single-tick client as fast as it goes and a 100-tick client at a
steady pace, both on persistent connections, for N minutes; per minute p50/p99/p99.9 and stalls of the
single-tick client, errors of both, and the worker's RSS. Run with the collector frozen after the models load
(the service's default) and without, side by side (`TICKML_GC_FREEZE=0`).
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import multiprocessing as mp
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil

from benchmarks.scoring import FIRST_DAY, _champions
from feature_store.instruments import get_instrument
from pipelines.simulate import simulate_session
from pipelines.streaming import ticks_payload
from tickml import service

BATCH_SYMBOL = "NIFTY_LOAD"
STALL_MS = 100.0


def _days(count: int, offset: int) -> list[dt.date]:
    return get_instrument("NIFTY").trading_days(FIRST_DAY + dt.timedelta(days=offset), count)


def _session_bodies(day: dt.date, symbol: str, size: int) -> list[bytes]:
    seed = day.toordinal() + size  # the two clients replay the same past days, not the same ticks
    ticks = ticks_payload(simulate_session(get_instrument("NIFTY"), day, seed=seed).assign(symbol=symbol))
    return [json.dumps({"ticks": ticks[i : i + size]}).encode() for i in range(0, len(ticks), size)]


def _post(conn: http.client.HTTPConnection, body: bytes) -> int:
    conn.request("POST", "/score", body=body, headers={"content-type": "application/json"})
    response = conn.getresponse()
    response.read()
    return response.status


def _batch_client(port: int, seconds: float, per_second: float, days: list[dt.date], out: mp.Queue) -> None:
    """The 100-tick client, in a process of its own: `per_second` requests a second for `seconds`."""
    conn, errors, sent = http.client.HTTPConnection("127.0.0.1", port, timeout=30), 0, 0
    end = time.monotonic() + seconds
    for day in days:
        for body in _session_bodies(day, BATCH_SYMBOL, 100):
            if time.monotonic() >= end:
                out.put((sent, errors))
                return
            errors += _post(conn, body) != 200
            sent += 1
            time.sleep(max(0.0, 1.0 / per_second - 0.001))
    out.put((sent, errors))


def _one_run(port: int, minutes: float, worker: psutil.Process) -> dict:
    seconds = minutes * 60
    queue: mp.Queue = mp.get_context("fork").Queue()
    batch = mp.get_context("fork").Process(
        target=_batch_client, args=(port, seconds, 10.0, _days(12, 30), queue), daemon=True
    )
    rss: list[tuple[float, int]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(5.0):
            rss.append((time.monotonic(), worker.memory_info().rss))

    sampler = threading.Thread(target=sample, daemon=True)
    batch.start()
    sampler.start()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    started = time.monotonic()
    stamps, latencies, errors = [], [], 0
    for day in _days(12, 30):
        for body in _session_bodies(day, "NIFTY", 1):
            now = time.perf_counter()
            if time.monotonic() - started >= seconds:
                break
            errors += _post(conn, body) != 200
            latencies.append((time.perf_counter() - now) * 1e3)
            stamps.append(time.monotonic() - started)
        else:
            continue
        break
    stop.set()
    batch.join(timeout=60)
    sent, batch_errors = queue.get(timeout=10)
    return {
        "stamps": np.asarray(stamps),
        "ms": np.asarray(latencies),
        "errors": errors,
        "batch_sent": sent,
        "batch_errors": batch_errors,
        "rss": rss,
        "started": started,
    }


def run(*, minutes: float = 5.0) -> str:
    """`minutes` of load with the collector frozen and without; returns markdown tables."""
    work = Path(tempfile.mkdtemp(prefix="tickml-load-"))
    uri = f"sqlite:///{work / 'mlflow.db'}"
    _champions(uri)
    instruments = work / "instruments.yaml"
    instruments.write_text(
        json.dumps(
            {
                "symbols": {BATCH_SYMBOL: {"venue": "NSE", "price": 24000.0}},
                "universes": {"default": {"symbols": ["NIFTY", BATCH_SYMBOL]}},
            }
        )
    )
    os.environ["TICKML_INSTRUMENTS"] = str(instruments)
    lines = [
        f"## Sustained load ({minutes:g} min per setting, {dt.date.today()}): single-tick client as fast as it "
        "goes, 100-tick client at 10 requests/s, persistent connections",
        "",
    ]
    summary = [
        "| setting | single-tick requests | errors | 100-tick requests | errors | stalls > 100 ms | "
        "max ms | RSS after 1 min MB | RSS at end MB | growth | stalls at (s into the run) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    per_minute = [
        "| setting | minute | p50 ms | p99 ms | p99.9 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, freeze in (("gc.freeze() after loading (default)", "1"), ("no freeze", "0")):
        port = service.free_port()
        env = {
            "MLFLOW_TRACKING_URI": uri,
            "TICKML_HOME": str(work / f"store{freeze}"),
            "TICKML_INSTRUMENTS": str(instruments),
            "TICKML_GC_FREEZE": freeze,
        }
        proc = service.start(port, log_path=work / f"serve{freeze}.log", env=env)
        try:
            service.wait_ready(proc, f"http://127.0.0.1:{port}", log_path=work / f"serve{freeze}.log")
            worker = next(
                p
                for p in psutil.Process(proc.pid).children(recursive=True)
                if "worker.service" in " ".join(p.cmdline())
            )
            result = _one_run(port, minutes, worker)
        finally:
            service.stop(proc)
        ms, stamps = result["ms"], result["stamps"]
        rss = [(t - result["started"], r) for t, r in result["rss"]]
        after_warmup = next((r for t, r in rss if t >= 60), rss[0][1] if rss else 0)
        end = rss[-1][1] if rss else 0
        growth = (end - after_warmup) / after_warmup if after_warmup else float("nan")
        summary.append(
            f"| {label} | {len(ms):,} | {result['errors']} | {result['batch_sent']:,} | {result['batch_errors']} | "
            f"{int((ms > STALL_MS).sum())} | {ms.max():.1f} | {after_warmup / 2**20:,.0f} | {end / 2**20:,.0f} | "
            f"{growth:+.1%} | {', '.join(f'{t:.0f}' for t in stamps[ms > STALL_MS][:20]) or '-'} |"
        )
        for minute in range(int(np.ceil(minutes))):
            v = ms[(stamps >= minute * 60) & (stamps < (minute + 1) * 60)]
            if len(v):
                per_minute.append(
                    f"| {label} | {minute + 1} | {np.percentile(v, 50):.3f} | {np.percentile(v, 99):.3f} | "
                    f"{np.percentile(v, 99.9):.3f} | {v.max():.1f} |"
                )
    return "\n".join([*lines, *summary, "", *per_minute])
