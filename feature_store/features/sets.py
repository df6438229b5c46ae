"""Named, versioned feature sets: the ordered feature names a model is trained and served on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from feature_store.features.definitions import FEATURE_NAMES, FEATURES_BY_NAME, SESSION, STARTER_NAMES, TIME


@dataclass(frozen=True)
class FeatureSet:
    """An ordered selection of `FEATURE_NAMES` with a name and a version; logged with every model.

    Every name must be a feature this code computes, so a model never silently scores on a
    column that does not exist.
    """

    name: str
    version: int
    features: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"feature set name must be an identifier, got {self.name!r}")
        if isinstance(self.version, bool) or not isinstance(self.version, int) or self.version < 1:
            raise ValueError(f"feature set {self.name}: version must be an int >= 1, got {self.version!r}")
        object.__setattr__(self, "features", tuple(self.features))
        if not self.features:
            raise ValueError(f"feature set {self.name} v{self.version} is empty")
        if len(set(self.features)) != len(self.features):
            raise ValueError(f"feature set {self.name} v{self.version} names a feature twice")
        unknown = [f for f in self.features if f not in FEATURE_NAMES]
        if unknown:
            raise ValueError(f"feature set {self.name} v{self.version} names unknown features {unknown}")

    @property
    def key(self) -> str:
        """`name_vN`, e.g. `tick_features_v1`."""
        return f"{self.name}_v{self.version}"

    @property
    def indices(self) -> tuple[int, ...]:
        """Positions of the set's features in `FEATURE_NAMES` (to pick columns of an engine's output)."""
        return tuple(FEATURE_NAMES.index(f) for f in self.features)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (how the set is logged with a model in MLflow)."""
        return {"name": self.name, "version": self.version, "features": list(self.features)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureSet:
        """The inverse of `to_dict`; raises ValueError naming a missing or unexpected key."""
        expected = {"name", "version", "features"}
        if set(data) != expected:
            raise ValueError(
                f"feature set dict must have exactly the keys {sorted(expected)}, got {sorted(data)}"
            )
        return cls(name=data["name"], version=data["version"], features=tuple(data["features"]))


# The walking skeleton's 25 features, in their original order: models trained on them keep working.
tick_features_v1 = FeatureSet("tick_features", 1, STARTER_NAMES)
# The full candidate catalogue (every group), the input of SHAP pruning.
tick_features_v2 = FeatureSet("tick_features", 2, FEATURE_NAMES)

# Session-path and clock features (VWAP deviation, range position, session volume, time of day) let
# trees memorise each training day's path when there are only a handful of days: on the demo's ten
# simulated sessions they raise held-out log loss above the class prior. The direction models start
# from the microstructure groups; SHAP pruning on out-of-sample days will decide what returns.
direction_starter_v1 = FeatureSet(
    "direction_starter",
    1,
    tuple(name for name in STARTER_NAMES if FEATURES_BY_NAME[name].group not in (SESSION, TIME)),
)

# The SHAP candidates of the direction models: the whole catalogue but those same session-path and clock
# groups (see above); with months of real sessions instead of ten simulated ones, select from v2 instead.
direction_candidates_v1 = FeatureSet(
    "direction_candidates",
    1,
    tuple(name for name in FEATURE_NAMES if FEATURES_BY_NAME[name].group not in (SESSION, TIME)),
)

FEATURE_SETS: dict[str, FeatureSet] = {
    s.key: s for s in (tick_features_v1, tick_features_v2, direction_starter_v1, direction_candidates_v1)
}


def feature_set(key: str) -> FeatureSet:
    """The feature set named `key` (e.g. `direction_starter_v1`); KeyError lists the known ones."""
    if key not in FEATURE_SETS:
        raise KeyError(f"unknown feature set {key!r}; known: {sorted(FEATURE_SETS)}")
    return FEATURE_SETS[key]
