"""The `raw_ticks` asset: one symbol's trading day of canonical ticks in the tick store."""

import datetime as dt
from typing import Literal

import dagster as dg
import matplotlib.pyplot as plt
import pandas as pd
from pandera.errors import SchemaErrors
from pydantic import Field

from feature_store.instruments import get_instrument
from feature_store.schema import validate_ticks
from orchestration.plots import figure_md
from orchestration.resources import TickStoreResource
from orchestration.ticks.partitions import SYMBOL_DAYS
from pipelines.simulate import simulate_session


class RawTicksConfig(dg.Config):
    source: Literal["store", "simulator"] = Field(
        default="store",
        description="'store' checks ticks already ingested (`tickml ingest`, `tickml feed`); 'simulator' "
        "first writes a seeded simulated session into the store (demo and tests only: never into real data)",
    )
    seed: int = Field(default=7, description="Simulator seed")
    signal: float = Field(default=1.0, description="Simulator signal: 0 is a pure random walk")
    max_quarantine_share: float = Field(
        default=0.05, description="The quarantine check fails above this share of quarantined source rows"
    )


def _price_plot(symbol: str, ticks: pd.DataFrame) -> dg.MetadataValue:
    fig, ax = plt.subplots(figsize=(8, 2.4))
    step = max(1, len(ticks) // 2000)
    ax.plot(ticks["ts"].iloc[::step], ticks["price"].iloc[::step], lw=0.7)
    ax.set_title(f"{symbol}: last price (UTC)", fontsize=9)
    return figure_md(fig)


def _schema_errors(ticks: pd.DataFrame) -> str:
    try:
        validate_ticks(ticks)
    except SchemaErrors as exc:
        return (
            f"{len(exc.failure_cases)} failure cases; first: {exc.failure_cases.head(3).to_dict('records')}"
        )
    return ""


@dg.asset(
    partitions_def=SYMBOL_DAYS,
    group_name="ticks",
    check_specs=[
        dg.AssetCheckSpec(
            "tick_schema", asset="raw_ticks", description="pandera TickSchema on the stored ticks"
        ),
        dg.AssetCheckSpec(
            "quarantine_share",
            asset="raw_ticks",
            description="quarantined rows stay under the configured share",
        ),
    ],
)
def raw_ticks(context: dg.AssetExecutionContext, config: RawTicksConfig, tick_store: TickStoreResource):
    """Canonical ticks of one symbol's trading day in the tick store, with what was quarantined."""
    keys = context.partition_key.keys_by_dimension
    day, symbol = dt.date.fromisoformat(keys["day"]), keys["symbol"]
    instrument = get_instrument(symbol)
    store = tick_store.open()
    try:
        new = 0
        if config.source == "simulator":
            new = store.write_ticks(simulate_session(instrument, day, seed=config.seed, signal=config.signal))
        ticks = store.read_ticks(symbol, *instrument.session_bounds(day))
        quarantine = store.read_quarantine(symbol, day)
    finally:
        store.close()
    reasons = {str(k): int(v) for k, v in quarantine["reason"].value_counts().items()}
    share = len(quarantine) / max(len(ticks) + len(quarantine), 1)
    errors = _schema_errors(ticks)
    context.log.info(
        f"{symbol} {day}: {len(ticks)} ticks ({new} new), {len(quarantine)} quarantined {reasons}"
    )
    metadata = {
        "ticks": len(ticks),
        "new_ticks": new,
        "quarantined": len(quarantine),
        "quarantined_by_reason": reasons,
        "source": config.source,
        "trading_day": "yes" if instrument.is_trading_day(day) else f"no session for {instrument.venue}",
    }
    if len(ticks):
        metadata["price"] = _price_plot(symbol, ticks)
    return dg.MaterializeResult(
        metadata=metadata,
        check_results=[
            dg.AssetCheckResult(
                check_name="tick_schema",
                passed=not errors,
                metadata={"ticks_checked": len(ticks), "errors": errors or "none"},
            ),
            dg.AssetCheckResult(
                check_name="quarantine_share",
                passed=share <= config.max_quarantine_share,
                metadata={"share": round(share, 6), "threshold": config.max_quarantine_share, **reasons},
            ),
        ],
    )
