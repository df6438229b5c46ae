"""Jobs people launch: symbol-days' ticks → labels → features, and a universe's dataset → models → champions."""

import dagster as dg

from orchestration.ticks.partitions import SYMBOL_DAYS, UNIVERSES

ticks_job = dg.define_asset_job(
    "ticks_job",
    selection=dg.AssetSelection.groups("ticks", "features") - dg.AssetSelection.assets("training_dataset"),
    partitions_def=SYMBOL_DAYS,
    description="Symbol-days (one, or a range as one run): raw ticks in the store, then their labels and "
    "features",
)
training_job = dg.define_asset_job(
    "training_job",
    selection=dg.AssetSelection.assets("training_dataset") | dg.AssetSelection.groups("training"),
    partitions_def=UNIVERSES,
    description="A universe's training dataset, its SHAP feature sets, both direction models and champion "
    "promotion under the universe's model names",
)
