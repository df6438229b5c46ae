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
from orchestration.ticks.partitions import SYMBOL_DAYS
from pipelines.dataset import build_dataset, class_balance, dataset_failures
from pipelines.labels import label_ticks

DATASET = "training_dataset"


def _partition_ticks(context: dg.AssetExecutionContext, tick_store: TickStoreResource):
    """(symbol, instrument, day, ticks) of this partition's symbol-day session from the tick store."""
    keys = context.partition_key.keys_by_dimension
    day, symbol = dt.date.fromisoformat(keys["day"]), keys["symbol"]
    instrument = get_instrument(symbol)
    store = tick_store.open()
    try:
        return symbol, instrument, day, store.read_ticks(symbol, *instrument.session_bounds(day))
    finally:
        store.close()


@dg.asset(partitions_def=SYMBOL_DAYS, group_name="features", deps=[raw_ticks])
def tick_labels(
    context: dg.AssetExecutionContext, tick_store: TickStoreResource, offline_store: OfflineStoreResource
) -> dg.MaterializeResult:
    """15-minute (5-class) and 30-minute (3-class) labels of every tick of the day, from its future only."""
    symbol, instrument, day, ticks = _partition_ticks(context, tick_store)
    if ticks.empty:  # no session that day: nothing to label, and no empty day for the dataset to count
        return dg.MaterializeResult(metadata={"rows": 0, "note": f"no ticks of {symbol} on {day}"})
    labels = label_ticks(ticks, instrument)
    offline_store.store().write("labels", symbol, day, labels)
    return dg.MaterializeResult(
        metadata={
            "rows": len(labels),
            "unlabeled": int(labels["label_15m"].isna().sum()),
            "class_balance_15m": class_balance(labels["label_15m"]),
            "class_balance_30m": class_balance(labels["label_30m"]),
        }
    )


@dg.asset(partitions_def=SYMBOL_DAYS, group_name="features", deps=[raw_ticks])
def tick_features(
    context: dg.AssetExecutionContext, tick_store: TickStoreResource, offline_store: OfflineStoreResource
) -> dg.MaterializeResult:
    """Every catalogue feature for every tick of the day (batch engine; the service runs the online one)."""
    symbol, instrument, day, ticks = _partition_ticks(context, tick_store)
    if ticks.empty:
        return dg.MaterializeResult(metadata={"rows": 0, "note": f"no ticks of {symbol} on {day}"})
    features = compute_features(ticks, instrument)
    offline_store.store().write("features", symbol, day, features)
    values = features[list(FEATURE_NAMES)].to_numpy()
    return dg.MaterializeResult(
        metadata={
            "rows": len(features),
            "features": len(FEATURE_NAMES),
            "nan_share": round(float(np.isnan(values).mean()), 4) if values.size else 0.0,
        }
    )


class DatasetConfig(dg.Config):
    symbol: str = Field(default="NIFTY", description="Symbol whose days make the dataset")
    stride: int = Field(
        default=5, description="Keep every k-th tick of a day (neighbours share their labels)"
    )
    holdout_days: int = Field(
        default=2,
        description="Last trading days held out: never seen by SHAP selection or training; promotion compares on them",
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
    if len(days) < config.holdout_days + 2:
        raise dg.Failure(
            f"need {config.holdout_days + 2} days with features and labels for {config.symbol} "
            f"(2 to train + {config.holdout_days} held out), found {len(days)}"
        )
    dataset = build_dataset(
        offline.read("features", config.symbol, days),
        offline.read("labels", config.symbol, days),
        instrument,
        stride=config.stride,
        holdout_days=config.holdout_days,
    )
    offline.write_dataset(DATASET, dataset)
    failures = dataset_failures(dataset)
    train = dataset[~dataset["holdout"]]
    balance = {"15m": class_balance(train["label_15m"]), "30m": class_balance(train["label_30m"])}
    context.log.info(f"dataset: {len(dataset)} rows over {len(days)} days")
    return dg.MaterializeResult(
        metadata={
            "rows": len(dataset),
            "training_rows": int((~dataset["holdout"]).sum()),
            "held_out_rows": int(dataset["holdout"].sum()),
            "days": [d.isoformat() for d in days],
            "holdout_days": sorted({d.isoformat() for d in dataset.loc[dataset["holdout"], "day"]}),
            "class_balance": balance,
            "class_balance_plot": _balance_plot(balance),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="dataset_schema", passed=not failures, metadata={"failures": failures or "none"}
            )
        ],
    )
