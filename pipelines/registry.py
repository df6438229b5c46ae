"""The MLflow side of the models: tracking, registration, champion promotion and loading by alias."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import yaml
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from feature_store.features import FeatureSet
from feature_store.instruments import DEFAULT_UNIVERSE
from pipelines import gate, model_files
from pipelines.families import get_family
from pipelines.plots import block_differences_figure, confusion_figure, plt, reliability_figure
from pipelines.tracking import tracking_uri
from pipelines.training import HORIZONS, Horizon, TrainedModel, evaluate, matrix, prior_losses, row_losses

MODEL_15M = "direction-15m"
MODEL_30M = "direction-30m"
CHAMPION = "champion"
EXPERIMENT = "tickml-direction"
PASSED = "passed"  # the `gate.decision` tag of a version that passed the promotion gate
HISTORY = "champion_history."  # registered-model tags, one per move of the champion alias


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


def start_challenge_run(name: str, trained_horizon: Horizon, *, uri: str | None = None):
    """Open the MLflow run a challenge logs its trials under (nested) and its candidate version into."""
    configure(uri)
    return mlflow.start_run(
        run_name=f"{name}-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}",
        tags={"kind": "challenge", "horizon": trained_horizon.key},
    )


# The MLflow flavor of each model family: its own file format (LightGBM text, CatBoost .cbm), never pickle
_FLAVORS = {"lightgbm": mlflow.lightgbm, "catboost": mlflow.catboost}


def _log_model(trained: TrainedModel, name: str):
    metadata = {"feature_set": trained.feature_set.to_dict(), "classes": list(trained.horizon.classes)}
    if trained.flavor not in _FLAVORS:
        raise ValueError(f"cannot log a model of flavor {trained.flavor!r}")
    flavor = _FLAVORS[trained.flavor]
    # The flavor's own pinned requirement, stated rather than inferred: MLflow's inference reloads the saved
    # model in a subprocess to see what it imports, about 7 s per version here, and finds the same pin.
    return flavor.log_model(
        trained.model,
        name="model",
        registered_model_name=name,
        metadata=metadata,
        pip_requirements=flavor.get_default_pip_requirements(),
    )


def log_and_register(
    trained: TrainedModel,
    *,
    name: str | None = None,
    universe: str = DEFAULT_UNIVERSE,
    symbols: list[str] | None = None,
    lineage: dict[str, str] | None = None,
    selection_run_id: str | None = None,
    run_id: str | None = None,
    uri: str | None = None,
) -> str:
    """Log `trained` as an MLflow run (or into the challenge run `run_id`) and register it as a new
    version of `name` (default: the horizon's model name, the default universe's); returns the version.

    The run holds params, held-out metrics, the feature set, the confusion matrix, the challenge that
    chose the configuration and the lineage; the version's tags record flavor, universe, symbols,
    feature set, days, the training class prior, and the challenge's per-fold and mean scores. The
    feature set also travels inside the model (MLmodel metadata) so serving reads it from there.
    """
    client = configure(uri)
    name = name or trained.horizon.model_name
    symbols_tag = ",".join(sorted(symbols or []))
    lineage = {k: str(v) for k, v in (lineage or {}).items()}
    challenge = trained.challenge or {}
    run = (
        mlflow.start_run(run_id=run_id)
        if run_id
        else mlflow.start_run(run_name=f"{name}-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}")
    )
    with run:
        mlflow.set_tags(
            {
                "horizon": trained.horizon.key,
                "flavor": trained.flavor,
                "universe": universe,
                "symbols": symbols_tag,
                **lineage,
            }
        )
        mlflow.log_params(
            {k: v for k, v in trained.params.items()}
            | {
                "flavor": trained.flavor,
                "feature_set": f"{trained.feature_set.name}@v{trained.feature_set.version}",
            }
        )
        mlflow.log_metrics({f"holdout_{k}": v for k, v in trained.metrics.items()})
        mlflow.log_dict(trained.feature_set.to_dict(), "feature_set.json")
        mlflow.log_dict({"train": trained.train_balance}, "class_balance.json")
        if challenge:
            mlflow.log_dict(challenge, "challenge.json")
            for family, result in challenge["families"].items():
                mlflow.log_metric(f"walk_forward_{family}_mean_log_loss", result["mean_log_loss"])
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
        info = _log_model(trained, name)
        active = mlflow.active_run().info.run_id
    version = str(info.registered_model_version)
    with model_files.downloaded(
        client.get_model_version_download_uri(name, version), uri=client.tracking_uri
    ) as folder:
        model_digest = model_files.digest(folder, trained.flavor)
    tags = {
        model_files.MODEL_DIGEST_TAG: model_digest,
        "flavor": trained.flavor,
        "universe": universe,
        "symbols": symbols_tag,
        "feature_set": trained.feature_set.name,
        "feature_set_version": str(trained.feature_set.version),
        "train_days": _days_tag(trained.train_days),
        "holdout_days": _days_tag(trained.holdout_days),
        "holdout_log_loss": f"{trained.metrics['log_loss']:.6f}",
        "params": json.dumps(trained.params, sort_keys=True, default=str),
        "prior": json.dumps([round(float(p), 8) for p in trained.prior]) if trained.prior is not None else "",
        "run_id": active,
        **{f"lineage.{k}": v for k, v in lineage.items()},
    }
    if challenge:
        best = challenge["families"][challenge["winner"]]
        tags |= {
            "challenge.winner": challenge["winner"],
            "challenge.rows": challenge["rows"],
            "challenge.trials": str(sum(f["trials"] for f in challenge["families"].values())),
            "challenge.fold_log_loss": ",".join(f"{x:.6f}" for x in best["fold_log_loss"]),
            "challenge.mean_log_loss": f"{best['mean_log_loss']:.6f}",
            "challenge.prior_fold_log_loss": ",".join(f"{x:.6f}" for x in challenge["prior_fold_log_loss"]),
            "challenge.prior_mean_log_loss": f"{challenge['prior_mean_log_loss']:.6f}",
            "challenge.folds": "; ".join(
                f"fold {f['fold']}: train {f['train_days'][0]}..{f['train_days'][-1]}, test "
                + ",".join(f["test_days"])
                for f in challenge["folds"]
            ),
            **{
                f"challenge.{family}.mean_log_loss": f"{r['mean_log_loss']:.6f}"
                for family, r in challenge["families"].items()
            },
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
    model: Any
    tags: dict[str, str]

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities (n, len(classes)) for rows of `X` in feature-set column order."""
        return (
            get_family(self.flavor)
            .predict_proba(self.model, np.asarray(X, dtype=np.float64))
            .reshape(len(X), len(self.classes))
        )


def read_client(uri: str | None = None) -> MlflowClient:
    """A client of the registry at `uri` (default `tracking_uri()`) that creates nothing: no experiment, no
    database file (a SQLite registry that does not exist is a LookupError), no change to MLflow's globals."""
    uri = uri or tracking_uri()
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        raise LookupError(f"no MLflow registry at {uri}: train first (`tickml train` or `tickml demo`)")
    return MlflowClient(uri, uri)


def load_version(
    name: str, version: str, *, uri: str | None = None, client: MlflowClient | None = None
) -> LoadedModel:
    """Load version `version` of registered model `name` (never a glob, never 'latest') from its flavor's
    native file (LightGBM text model, CatBoost .cbm), never through pickle, once its files match the
    digest recorded at registration; raises `model_files.UnsafeModel` otherwise."""
    uri = uri or tracking_uri()
    client = client or read_client(uri)
    mv = client.get_model_version(name, version)
    where = f"models:/{name}/{version}"
    flavor = mv.tags.get("flavor", "")
    recorded = mv.tags.get(model_files.MODEL_DIGEST_TAG)
    with model_files.downloaded(client.get_model_version_download_uri(name, version), uri=uri) as folder:
        try:
            if not recorded:
                raise model_files.UnsafeModel(
                    f"it records no model digest (tag {model_files.MODEL_DIGEST_TAG!r}); tickml records one "
                    "when it registers a version: retrain (`tickml train`)"
                )
            actual = model_files.digest(folder, flavor)
            if actual != recorded:
                raise model_files.UnsafeModel(
                    f"its files changed since registration (sha256 {actual[:12]}…, recorded {recorded[:12]}…)"
                )
            metadata = (yaml.safe_load((folder / "MLmodel").read_text()) or {}).get("metadata") or {}
            if "feature_set" not in metadata:
                raise model_files.UnsafeModel(
                    "it carries no feature set in its metadata: not logged by tickml"
                )
            model = model_files.load_native(folder, flavor)
        except model_files.UnsafeModel as exc:
            raise model_files.UnsafeModel(f"{where} is refused: {exc}") from None
    return LoadedModel(
        name=name,
        version=str(version),
        flavor=flavor,
        feature_set=FeatureSet.from_dict(metadata["feature_set"]),
        classes=tuple(metadata["classes"]),
        run_id=mv.run_id,
        loaded_at=dt.datetime.now(dt.UTC),
        model=model,
        tags=dict(mv.tags),
    )


def champion_version(name: str, *, uri: str | None = None, client: MlflowClient | None = None) -> str | None:
    """The version behind `name@champion`, or None when no champion is set."""
    client = client or read_client(uri)
    try:
        return str(client.get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException:
        return None


class NoChampion(LookupError):
    """A registered model has no champion that passed the promotion gate: nothing may be served."""


def vetted_champion(name: str, *, uri: str | None = None, client: MlflowClient | None = None) -> str:
    """The version behind `name@champion` when it passed the promotion gate; raises NoChampion, saying
    what to do, when there is none or when that version never passed the gate."""
    client = client or read_client(uri)
    version = champion_version(name, uri=uri, client=client)
    where = uri or tracking_uri()
    if version is None:
        raise NoChampion(
            f"registered model {name!r} has no '{CHAMPION}' at {where}: no version has passed the promotion "
            "gate yet. Train on more days (`tickml train`, or training_job in Dagster) until one beats the "
            "training prior; its gate report is on each version in MLflow"
        )
    mv = client.get_model_version(name, version)
    if mv.tags.get("gate.decision") != PASSED:
        raise NoChampion(
            f"{name} v{version} holds '{CHAMPION}' at {where} but never passed the promotion gate "
            f"(gate.decision={mv.tags.get('gate.decision', 'none')!r}); it is not served. Retrain "
            f"(`tickml train`) or remove the alias"
        )
    return version


def load_champion(name: str, *, uri: str | None = None) -> LoadedModel:
    """Load `models:/<name>@champion` once it passed the promotion gate (see `vetted_champion`)."""
    return load_version(name, vetted_champion(name, uri=uri), uri=uri)


@dataclass(frozen=True)
class PromotionDecision:
    """Whether a candidate version passed the gate and took the champion alias, and the numbers."""

    name: str
    candidate: str
    promoted: bool
    reason: str
    candidate_log_loss: float
    prior_log_loss: float
    lower_bound: float
    champion: str | None = None
    champion_log_loss: float | None = None
    comparisons: tuple[dict, ...] = ()
    report: str = ""  # the promotion report (Markdown), also attached to the version's run
    figures: dict[str, bytes] = dataclasses.field(default_factory=dict)  # its PNG figures by file name

    def as_tags(self) -> dict[str, str]:
        tags = {
            "gate.decision": PASSED if self.promoted else "refused",
            "gate.reason": self.reason[:4000],
            "gate.candidate_log_loss": f"{self.candidate_log_loss:.6f}",
            "gate.prior_log_loss": f"{self.prior_log_loss:.6f}",
            "gate.lower_bound": f"{self.lower_bound:.6f}",
            "gate.champion_version": self.champion or "",
            "gate.champion_log_loss": ""
            if self.champion_log_loss is None
            else f"{self.champion_log_loss:.6f}",
        }
        for c in self.comparisons:
            key = "prior" if c["baseline"] == "prior" else "champion"
            tags[f"gate.lower_bound_vs_{key}"] = f"{c['lower_bound']:.6f}"
            tags[f"gate.improvement_vs_{key}"] = f"{c['improvement']:.6f}"
        return tags


def _prior(mv) -> np.ndarray:
    raw = mv.tags.get("prior")
    if not raw:
        raise ValueError(f"{mv.name} v{mv.version} records no training prior (tag 'prior'); retrain it")
    return np.asarray(json.loads(raw), dtype=np.float64)


def gate_and_promote(
    name: str, version: str, holdout: pd.DataFrame, *, uri: str | None = None
) -> PromotionDecision:
    """Move `name@champion` to `version` only when it passes the gate on the same held-out rows.

    The candidate is scored on `holdout` (every labelled tick of its held-out days, columns `ts`, the
    label, the features) against the training-prior baseline (a constant at the training class mix)
    and against the current champion when there is one, paired over blocks of held-out time
    (`pipelines.gate`). It passes when every lower bound of the improvement is above zero — the first
    version too. The decision, its numbers and a promotion report are attached to the version; a move
    of the alias is appended to the registered model's alias history.
    """
    client = configure(uri)
    horizon = horizon_of(name)
    candidate = load_version(name, version, uri=uri)
    mv = client.get_model_version(name, version)
    holdout = holdout.sort_values("ts", kind="stable")
    y = horizon.codes(holdout[horizon.label_column])
    blocks = gate.time_blocks(holdout["ts"], horizon.block)
    proba = candidate.predict_proba(matrix(holdout, candidate.feature_set))
    ours = row_losses(proba, y)
    prior = _prior(mv)
    comparisons = [gate.compare(ours, prior_losses(prior, y), blocks, baseline="prior")]
    notes = []
    current = champion_version(name, uri=uri)
    champion_ll = None
    if current is not None and current != version:
        champ = load_version(name, current, uri=uri)
        missing = [f for f in champ.feature_set.features if f not in holdout.columns]
        if missing:
            notes.append(
                f"champion v{current} needs features no longer computed ({missing[:5]}): compared with the prior only"
            )
        else:
            theirs = row_losses(champ.predict_proba(matrix(holdout, champ.feature_set)), y)
            champion_ll = float(theirs.mean())
            comparisons.append(gate.compare(ours, theirs, blocks, baseline=f"champion v{current}"))
            seen = {str(d) for d in holdout["day"].unique()} & set(
                filter(None, champ.tags.get("train_days", "").split(","))
            )
            if seen:
                notes.append(
                    f"champion v{current} trained on {len(seen)} of these held-out days: its score is in-sample, "
                    "so the comparison favours it"
                )
    verdict = gate.decide(comparisons)
    promoted = verdict.passed and current != version
    reason = verdict.reason + ("; " + "; ".join(notes) if notes else "")
    if current == version:
        reason = f"already champion; {reason}"
    decision = PromotionDecision(
        name=name,
        candidate=version,
        promoted=verdict.passed,
        reason=reason,
        candidate_log_loss=float(ours.mean()),
        prior_log_loss=comparisons[0].baseline_log_loss,
        lower_bound=verdict.lower_bound,
        champion=current if current != version else None,
        champion_log_loss=champion_ll,
        comparisons=tuple(c.as_dict() for c in comparisons),
    )
    report, figures = _promotion_report(decision, candidate, holdout, proba, y, verdict)
    decision = dataclasses.replace(decision, report=report, figures=figures)
    if promoted:
        client.set_registered_model_alias(name, CHAMPION, version)
        moved_at = dt.datetime.now(dt.UTC)
        client.set_registered_model_tag(
            name,
            f"{HISTORY}{moved_at:%Y%m%dT%H%M%S%f}",
            json.dumps(
                {
                    "version": version,
                    "since": moved_at.isoformat(),
                    "replaced": current,
                    "reason": reason[:1500],
                }
            ),
        )
    for key, value in decision.as_tags().items():
        client.set_model_version_tag(name, version, key, value)
    client.update_model_version(name, version, description=f"promotion gate: {reason[:4000]}")
    return decision


def alias_history(name: str, *, uri: str | None = None) -> list[dict]:
    """Every move of `name@champion`, oldest first: version, since (UTC), the version it replaced, why."""
    model = configure(uri).get_registered_model(name)
    return [json.loads(v) for k, v in sorted(model.tags.items()) if k.startswith(HISTORY)]


def _promotion_report(
    decision: PromotionDecision,
    candidate: LoadedModel,
    holdout: pd.DataFrame,
    proba: np.ndarray,
    y: np.ndarray,
    verdict: gate.GateDecision,
) -> tuple[str, dict[str, bytes]]:
    """The promotion report (Markdown) and its figures (PNG), logged under `promotion/` in the version's run."""
    horizon = horizon_of(decision.name)
    challenge = {}
    with mlflow.start_run(run_id=candidate.run_id):
        try:
            challenge = mlflow.artifacts.load_dict(f"runs:/{candidate.run_id}/challenge.json")
        except (MlflowException, OSError):
            challenge = {}
        title = f"{decision.name} v{decision.candidate}"
        confusion = pd.crosstab(
            pd.Categorical(y, categories=range(len(horizon.classes))),
            pd.Categorical(proba.argmax(axis=1), categories=range(len(horizon.classes))),
            dropna=False,
        ).to_numpy()
        figures = {
            "reliability.png": reliability_figure(
                proba, y, horizon.classes, f"{title}: reliability on held-out ticks"
            ),
            "confusion_matrix.png": confusion_figure(
                confusion, horizon.classes, f"{title} on held-out ticks"
            ),
            "block_differences.png": block_differences_figure(
                {c.baseline: c.block_differences for c in verdict.comparisons},
                {c.baseline: c.lower_bound for c in verdict.comparisons},
                f"{title}: per-block log-loss gain",
            ),
        }
        pngs = {}
        for file, fig in figures.items():
            mlflow.log_figure(fig, f"promotion/{file}")
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
            pngs[file] = buf.getvalue()
            plt.close(fig)
        metrics = evaluate(proba, holdout[horizon.label_column], horizon.classes)
        lines = [
            f"# Promotion report: {title}",
            "",
            f"**Decision: {'promoted to champion' if decision.promoted else 'refused'}.** {decision.reason}",
            "",
            f"Held-out days: {', '.join(sorted({str(d) for d in holdout['day']}))} "
            f"({len(holdout):,} labelled ticks, blocks of {horizon.block}).",
            "",
            "## Against the baselines",
            "",
            "| baseline | candidate log loss | baseline log loss | mean block gain | 95% lower bound "
            "| blocks | passed |",
            "|---|---:|---:|---:|---:|---:|:---:|",
        ]
        lines += [
            f"| {c.baseline} | {c.candidate_log_loss:.4f} | {c.baseline_log_loss:.4f} | {c.improvement:+.4f} | "
            f"{c.lower_bound:+.4f} | {c.blocks} | {'yes' if c.passed else 'no'} |"
            for c in verdict.comparisons
        ]
        lines += [
            "",
            f"Candidate on held-out ticks: log loss {metrics['log_loss']:.4f}, Brier {metrics['brier']:.4f}, "
            f"accuracy {metrics['accuracy']:.3f}, balanced accuracy {metrics['balanced_accuracy']:.3f} "
            f"(chance {1 / len(horizon.classes):.3f}).",
            "",
            "![per-block gain](block_differences.png)",
            "",
            "| block | " + " | ".join(f"gain vs {c.baseline}" for c in verdict.comparisons) + " |",
            "|---:|" + "---:|" * len(verdict.comparisons),
        ]
        for b in range(verdict.comparisons[0].blocks):
            lines.append(
                f"| {b} | " + " | ".join(f"{c.block_differences[b]:+.4f}" for c in verdict.comparisons) + " |"
            )
        if challenge:
            lines += [
                "",
                f"## Walk-forward challenge (rows: {challenge['rows']}, winner: {challenge['winner']})",
                "",
            ]
            lines += [
                "| family | trials | pruned | mean log loss | "
                + " | ".join(f"fold {f['fold']} ({','.join(f['test_days'])})" for f in challenge["folds"])
                + " |"
            ]
            lines += ["|---|---:|---:|---:|" + "---:|" * len(challenge["folds"])]
            for family, r in challenge["families"].items():
                lines.append(
                    f"| {family} | {r['trials']} | {r['pruned']} | {r['mean_log_loss']:.4f} | "
                    + " | ".join(f"{x:.4f}" for x in r["fold_log_loss"])
                    + " |"
                )
            lines.append(
                f"| training prior | | | {challenge['prior_mean_log_loss']:.4f} | "
                + " | ".join(f"{x:.4f}" for x in challenge["prior_fold_log_loss"])
                + " |"
            )
        lines += ["", "![reliability](reliability.png)", "", "![confusion matrix](confusion_matrix.png)", ""]
        report = "\n".join(lines)
        mlflow.log_text(report, "promotion/report.md")
    return report, pngs


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


def log_backtest(
    name: str,
    version: str,
    symbol: str,
    report: str,
    summary: str,
    figures: dict[str, plt.Figure],
    tags: dict[str, str],
    *,
    uri: str | None = None,
) -> None:
    """Attach `symbol`'s backtest to model version `name`/`version`: `report` as `backtest/<symbol>.md` and
    its figures in the version's run, `tags` on the version, and a section of the run's promotion report
    that quotes `summary` (its table and verdict) and links the report."""
    client = configure(uri)
    run_id = client.get_model_version(name, version).run_id
    with mlflow.start_run(run_id=run_id):
        mlflow.log_text(report, f"backtest/{symbol}.md")
        for file, fig in figures.items():
            mlflow.log_figure(fig, f"backtest/{file}")
        try:
            promotion = mlflow.artifacts.load_text(f"runs:/{run_id}/promotion/report.md")
        except (MlflowException, OSError):
            promotion = None
        if promotion is not None:
            heading = f"## Backtest on the held-out days: {symbol}"
            section = [
                heading,
                "",
                f"Replayed through the serving code beside the rule baselines, after costs: "
                f"[backtest/{symbol}.md](../backtest/{symbol}.md).",
                "",
                summary,
            ]
            mlflow.log_text(_replace_section(promotion, heading, "\n".join(section)), "promotion/report.md")
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)


def _replace_section(markdown: str, heading: str, section: str) -> str:
    """`markdown` with the section under `heading` (up to the next '## ') replaced by `section`, or with
    `section` appended when there is none."""
    lines = markdown.rstrip("\n").split("\n")
    if heading in lines:
        start = lines.index(heading)
        end = next((k for k in range(start + 1, len(lines)) if lines[k].startswith("## ")), len(lines))
        lines = lines[:start] + lines[end:]
    return "\n".join([*lines, "", section, ""])
