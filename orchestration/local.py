"""Running the code location's jobs in this process on the local Dagster instance ($DAGSTER_HOME).

Runs persist in the instance, so the Dagster UI shows them afterwards exactly like launched runs.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable
from pathlib import Path

import dagster as dg

from orchestration.definitions import defs
from orchestration.resources import TickStoreResource
from orchestration.ticks.partitions import DAYS, SYMBOLS, UNIVERSES, partition_requests, symbol_day_key
from orchestration.ticks.sensors import partitions_update

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}  # callers show their own progress
# The run tags of a single-run backfill over a partition range (what the UI's backfill launches)
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


def local_instance() -> dg.DagsterInstance:
    """The local Dagster instance of $DAGSTER_HOME, whose folder is created on first use."""
    Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    return dg.DagsterInstance.get()


def _apply(instance: dg.DagsterInstance, requests: list) -> None:
    for request in requests:
        if isinstance(request, dg.AddDynamicPartitionsRequest):
            instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        else:
            for key in request.partition_keys:
                instance.delete_dynamic_partition(request.partitions_def_name, key)


def sync_partitions(
    instance: dg.DagsterInstance | None = None, tick_store: TickStoreResource | None = None
) -> dict[str, int]:
    """Add the partitions the tick store and the universes call for (what the `tick_store_partitions`
    sensor does in the daemon); returns how many keys each dynamic partition set holds afterwards."""
    instance = instance or local_instance()
    tick_store = tick_store or defs.resources["tick_store"]
    _apply(instance, partitions_update(instance, tick_store))
    return {
        name: len(instance.get_dynamic_partitions(name)) for name in (DAYS.name, SYMBOLS.name, UNIVERSES.name)
    }


def add_partitions(
    instance: dg.DagsterInstance,
    *,
    days: Iterable[str] = (),
    symbols: Iterable[str] = (),
    universes: Iterable[str] = (),
) -> None:
    """Add these keys to the dynamic partitions, keeping each set sorted."""
    for name, keys in ((DAYS.name, days), (SYMBOLS.name, symbols), (UNIVERSES.name, universes)):
        _apply(instance, partition_requests(name, instance.get_dynamic_partitions(name), keys))


def run_ticks(
    symbol: str, days: list[dt.date], *, run_config: dict | None = None
) -> dg.ExecuteInProcessResult:
    """Run `ticks_job` over `symbol`'s days from the first to the last of `days` as ONE run (a single-run
    backfill of that range); the days must be partitions already (see `sync_partitions`)."""
    first, last = min(days).isoformat(), max(days).isoformat()
    return defs.resolve_job_def("ticks_job").execute_in_process(
        instance=local_instance(),
        run_config={**(run_config or {}), **QUIET},
        tags={RANGE_START: str(symbol_day_key(first, symbol)), RANGE_END: str(symbol_day_key(last, symbol))},
    )


def materialise_simulated_days(
    symbol: str, days: list[dt.date], *, seed: int, signal: float
) -> dg.ExecuteInProcessResult:
    """Run `ticks_job` once over `symbol`'s `days` with simulated raw ticks (demo and tests)."""
    add_partitions(local_instance(), days=[d.isoformat() for d in days], symbols=[symbol])
    config = {"ops": {"raw_ticks": {"config": {"source": "simulator", "seed": seed, "signal": signal}}}}
    return run_ticks(symbol, days, run_config=config)


def run_training(
    universe: str, run_config: dict | None = None
) -> tuple[dict[str, dict], dg.ExecuteInProcessResult]:
    """Run `training_job` for `universe` (dataset → SHAP feature sets → models → champions); returns per
    registered model name the candidate version and the promotion outcome, and the run's result."""
    instance = local_instance()
    add_partitions(instance, universes=[universe])
    result = defs.resolve_job_def("training_job").execute_in_process(
        instance=instance, partition_key=universe, run_config={**(run_config or {}), **QUIET}
    )
    outcomes = {}
    for prefix in ("direction_15m", "direction_30m"):
        candidate = result.output_for_node(f"{prefix}_model")
        outcomes[candidate["name"]] = {**candidate, **result.output_for_node(f"{prefix}_champion")}
    return outcomes, result
