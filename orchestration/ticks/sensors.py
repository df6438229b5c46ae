"""`tick_store_partitions`: keeps the symbol, trading-day and universe partitions in step with the store."""

import datetime as dt

import dagster as dg

from feature_store.instruments import load_instruments, load_universes
from orchestration.resources import TickStoreResource
from orchestration.ticks.partitions import DAYS, SYMBOLS, UNIVERSES, expected_partitions, partition_requests


def partitions_update(instance: dg.DagsterInstance, tick_store: TickStoreResource) -> list:
    """The dynamic-partition requests that add what the store and the universes configuration hold."""
    store = tick_store.open()
    try:
        stored = {symbol: store.days(symbol) for symbol in store.symbols()}
    finally:
        store.close()
    days, symbols = expected_partitions(stored, load_instruments(), dt.datetime.now(dt.UTC).date())
    wanted = {DAYS.name: days, SYMBOLS.name: symbols, UNIVERSES.name: sorted(load_universes())}
    requests = []
    for name, keys in wanted.items():
        requests += partition_requests(name, instance.get_dynamic_partitions(name), keys)
    return requests


@dg.sensor(
    name="tick_store_partitions",
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Adds symbol and trading-day partitions for what ingest and the feed stored, and the "
    "configured universes",
)
def tick_store_partitions(context: dg.SensorEvaluationContext, tick_store: TickStoreResource):
    """Symbols and the calendar trading days their stored ticks span, as dynamic partitions."""
    requests = partitions_update(context.instance, tick_store)
    if not requests:
        return dg.SkipReason("partitions match the tick store")
    return dg.SensorResult(dynamic_partitions_requests=requests)
