"""The `raw_ticks` asset: one trading day of canonical ticks per symbol in the tick store."""

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
from orchestration.ticks.partitions import TRADING_DAYS
from pipelines.simulate import simulate_session


class RawTicksConfig(dg.Config):
    source: Literal["simulator", "store"] = Field(
        default="simulator",
        description="'simulator' writes a seeded simulated session; 'store' takes ticks already ingested",
    )
    symbols: list[str] = Field(default=["NIFTY"], description="Symbols (see instruments.yaml)")
    seed: int = Field(default=7, description="Simulator seed")
    signal: float = Field(default=1.0, description="Simulator signal: 0 is a pure random walk")


def _price_plot(frames: dict[str, pd.DataFrame]) -> dg.MetadataValue:
    fig, axes = plt.subplots(len(frames), 1, figsize=(8, 2.2 * len(frames)), squeeze=False)
    for ax, (symbol, ticks) in zip(axes[:, 0], frames.items(), strict=True):
        step = max(1, len(ticks) // 2000)
        ax.plot(ticks["ts"].iloc[::step], ticks["price"].iloc[::step], lw=0.7)
        ax.set_title(f"{symbol}: last price (UTC)", fontsize=9)
    return figure_md(fig)


@dg.asset(
    partitions_def=TRADING_DAYS,
    group_name="ticks",
    check_specs=[dg.AssetCheckSpec("tick_schema", asset="raw_ticks", description="pandera TickSchema")],
)
def raw_ticks(context: dg.AssetExecutionContext, config: RawTicksConfig, tick_store: TickStoreResource):
    """Canonical ticks of one trading day for each configured symbol, held in the tick store."""
    day = dt.date.fromisoformat(context.partition_key)
    store = tick_store.open()
    frames, new, errors = {}, 0, []
    try:
        for symbol in config.symbols:
            instrument = get_instrument(symbol)
            if config.source == "simulator":
                new += store.write_ticks(
                    simulate_session(instrument, day, seed=config.seed, signal=config.signal)
                )
            start, end = instrument.session_bounds(day)
            frames[symbol] = store.read_ticks(symbol, start, end)
            try:
                validate_ticks(frames[symbol])
            except SchemaErrors as exc:
                errors.append(
                    f"{symbol}: {len(exc.failure_cases)} failure cases; first: "
                    f"{exc.failure_cases.head(3).to_dict('records')}"
                )
    finally:
        store.close()
    counts = {s: len(f) for s, f in frames.items()}
    total = sum(counts.values())
    context.log.info(f"{day}: {total} ticks ({new} new) for {counts}")
    metadata = {
        "ticks": total,
        "new_ticks": new,
        "ticks_by_symbol": counts,
        "source": config.source,
    }
    if total:
        metadata["price"] = _price_plot({s: f for s, f in frames.items() if len(f)})
    return dg.MaterializeResult(
        metadata=metadata,
        check_results=[
            dg.AssetCheckResult(
                check_name="tick_schema",
                passed=not errors,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={"ticks_checked": total, "errors": "; ".join(errors) or "none"},
            )
        ],
    )
