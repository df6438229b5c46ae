"""The MLflow side of the models: tracking, registration, champion promotion and loading by alias."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from feature_store.features import FeatureSet
from feature_store.instruments import DEFAULT_UNIVERSE
from pipelines.plots import confusion_figure, plt
from pipelines.tracking import tracking_uri
from pipelines.training import HORIZONS, Horizon, TrainedModel, evaluate, matrix

MODEL_15M = "direction-15m"
MODEL_30M = "direction-30m"
CHAMPION = "champion"
EXPERIMENT = "tickml-direction"


def configure(uri: str | None = None) -> MlflowClient:
    """Point MLflow at `uri` (default `tracking_uri()`), make sure the experiment exists, return a client."""
    uri = uri or tracking_uri()
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = MlflowClient(uri, uri)
    if client.get_experiment_by_name(EXPERIMENT) is None:
        artifacts = None
        if uri.startswith("sqlite:///"):  # artifacts beside the database, under mlruns/
            artifacts = (Path(uri.removeprefix("sqlite:///")).parent / "artifacts").resolve().as_uri()
        client.create_experiment(EXPERIMENT, artifact_location=artifacts)
    mlflow.set_experiment(EXPERIMENT)
    return client


def _days_tag(days: list[dt.date]) -> str:
    return ",".join(d.isoformat() for d in days)


def log_and_register(
    trained: TrainedModel,
    *,
    name: str | None = None,
    universe: str = DEFAULT_UNIVERSE,
    symbols: list[str] | None = None,
    lineage: dict[str, str] | None = None,
    selection_run_id: str | None = None,
    uri: str | None = None,
) -> str:
    """Log `trained` as an MLflow run and register it as a new version of `name` (default: the horizon's
    model name, the default universe's); returns the version number.

    The run holds params, held-out metrics, the feature set, the confusion matrix and the lineage; the
    version records its `universe` and the `symbols` it was trained on (pooled). The feature set also
    travels inside the model (MLmodel metadata) so serving reads it from there.
    """
    client = configure(uri)
    name = name or trained.horizon.model_name
    symbols_tag = ",".join(sorted(symbols or []))
    lineage = {k: str(v) for k, v in (lineage or {}).items()}
    with mlflow.start_run(run_name=f"{name}-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}") as run:
        mlflow.set_tags(
            {
                "horizon": trained.horizon.key,
                "flavor": "lightgbm",
                "universe": universe,
                "symbols": symbols_tag,
                **lineage,
            }
        )
        mlflow.log_params(
            trained.params | {"feature_set": f"{trained.feature_set.name}@v{trained.feature_set.version}"}
        )
        mlflow.log_metrics({f"holdout_{k}": v for k, v in trained.metrics.items()})
        mlflow.log_dict(trained.feature_set.to_dict(), "feature_set.json")
        mlflow.log_dict({"train": trained.train_balance}, "class_balance.json")
        if selection_run_id:  # the SHAP plot and table that chose this feature set travel with the model
            for artifact in ("shap_summary.png", "shap_kept_dropped.json"):
                mlflow.log_artifact(
                    mlflow.artifacts.download_artifacts(run_id=selection_run_id, artifact_path=artifact)
                )
            mlflow.set_tag("selection_run_id", selection_run_id)
        fig = confusion_figure(
            trained.confusion,
            trained.horizon.classes,
            f"{name} on held-out days {_days_tag(trained.holdout_days)}",
        )
        mlflow.log_figure(fig, "confusion_matrix.png")
        plt.close(fig)
        info = mlflow.lightgbm.log_model(
            trained.booster,
            name="model",
            registered_model_name=name,
            metadata={"feature_set": trained.feature_set.to_dict(), "classes": list(trained.horizon.classes)},
        )
    version = str(info.registered_model_version)
    tags = {
        "flavor": "lightgbm",
        "universe": universe,
        "symbols": symbols_tag,
        "feature_set": trained.feature_set.name,
        "feature_set_version": str(trained.feature_set.version),
        "train_days": _days_tag(trained.train_days),
        "holdout_days": _days_tag(trained.holdout_days),
        "holdout_log_loss": f"{trained.metrics['log_loss']:.6f}",
        "run_id": run.info.run_id,
        **{f"lineage.{k}": v for k, v in lineage.items()},
    }
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    return version


def horizon_of(name: str) -> Horizon:
    """The horizon of registered model `name` (`direction-15m`, or a universe's `direction-15m-<u>`)."""
    for horizon in HORIZONS.values():
        if name == horizon.model_name or name.startswith(f"{horizon.model_name}-"):
            return horizon
    raise KeyError(f"{name!r} is not a tickml direction model name")


@dataclass(frozen=True)
class LoadedModel:
    """A registered model version in memory, with the feature set and classes it was trained on."""

    name: str
    version: str
    flavor: str
    feature_set: FeatureSet
    classes: tuple[str, ...]
    run_id: str
    loaded_at: dt.datetime
    booster: lgb.Booster

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities (n, len(classes)) for rows of `X` in feature-set column order."""
        return np.asarray(self.booster.predict(np.asarray(X, dtype=np.float64)), dtype=np.float64).reshape(
            len(X), len(self.classes)
        )


def load_version(name: str, version: str, *, uri: str | None = None) -> LoadedModel:
    """Load version `version` of registered model `name` (never a glob, never 'latest')."""
    client = configure(uri)
    mv = client.get_model_version(name, version)
    uri = f"models:/{name}/{version}"
    metadata = mlflow.models.get_model_info(uri).metadata or {}
    if "feature_set" not in metadata:
        raise ValueError(f"{uri} carries no feature set in its metadata; it was not logged by tickml")
    return LoadedModel(
        name=name,
        version=str(version),
        flavor=mv.tags.get("flavor", "lightgbm"),
        feature_set=FeatureSet.from_dict(metadata["feature_set"]),
        classes=tuple(metadata["classes"]),
        run_id=mv.run_id,
        loaded_at=dt.datetime.now(dt.UTC),
        booster=mlflow.lightgbm.load_model(uri),
    )


def champion_version(name: str, *, uri: str | None = None) -> str | None:
    """The version behind `name@champion`, or None when no champion is set."""
    client = configure(uri)
    try:
        return str(client.get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException:
        return None


def load_champion(name: str, *, uri: str | None = None) -> LoadedModel:
    """Load `models:/<name>@champion`; raises LookupError saying how to get one when none is set."""
    version = champion_version(name, uri=uri)
    if version is None:
        raise LookupError(
            f"registered model {name!r} has no '{CHAMPION}' alias at {uri or tracking_uri()}; "
            "train and promote one first (e.g. `tickml demo` or materialise the model assets in Dagster)"
        )
    return load_version(name, version, uri=uri)


@dataclass(frozen=True)
class PromotionDecision:
    """Whether a challenger version took the champion alias, and the numbers behind it."""

    name: str
    challenger: str
    promoted: bool
    reason: str
    challenger_log_loss: float
    champion: str | None = None
    champion_log_loss: float | None = None

    def as_tags(self) -> dict[str, str]:
        return {
            "promotion.decision": "promoted" if self.promoted else "rejected",
            "promotion.reason": self.reason,
            "promotion.challenger_log_loss": f"{self.challenger_log_loss:.6f}",
            "promotion.champion_version": self.champion or "",
            "promotion.champion_log_loss": ""
            if self.champion_log_loss is None
            else f"{self.champion_log_loss:.6f}",
        }


def promote_if_better(
    name: str, version: str, holdout: pd.DataFrame, *, uri: str | None = None
) -> PromotionDecision:
    """Move `name@champion` to `version` only if it beats the current champion on the same held-out rows.

    Both models are scored on `holdout` (the challenger's held-out days) by log loss; the first version
    wins by default. The decision and its numbers are written as tags on the challenger version.
    """
    client = configure(uri)
    horizon = horizon_of(name)
    challenger = load_version(name, version, uri=uri)
    labels = holdout[horizon.label_column]
    ours = evaluate(
        challenger.predict_proba(matrix(holdout, challenger.feature_set)), labels, horizon.classes
    )
    current = champion_version(name, uri=uri)
    if current is None:
        decision = PromotionDecision(name, version, True, "first version: no champion yet", ours["log_loss"])
    elif current == version:
        decision = PromotionDecision(
            name, version, True, "already champion", ours["log_loss"], current, ours["log_loss"]
        )
    else:
        champ = load_version(name, current, uri=uri)
        missing = [f for f in champ.feature_set.features if f not in holdout.columns]
        if missing:
            decision = PromotionDecision(
                name,
                version,
                True,
                f"champion v{current} needs features no longer computed: {missing[:5]}",
                ours["log_loss"],
                current,
            )
        else:
            theirs = evaluate(
                champ.predict_proba(matrix(holdout, champ.feature_set)), labels, horizon.classes
            )
            better = ours["log_loss"] < theirs["log_loss"]
            verb = "beats" if better else "does not beat"
            held_days = {str(d) for d in holdout["day"].unique()}
            seen = held_days & set(
                filter(None, client.get_model_version(name, current).tags.get("train_days", "").split(","))
            )
            caveat = (
                f" (champion v{current} trained on {len(seen)} of these {len(held_days)} days: its score is "
                "in-sample, so the comparison favours it)"
                if seen
                else ""
            )
            decision = PromotionDecision(
                name,
                version,
                better,
                f"log loss {ours['log_loss']:.4f} {verb} champion v{current} {theirs['log_loss']:.4f} "
                f"on the same {len(holdout)} held-out rows{caveat}",
                ours["log_loss"],
                current,
                theirs["log_loss"],
            )
    if decision.promoted:
        client.set_registered_model_alias(name, CHAMPION, version)
    for key, value in decision.as_tags().items():
        client.set_model_version_tag(name, version, key, value)
    client.update_model_version(name, version, description=f"promotion: {decision.reason}")
    return decision


def _next_feature_set_version(client: MlflowClient, name: str, features: tuple[str, ...]) -> int:
    """The version for feature set `name` with `features`: the latest one's if identical, else one more."""
    experiment = client.get_experiment_by_name(EXPERIMENT)
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.feature_set_name = '{name}'",
        order_by=["attributes.start_time DESC"],
    )
    versions = [
        (int(r.data.tags["feature_set_version"]), r) for r in runs if "feature_set_version" in r.data.tags
    ]
    if not versions:
        return 1
    latest_version, latest = max(versions, key=lambda v: v[0])
    stored = FeatureSet.from_dict(mlflow.artifacts.load_dict(f"runs:/{latest.info.run_id}/feature_set.json"))
    return latest_version if stored.features == features else latest_version + 1


def log_selection(
    selection, *, lineage: dict[str, str] | None = None, uri: str | None = None
) -> tuple[FeatureSet, str]:
    """Log a SHAP selection as an MLflow run (summary plot, kept/dropped table, the feature set).

    Returns the pruned feature set, versioned (an identical selection keeps the latest version number),
    and the run id, so each model trained on it can carry the same plot.
    """
    from pipelines.selection import pruned_feature_set, summary_figure

    client = configure(uri)
    draft = pruned_feature_set(selection, 1)
    version = _next_feature_set_version(client, draft.name, draft.features)
    feature_set = pruned_feature_set(selection, version)
    with mlflow.start_run(
        run_name=f"shap-{selection.horizon.key}-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}"
    ) as run:
        mlflow.set_tags(
            {
                "kind": "feature_selection",
                "horizon": selection.horizon.key,
                "feature_set_name": feature_set.name,
                "feature_set_version": str(version),
                **{k: str(v) for k, v in (lineage or {}).items()},
            }
        )
        mlflow.log_params(
            {
                "candidates": selection.candidates.key,
                "k": len(feature_set.features),
                "explained_rows": len(selection.sample),
            }
        )
        mlflow.log_dict(feature_set.to_dict(), "feature_set.json")
        mlflow.log_table(selection.table(), "shap_kept_dropped.json")
        fig = summary_figure(selection)
        mlflow.log_figure(fig, "shap_summary.png")
        plt.close(fig)
    return feature_set, run.info.run_id
