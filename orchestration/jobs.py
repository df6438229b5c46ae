"""Jobs people launch: a trading day's ticks → labels → features, and dataset → models → champions."""

import dagster as dg

from orchestration.ticks.partitions import SYMBOL_DAYS

ticks_job = dg.define_asset_job(
    "ticks_job",
    selection=dg.AssetSelection.groups("ticks", "features") - dg.AssetSelection.assets("training_dataset"),
    partitions_def=SYMBOL_DAYS,
    description="One symbol-day: raw ticks into the store, then their labels and features",
)
training_job = dg.define_asset_job(
    "training_job",
    selection=dg.AssetSelection.assets("training_dataset") | dg.AssetSelection.groups("training"),
    description="Training dataset over all days, both direction models, and champion promotion",
)
