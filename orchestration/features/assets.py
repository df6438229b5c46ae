"""Labels and features per symbol-day, and the training dataset of a universe assembled from them."""

from collections import Counter

import dagster as dg
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from pydantic import Field

from feature_store.features import FEATURE_NAMES, compute_features
from feature_store.instruments import get_instrument, get_universe
from orchestration.plots import figure_md
from orchestration.resources import OfflineStoreResource, TickStoreResource
from orchestration.ticks.assets import ONE_RUN, raw_ticks
from orchestration.ticks.partitions import SYMBOL_DAYS, UNIVERSES, symbol_days
from pipelines.dataset import build_dataset, class_balance, dataset_failures
from pipelines.labels import label_ticks

DATASET = "training_dataset"
DATASET_IO = "dataset_io_manager"


def _sessions(context: dg.AssetExecutionContext, tick_store: TickStoreResource):
    """(symbol, instrument, day, ticks) of each symbol-day session of this run, from the tick store."""
    store = tick_store.open()
    try:
        for day, symbol in symbol_days(context):
            instrument = get_instrument(symbol)
            yield symbol, instrument, day, store.read_ticks(symbol, *instrument.session_bounds(day))
    finally:
        store.close()


@dg.asset(partitions_def=SYMBOL_DAYS, backfill_policy=ONE_RUN, group_name="features", deps=[raw_ticks])
def tick_labels(
    context: dg.AssetExecutionContext, tick_store: TickStoreResource, offline_store: OfflineStoreResource
) -> dg.MaterializeResult:
    """15-minute (5-class) and 30-minute (3-class) labels of every tick of each day, from its future only."""
    offline, rows, unlabeled, empty = offline_store.store(), 0, 0, []
    balance = {"15m": Counter(), "30m": Counter()}
    for symbol, instrument, day, ticks in _sessions(context, tick_store):
        if ticks.empty:  # no session that day: nothing to label, and no empty day for the dataset to count
            empty.append(f"{day}|{symbol}")
            continue
        labels = label_ticks(ticks, instrument)
        offline.write("labels", symbol, day, labels)
        rows += len(labels)
        unlabeled += int(labels["label_15m"].isna().sum())
        for horizon, counts in balance.items():
            counts.update(class_balance(labels[f"label_{horizon}"]))
    return dg.MaterializeResult(
        metadata={
            "rows": rows,
            "unlabeled": unlabeled,
            "days_without_ticks": empty,
            **{f"class_balance_{h}": dict(c.most_common()) for h, c in balance.items()},
        }
    )


@dg.asset(partitions_def=SYMBOL_DAYS, backfill_policy=ONE_RUN, group_name="features", deps=[raw_ticks])
def tick_features(
    context: dg.AssetExecutionContext, tick_store: TickStoreResource, offline_store: OfflineStoreResource
) -> dg.MaterializeResult:
    """Every catalogue feature for every tick of each day (batch engine; the service runs the online one)."""
    offline, rows, nans, empty = offline_store.store(), 0, 0, []
    for symbol, instrument, day, ticks in _sessions(context, tick_store):
        if ticks.empty:
            empty.append(f"{day}|{symbol}")
            continue
        features = compute_features(ticks, instrument)
        offline.write("features", symbol, day, features)
        rows += len(features)
        nans += int(np.isnan(features[list(FEATURE_NAMES)].to_numpy()).sum())
    return dg.MaterializeResult(
        metadata={
            "rows": rows,
            "features": len(FEATURE_NAMES),
            "nan_share": round(nans / (rows * len(FEATURE_NAMES)), 4) if rows else 0.0,
            "days_without_ticks": empty,
        }
    )


class DatasetConfig(dg.Config):
    stride: int = Field(
        default=5, description="Keep every k-th tick of a day (neighbours share their labels)"
    )
    holdout_days: int = Field(
        default=2,
        description="Last trading days of each symbol held out: never seen by SHAP selection or training; "
        "promotion compares on them",
    )


def _balance_plot(balance: dict[str, dict[str, int]]) -> dg.MetadataValue:
    fig, axes = plt.subplots(1, len(balance), figsize=(4 * len(balance), 2.6))
    for ax, (horizon, counts) in zip(np.atleast_1d(axes), balance.items(), strict=True):
        ax.bar(list(counts), list(counts.values()))
        ax.set_title(f"{horizon} labels", fontsize=9)
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    return figure_md(fig)


@dg.asset(
    partitions_def=UNIVERSES,
    group_name="features",
    io_manager_key=DATASET_IO,
    # every symbol-day feeds the universe that holds its symbol: the graph links them, the metadata lists them
    deps=[dg.AssetDep(a, partition_mapping=dg.AllPartitionMapping()) for a in (tick_labels, tick_features)],
    check_specs=[dg.AssetCheckSpec("dataset_schema", asset=DATASET, description="pandera dataset schema")],
)
def training_dataset(
    context: dg.AssetExecutionContext, config: DatasetConfig, offline_store: OfflineStoreResource
):
    """A universe's rows of features with both labels over every day of its symbols with features and labels:
    consensus rows of the training days, every labelled tick of each symbol's last days (held out)."""
    universe = get_universe(context.partition_key)
    offline, parts, used = offline_store.store(), [], []
    for symbol in universe.symbols:
        days = sorted(set(offline.days("features", symbol)) & set(offline.days("labels", symbol)))
        if len(days) < config.holdout_days + 2:
            raise dg.Failure(
                f"universe {universe.name}: need {config.holdout_days + 2} days with features and labels for "
                f"{symbol} (2 to train + {config.holdout_days} held out), found {len(days)}; materialise "
                f"ticks_job for {symbol}'s days first (`tickml train --symbols {symbol}` does it)"
            )
        parts.append(
            build_dataset(
                offline.read("features", symbol, days),
                offline.read("labels", symbol, days),
                get_instrument(symbol),
                stride=config.stride,
                holdout_days=config.holdout_days,
            )
        )
        used += [f"{d.isoformat()}|{symbol}" for d in days]
    dataset = pd.concat(parts, ignore_index=True)
    failures = dataset_failures(dataset)
    train = dataset[~dataset["holdout"]]
    balance = {"15m": class_balance(train["label_15m"]), "30m": class_balance(train["label_30m"])}
    context.log.info(f"{universe.name}: {len(dataset)} rows over {len(used)} symbol-days")
    yield dg.Output(
        dataset,
        metadata={
            "universe": universe.name,
            "symbols": list(universe.symbols),
            "rows": len(dataset),
            "training_rows": len(train),
            "held_out_rows": int(dataset["holdout"].sum()),
            "partitions": used,
            "holdout_days": sorted({d.isoformat() for d in dataset.loc[dataset["holdout"], "day"]}),
            "class_balance": balance,
            "class_balance_plot": _balance_plot(balance),
        },
    )
    yield dg.AssetCheckResult(
        check_name="dataset_schema", passed=not failures, metadata={"failures": failures or "none"}
    )
