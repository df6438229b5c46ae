"""Tick features: declared once per group (`groups/`), computed by one kernel in a batch and an online engine."""

from feature_store.features.batch import compute_features
from feature_store.features.definitions import FEATURE_NAMES, FEATURES, STARTER_NAMES, FeatureDef, catalogue
from feature_store.features.online import OnlineFeatures
from feature_store.features.parity import ParityReport, parity_report
from feature_store.features.sets import (
    FEATURE_SETS,
    FeatureSet,
    direction_candidates_v1,
    direction_starter_v1,
    feature_set,
    tick_features_v1,
    tick_features_v2,
)

__all__ = [
    "FEATURES",
    "FEATURE_NAMES",
    "FEATURE_SETS",
    "STARTER_NAMES",
    "FeatureDef",
    "FeatureSet",
    "OnlineFeatures",
    "ParityReport",
    "catalogue",
    "compute_features",
    "direction_candidates_v1",
    "direction_starter_v1",
    "feature_set",
    "parity_report",
    "tick_features_v1",
    "tick_features_v2",
]
