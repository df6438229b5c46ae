"""Day-partitioned labels and features, and the training dataset assembled from them."""

import datetime as dt

import dagster as dg
import matplotlib.pyplot as plt
import numpy as np
from pydantic import Field

from feature_store.features import FEATURE_NAMES, compute_features
from feature_store.instruments import get_instrument
from orchestration.plots import figure_md
from orchestration.resources import OfflineStoreResource, TickStoreResource
from orchestration.ticks.assets import raw_ticks
from orchestration.ticks.partitions import TRADING_DAYS
from pipelines.dataset import build_dataset, class_balance, dataset_failures
from pipelines.labels import label_ticks

DATASET = "training_dataset"


def _day_ticks(context: dg.AssetExecutionContext, tick_store: TickStoreResource):
    """(symbol, instrument, ticks) for each stored symbol with ticks in this partition's session."""
    day = dt.date.fromisoformat(context.partition_key)
    store = tick_store.open()
    try:
        for symbol in store.symbols():
            instrument = get_instrument(symbol)
            start, end = instrument.session_bounds(day)
            ticks = store.read_ticks(symbol, start, end)
            if len(ticks):
                yield symbol, instrument, day, ticks
    finally:
        store.close()


@dg.asset(partitions_def=TRADING_DAYS, group_name="features", deps=[raw_ticks])
def tick_labels(
    context: dg.AssetExecutionContext, tick_store: TickStoreResource, offline_store: OfflineStoreResource
) -> dg.MaterializeResult:
    """15-minute (5-class) and 30-minute (3-class) labels of every tick of the day, from its future only."""
    offline, balance, rows = offline_store.store(), {}, 0
    for symbol, instrument, day, ticks in _day_ticks(context, tick_store):
        labels = label_ticks(ticks, instrument)
        offline.write("labels", symbol, day, labels)
        rows += len(labels)
        balance[symbol] = {
            "15m": class_balance(labels["label_15m"]),
            "30m": class_balance(labels["label_30m"]),
        }
        balance[symbol]["unlabeled"] = int(labels["label_15m"].isna().sum())
    return dg.MaterializeResult(metadata={"rows": rows, "class_balance": balance})


@dg.asset(partitions_def=TRADING_DAYS, group_name="features", deps=[raw_ticks])
def tick_features(
    context: dg.AssetExecutionContext, tick_store: TickStoreResource, offline_store: OfflineStoreResource
) -> dg.MaterializeResult:
    """Every catalogue feature for every tick of the day (batch engine; the service runs the online one)."""
    offline, rows, nan_share = offline_store.store(), 0, {}
    for symbol, instrument, day, ticks in _day_ticks(context, tick_store):
        features = compute_features(ticks, instrument)
        offline.write("features", symbol, day, features)
        rows += len(features)
        nan_share[symbol] = round(float(features[list(FEATURE_NAMES)].isna().to_numpy().mean()), 4)
    return dg.MaterializeResult(
        metadata={"rows": rows, "features": len(FEATURE_NAMES), "nan_share": nan_share}
    )


class DatasetConfig(dg.Config):
    symbol: str = Field(default="NIFTY", description="Symbol whose days make the dataset")
    stride: int = Field(
        default=5, description="Keep every k-th tick of a day (neighbours share their labels)"
    )


def _balance_plot(balance: dict[str, dict[str, int]]) -> dg.MetadataValue:
    fig, axes = plt.subplots(1, len(balance), figsize=(4 * len(balance), 2.6))
    for ax, (horizon, counts) in zip(np.atleast_1d(axes), balance.items(), strict=True):
        ax.bar(list(counts), list(counts.values()))
        ax.set_title(f"{horizon} labels", fontsize=9)
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    return figure_md(fig)


@dg.asset(
    group_name="features",
    deps=[tick_labels, tick_features],
    check_specs=[dg.AssetCheckSpec("dataset_schema", asset=DATASET, description="pandera dataset schema")],
)
def training_dataset(
    context: dg.AssetExecutionContext, config: DatasetConfig, offline_store: OfflineStoreResource
) -> dg.MaterializeResult:
    """Consensus-filtered rows of features with both labels, over every day that has features and labels."""
    offline = offline_store.store()
    instrument = get_instrument(config.symbol)
    days = sorted(set(offline.days("features", config.symbol)) & set(offline.days("labels", config.symbol)))
    if len(days) < 3:
        raise dg.Failure(
            f"need at least 3 days with features and labels for {config.symbol}, found {len(days)}"
        )
    dataset = build_dataset(
        offline.read("features", config.symbol, days),
        offline.read("labels", config.symbol, days),
        instrument,
        stride=config.stride,
    )
    offline.write_dataset(DATASET, dataset)
    failures = dataset_failures(dataset)
    balance = {"15m": class_balance(dataset["label_15m"]), "30m": class_balance(dataset["label_30m"])}
    context.log.info(f"dataset: {len(dataset)} rows over {len(days)} days")
    return dg.MaterializeResult(
        metadata={
            "rows": len(dataset),
            "days": [d.isoformat() for d in days],
            "class_balance": balance,
            "class_balance_plot": _balance_plot(balance),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="dataset_schema", passed=not failures, metadata={"failures": failures or "none"}
            )
        ],
    )
