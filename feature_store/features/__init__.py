"""Tick features: declared once (`definitions`), computed by one kernel in a batch and an online engine."""

from feature_store.features.batch import compute_features
from feature_store.features.definitions import FEATURE_NAMES, FEATURES, FeatureDef
from feature_store.features.online import OnlineFeatures
from feature_store.features.sets import (
    FEATURE_SETS,
    FeatureSet,
    direction_starter_v1,
    feature_set,
    tick_features_v1,
)

__all__ = [
    "FEATURES",
    "FEATURE_NAMES",
    "FEATURE_SETS",
    "FeatureDef",
    "FeatureSet",
    "OnlineFeatures",
    "compute_features",
    "direction_starter_v1",
    "feature_set",
    "tick_features_v1",
]
