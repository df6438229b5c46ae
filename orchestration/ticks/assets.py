"""The `raw_ticks` asset: symbols' trading days of canonical ticks in the tick store."""

import warnings
from collections import Counter
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
from orchestration.ticks.partitions import SYMBOL_DAYS, symbol_days
from pipelines.simulate import simulate_session

# Many symbol-days of a backfill run as one run: process start-up, not the work, dominated one run a day.
# Dagster calls the parameter beta and warns on every load of the code location; the policy is what we want.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=dg.BetaWarning)
ONE_RUN = dg.BackfillPolicy.single_run()
PLOT_POINTS_PER_DAY = 400


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


def _price_plot(prices: dict[str, list[pd.DataFrame]]) -> dg.MetadataValue:
    fig, ax = plt.subplots(figsize=(8, 2.4))
    for symbol, parts in prices.items():
        frame = pd.concat(parts)
        ax.plot(frame["ts"], frame["price"], lw=0.7, label=symbol)
    ax.set_title("last price (UTC)", fontsize=9)
    if len(prices) > 1:
        ax.legend(fontsize=7)
    return figure_md(fig)


def _schema_errors(ticks: pd.DataFrame) -> str:
    try:
        validate_ticks(ticks)
    except SchemaErrors as exc:
        return (
            f"{len(exc.failure_cases)} failure cases; first: {exc.failure_cases.head(3).to_dict('records')}"
        )
    return ""


def _table_md(rows: list[dict]) -> dg.MetadataValue:
    lines = ["| day | symbol | ticks | new | quarantined | share |", "|---|---|---:|---:|---:|---:|"]
    lines += [
        f"| {r['day']} | {r['symbol']} | {r['ticks']:,} | {r['new']:,} | {r['quarantined']:,} | {r['share']:.4f} |"
        for r in rows
    ]
    return dg.MetadataValue.md("\n".join(lines))


@dg.asset(
    partitions_def=SYMBOL_DAYS,
    backfill_policy=ONE_RUN,
    group_name="ticks",
    check_specs=[
        dg.AssetCheckSpec(
            "tick_schema", asset="raw_ticks", description="pandera TickSchema on the stored ticks"
        ),
        dg.AssetCheckSpec(
            "quarantine_share",
            asset="raw_ticks",
            description="quarantined rows stay under the configured share on every symbol-day",
        ),
    ],
)
def raw_ticks(context: dg.AssetExecutionContext, config: RawTicksConfig, tick_store: TickStoreResource):
    """Canonical ticks of symbols' trading days in the tick store, with what was quarantined."""
    rows, reasons, errors, prices = [], Counter(), {}, {}
    store = tick_store.open()
    try:
        for day, symbol in symbol_days(context):
            instrument = get_instrument(symbol)
            new = 0
            if config.source == "simulator":
                new = store.write_ticks(
                    simulate_session(instrument, day, seed=config.seed, signal=config.signal)
                )
            ticks = store.read_ticks(symbol, *instrument.session_bounds(day))
            quarantine = store.read_quarantine(symbol, day)
            reasons.update(quarantine["reason"].value_counts().to_dict())
            if error := _schema_errors(ticks):
                errors[f"{day}|{symbol}"] = error
            if len(ticks):
                step = max(1, len(ticks) // PLOT_POINTS_PER_DAY)
                prices.setdefault(symbol, []).append(ticks[["ts", "price"]].iloc[::step])
            share = len(quarantine) / max(len(ticks) + len(quarantine), 1)
            rows.append(
                {
                    "day": day,
                    "symbol": symbol,
                    "ticks": len(ticks),
                    "new": new,
                    "quarantined": len(quarantine),
                }
                | {"share": share, "session": instrument.is_trading_day(day)}
            )
    finally:
        store.close()
    return _result(context, config, rows, {str(k): int(v) for k, v in reasons.items()}, errors, prices)


def _result(context, config, rows, reasons, errors, prices) -> dg.MaterializeResult:
    ticks, quarantined = sum(r["ticks"] for r in rows), sum(r["quarantined"] for r in rows)
    over = {
        f"{r['day']}|{r['symbol']}": round(r["share"], 6)
        for r in rows
        if r["share"] > config.max_quarantine_share
    }
    context.log.info(
        f"{len(rows)} symbol-day(s): {ticks:,} ticks ({sum(r['new'] for r in rows):,} new), "
        f"{quarantined:,} quarantined {reasons}"
    )
    metadata = {
        "partitions": len(rows),
        "ticks": ticks,
        "new_ticks": sum(r["new"] for r in rows),
        "quarantined": quarantined,
        "quarantined_by_reason": reasons,
        "source": config.source,
        "days_without_session": [f"{r['day']}|{r['symbol']}" for r in rows if not r["session"]],
        "per_partition": _table_md(rows),
    }
    if prices:
        metadata["price"] = _price_plot(prices)
    worst = max((r["share"] for r in rows), default=0.0)
    return dg.MaterializeResult(
        metadata=metadata,
        check_results=[
            dg.AssetCheckResult(
                check_name="tick_schema",
                passed=not errors,
                metadata={"ticks_checked": ticks, "errors": str(errors) if errors else "none"},
            ),
            dg.AssetCheckResult(
                check_name="quarantine_share",
                passed=not over,
                metadata={
                    "worst_share": round(worst, 6),
                    "threshold": config.max_quarantine_share,
                    "over_threshold": str(over) if over else "none",
                    **reasons,
                },
            ),
        ],
    )
