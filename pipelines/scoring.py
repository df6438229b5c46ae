"""A universe's two champions as one scorer: feature rows in, both models' probabilities, the combined
signal, its confidence and the horizons' agreement out.

The live service (`serving.state`) and the backtest (`pipelines.backtest`) both score through
`ChampionPair.score` on rows of the same online features (`OnlineFeatures`), so a backtest and a live
session over the same ticks make the same decisions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from mlflow.exceptions import MlflowException

from feature_store.schema import LABELS_15M, LABELS_30M
from pipelines import registry
from pipelines.registry import LoadedModel
from pipelines.signals import combine


@dataclass(frozen=True)
class Scores:
    """Per row: probabilities of both horizons (`LABELS_15M` / `LABELS_30M` order) and the combined signal."""

    p15: np.ndarray  # (n, 5)
    p30: np.ndarray  # (n, 3)
    signal: np.ndarray  # (n,) object: "UP", "DOWN" or "FLAT"
    confidence: np.ndarray  # (n,) in [0, 1]
    agree: np.ndarray  # (n,) bool


class ChampionPair:
    """The 15- and 30-minute models of one universe, each reading its own feature-set columns."""

    def __init__(self, model_15m: LoadedModel, model_30m: LoadedModel) -> None:
        for model, labels in ((model_15m, LABELS_15M), (model_30m, LABELS_30M)):
            if tuple(model.classes) != labels:
                raise ValueError(f"{model.name} v{model.version} predicts {model.classes}, expected {labels}")
        self.model_15m, self.model_30m = model_15m, model_30m
        # The online engine computes every feature in one kernel step (the union of both sets);
        # each model then takes its own columns in its own feature-set order.
        self._columns_15m = np.asarray(model_15m.feature_set.indices, dtype=np.intp)
        self._columns_30m = np.asarray(model_30m.feature_set.indices, dtype=np.intp)

    @property
    def versions(self) -> dict[str, str]:
        """Registered model name -> version, of both horizons."""
        return {self.model_15m.name: self.model_15m.version, self.model_30m.name: self.model_30m.version}

    def score(self, X: np.ndarray) -> Scores:
        """Scores of feature rows `X` (n, len(FEATURE_NAMES)) in catalogue column order."""
        p15 = self.model_15m.predict_proba(X[:, self._columns_15m])
        p30 = self.model_30m.predict_proba(X[:, self._columns_30m])
        signal, confidence, agree = combine(p15, p30)
        return Scores(p15, p30, signal, confidence, agree)


def _load_ref(ref: str, uri: str | None = None) -> LoadedModel:
    """`NAME` or `NAME@champion` (vetted by the gate), `NAME@ALIAS`, or `NAME/VERSION`."""
    if "/" in ref:
        name, version = ref.split("/", 1)
        return registry.load_version(name, version, uri=uri)
    name, _, alias = ref.partition("@")
    if alias in ("", registry.CHAMPION):
        return registry.load_champion(name, uri=uri)
    client = registry.configure(uri)
    try:
        version = client.get_model_version_by_alias(name, alias).version
    except MlflowException:
        raise LookupError(f"registered model {name!r} has no alias {alias!r}") from None
    return registry.load_version(name, str(version), uri=uri)


def load_pair(refs: list[str], *, uri: str | None = None) -> ChampionPair:
    """The two models named by `refs` (one or two of `NAME[@ALIAS]` / `NAME/VERSION`, see `_load_ref`).

    One reference brings its partner of the other horizon in the same universe at the same alias (at
    `champion` when the reference is a version).
    """
    if not 1 <= len(refs) <= 2:
        raise ValueError(f"give one or two models, got {len(refs)}")
    if len(refs) == 1:
        ref = refs[0]
        name = ref.split("/", 1)[0].partition("@")[0]
        alias = ref.partition("@")[2] if "@" in ref else registry.CHAMPION
        horizon = registry.horizon_of(name)
        other = registry.MODEL_30M if horizon.model_name == registry.MODEL_15M else registry.MODEL_15M
        refs = [ref, other + name[len(horizon.model_name) :] + f"@{alias}"]
    models = {registry.horizon_of(m.name).model_name: m for m in (_load_ref(r, uri) for r in refs)}
    if set(models) != {registry.MODEL_15M, registry.MODEL_30M}:
        raise ValueError(f"need one 15-minute and one 30-minute model, got {refs}")
    return ChampionPair(models[registry.MODEL_15M], models[registry.MODEL_30M])
