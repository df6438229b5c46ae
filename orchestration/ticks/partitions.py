"""Tick partitions: (trading day, symbol), both dynamic, and the universes that scope the models.

Symbols are added when ingest first stores one; trading days follow each instrument's exchange calendar
over the days its ticks span (`expected_partitions`). Nothing is read at import: the keys live in the
Dagster instance and `partition_requests` keeps them in sorted order there.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

import dagster as dg

from feature_store.instruments import Instrument

DAYS = dg.DynamicPartitionsDefinition(name="trading_days")
SYMBOLS = dg.DynamicPartitionsDefinition(name="symbols")
SYMBOL_DAYS = dg.MultiPartitionsDefinition({"day": DAYS, "symbol": SYMBOLS})
UNIVERSES = dg.DynamicPartitionsDefinition(name="universes")


def symbol_day_key(day: str, symbol: str) -> dg.MultiPartitionKey:
    """The partition key of one symbol's trading day (day as YYYY-MM-DD, exchange-local)."""
    return dg.MultiPartitionKey({"day": day, "symbol": symbol})


def symbol_days(context: dg.AssetExecutionContext) -> list[tuple[dt.date, str]]:
    """(day, symbol) of every partition of this run (one, or a range in a single-run backfill), sorted."""
    keys = [SYMBOL_DAYS.get_partition_key_from_str(str(k)) for k in context.partition_keys]
    return sorted(
        (dt.date.fromisoformat(k.keys_by_dimension["day"]), k.keys_by_dimension["symbol"]) for k in keys
    )


def expected_partitions(
    stored_days: Mapping[str, list[dt.date]], instruments: Mapping[str, Instrument], today: dt.date
) -> tuple[list[str], list[str]]:
    """(days, symbols) the partitions should hold for the symbols' stored trading days.

    Each symbol contributes its exchange calendar's trading days from its first to its last stored day
    (weekends and holidays left out, a missing day shown as missing) and every day it has ticks on. A
    symbol configured with `partitions_start` (a live feed yet to record) spans from there to `today`.
    """
    days: set[dt.date] = set()
    symbols = {s for s, stored in stored_days.items() if stored}
    for symbol, instrument in instruments.items():
        stored = stored_days.get(symbol) or []
        if instrument.partitions_start is not None:
            symbols.add(symbol)
            first, last = instrument.partitions_start, max([today, *stored])
        elif stored:
            first, last = min(stored), max(stored)
        else:
            continue
        days |= set(instrument.trading_days_between(min([first, *stored]), last)) | set(stored)
    return [d.isoformat() for d in sorted(days)], sorted(symbols)


def partition_requests(
    name: str, existing: Iterable[str], wanted: Iterable[str]
) -> list[dg.AddDynamicPartitionsRequest | dg.DeleteDynamicPartitionsRequest]:
    """Requests that leave dynamic partitions `name` holding `existing` plus `wanted`, in sorted order.

    Dynamic partitions keep insertion order, which the UI and partition ranges follow; a key that sorts
    before existing ones is inserted by deleting and re-adding the keys after it (materialisations are
    stored by key and survive this).
    """
    existing = list(existing)
    merged = sorted(set(existing) | set(wanted))
    keep = 0
    while keep < len(existing) and keep < len(merged) and existing[keep] == merged[keep]:
        keep += 1
    requests: list = []
    if existing[keep:]:
        requests.append(dg.DeleteDynamicPartitionsRequest(name, existing[keep:]))
    if merged[keep:]:
        requests.append(dg.AddDynamicPartitionsRequest(name, merged[keep:]))
    return requests
