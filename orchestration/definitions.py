"""The Dagster code location: gathers each domain's definitions and the resources; no domain logic here."""

import dagster as dg

from orchestration.features.assets import tick_features, tick_labels, training_dataset
from orchestration.jobs import ticks_job, training_job
from orchestration.resources import default_resources
from orchestration.serving.live import live_predictions
from orchestration.serving.sensors import scoring_sensor
from orchestration.ticks.assets import raw_ticks
from orchestration.ticks.sensors import tick_store_partitions
from orchestration.training.assets import MODEL_ASSETS
from orchestration.training.backtest import backtest_report
from orchestration.training.folds import walk_forward_folds
from orchestration.training.selection import shap_feature_sets

defs = dg.Definitions(
    assets=[
        raw_ticks,
        tick_labels,
        tick_features,
        training_dataset,
        shap_feature_sets,
        walk_forward_folds,
        *MODEL_ASSETS,
        backtest_report,
        live_predictions,
    ],
    jobs=[ticks_job, training_job],
    sensors=[tick_store_partitions, scoring_sensor],
    resources=default_resources(),
)
