"""Tick partitions: one per (trading day, symbol), so one symbol-day can be re-materialised alone."""

import dagster as dg

from feature_store.instruments import load_instruments

DAYS = dg.DailyPartitionsDefinition(start_date="2026-01-01", timezone="UTC", end_offset=1)
# Symbols come from the instruments configuration (shipped defaults + the user's file) at load time.
SYMBOLS = dg.StaticPartitionsDefinition(sorted(load_instruments()))
SYMBOL_DAYS = dg.MultiPartitionsDefinition({"day": DAYS, "symbol": SYMBOLS})


def symbol_day_key(day: str, symbol: str) -> dg.MultiPartitionKey:
    """The partition key of one symbol's trading day (day as YYYY-MM-DD, exchange-local)."""
    return dg.MultiPartitionKey({"day": day, "symbol": symbol})
