"""`live_predictions`: the stored predictions as a day × symbol asset, whose materialisations record what the
streaming driver scored (either driver: the `scoring_sensor` or `tickml stream`).

The predictions are written by the driver, not by a Dagster run, so the asset is an external one: each
driver reports a materialisation per symbol-day it scored (`progress_events`), and the asset's page shows the
live session's progress: ticks scored, the last tick's time, latency p50/p99, trade-filter actions and the
model versions.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Mapping

import dagster as dg
import numpy as np
import pandas as pd

from feature_store.instruments import get_instrument
from feature_store.store import TickStore
from orchestration.ticks.partitions import SYMBOL_DAYS, symbol_day_key
from pipelines.streaming import StreamStep, SymbolProgress, describe

log = logging.getLogger(__name__)

LIVE_PREDICTIONS = dg.AssetKey("live_predictions")

live_predictions = dg.AssetSpec(
    LIVE_PREDICTIONS,
    partitions_def=SYMBOL_DAYS,
    group_name="serving",
    deps=["raw_ticks"],
    description="Predictions the streaming driver stored for each symbol-day (the tick store's predictions "
    "table): each materialisation records one report of what it scored, with the champion versions",
    kinds={"bentoml", "postgres"},
)


def _day(symbol: str, progress: SymbolProgress) -> str:
    ts = pd.Timestamp(progress.last.ts_ns, tz="UTC").tz_convert(get_instrument(symbol).tz)
    return ts.date().isoformat()


def stored_on_day(store: TickStore, symbol: str, day: str) -> int:
    """Predictions stored for `symbol` on trading `day` (exchange-local): the day's total so far."""
    instrument = get_instrument(symbol)
    start = pd.Timestamp(dt.date.fromisoformat(day), tz=instrument.tz)
    return len(
        store.read_predictions(
            symbol, start.tz_convert("UTC"), (start + pd.Timedelta(days=1)).tz_convert("UTC")
        )
    )


def progress_events(
    progress: Mapping[str, SymbolProgress], driver: str, store: TickStore | None = None
) -> list[dg.AssetMaterialization]:
    """One materialisation of `live_predictions` per symbol scored, on the day of its last tick; with
    `store`, each also carries the day's total of stored predictions, true even when a report was lost
    (a driver killed between reports)."""
    events = []
    for symbol, p in sorted(progress.items()):
        if not p.ticks:
            continue
        day = _day(symbol, p)
        latencies = np.asarray(p.latencies_ms)
        totals = {} if store is None else {"predictions_stored_day": stored_on_day(store, symbol, day)}
        events.append(
            dg.AssetMaterialization(
                LIVE_PREDICTIONS,
                partition=str(symbol_day_key(day, symbol)),
                description=f"{driver}: scored {p.ticks:,} ticks of {symbol} up to {describe(p.last, symbol)}",
                metadata={
                    "ticks_scored": p.ticks,
                    "last_tick": describe(p.last, symbol),
                    "requests": len(latencies),
                    "latency_p50_ms": float(np.percentile(latencies, 50)),
                    "latency_p99_ms": float(np.percentile(latencies, 99)),
                    "actions": dg.MetadataValue.json(dict(sorted(p.actions.items()))),
                    "model_versions": ", ".join(sorted(p.versions)),
                    "driver": driver,
                    **totals,
                },
            )
        )
    return events


def outcome(step: StreamStep) -> str:
    """What a pass did, in words: "scored 2,000 ticks of NIFTY up to 2026-10-30 10:42:13 IST (seq 81,220)"."""
    parts = [
        f"scored {p.ticks:,} ticks of {s} up to {describe(p.last, s)}"
        for s, p in sorted(step.progress.items())
    ]
    parts += [f"{s} refused: {reason}" for s, reason in step.refused.items()]
    return "; ".join(parts) or "no new ticks"


class ProgressReporter:
    """`tickml stream`'s reports to the Dagster instance ($DAGSTER_HOME): passes are added up per symbol and
    reported every `interval_s` while a backlog drains, and as soon as the stream has caught up (a pass with
    nothing new), so a 0.2 s poll does not write an event per pass and the last report is never stale."""

    def __init__(self, instance: dg.DagsterInstance, store: TickStore, interval_s: float = 10.0) -> None:
        self.instance, self.store, self.interval_s = instance, store, interval_s
        self._pending: dict[str, SymbolProgress] = {}
        self._last = time.monotonic()

    def add(self, step: StreamStep, *, flush: bool = False) -> None:
        for symbol, p in step.progress.items():
            pending = self._pending.setdefault(symbol, SymbolProgress())
            if pending.last is not None and _day(symbol, pending) != _day(symbol, p):
                self.flush()  # a new day is another partition
                pending = self._pending.setdefault(symbol, SymbolProgress())
            pending.ticks += p.ticks
            pending.last = p.last
            pending.actions.update(p.actions)
            pending.versions |= p.versions
            pending.latencies_ms += p.latencies_ms
        caught_up = step.error is None and step.ticks_scored == 0
        if self._pending and (flush or caught_up or time.monotonic() - self._last >= self.interval_s):
            self.flush()

    def flush(self) -> None:
        self._last = time.monotonic()
        pending, self._pending = self._pending, {}
        try:
            for event in progress_events(pending, "tickml stream", self.store):
                self.instance.report_runless_asset_event(event)
        except Exception:  # noqa: BLE001 - Dagster down must not stop the stream; the predictions are stored
            log.warning("could not record streaming progress in Dagster", exc_info=True)
