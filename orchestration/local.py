"""Running the code location's jobs in this process on the local Dagster instance ($DAGSTER_HOME).

Runs persist in the instance, so the Dagster UI shows them afterwards exactly like launched runs.
"""

import datetime as dt
from collections.abc import Iterable

import dagster as dg

from orchestration.definitions import defs
from orchestration.ticks.partitions import symbol_day_key

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}  # callers show their own progress


def materialise_simulated_days(
    symbol: str, days: Iterable[dt.date], *, seed: int, signal: float
) -> Iterable[dt.date]:
    """Run `ticks_job` for each symbol-day with simulated raw ticks; yields each day once it is done."""
    instance = dg.DagsterInstance.get()
    job = defs.resolve_job_def("ticks_job")
    config = {
        "ops": {"raw_ticks": {"config": {"source": "simulator", "seed": seed, "signal": signal}}},
        **QUIET,
    }
    for day in days:
        job.execute_in_process(
            partition_key=symbol_day_key(day.isoformat(), symbol), instance=instance, run_config=config
        )
        yield day


def run_training() -> dict[str, dict]:
    """Run `training_job` (dataset → SHAP feature sets → models → champions); per registered model name,
    the candidate version and the promotion outcome."""
    result = defs.resolve_job_def("training_job").execute_in_process(
        instance=dg.DagsterInstance.get(), run_config=QUIET
    )
    outcomes = {}
    for prefix in ("direction_15m", "direction_30m"):
        outcomes[prefix.replace("_", "-")] = {
            **result.output_for_node(f"{prefix}_model"),
            **result.output_for_node(f"{prefix}_champion"),
        }
    return outcomes
