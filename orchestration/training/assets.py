"""One model asset and one champion asset per horizon and universe, built by the same factory."""

import dagster as dg
import pandas as pd
from pydantic import Field

from feature_store.features import FeatureSet, feature_set
from feature_store.instruments import get_universe
from orchestration.features.assets import DATASET
from orchestration.plots import figure_md, png_md
from orchestration.resources import MlflowResource
from orchestration.ticks.partitions import UNIVERSES
from orchestration.training.folds import FOLDS
from pipelines.challenge import ChallengeSpec, run_challenge
from pipelines.plots import confusion_figure, reliability_figure
from pipelines.training import HORIZON_15M, HORIZON_30M, Horizon, matrix, prior_losses, train_direction_model
from pipelines.validation import Fold

SHAP = "shap"


class ModelConfig(dg.Config):
    feature_set: str = Field(
        default=SHAP,
        description="'shap' trains on this horizon's SHAP-pruned set from shap_feature_sets; "
        "or name a feature set (see `tickml features list`)",
    )
    families: list[str] = Field(
        default=["lightgbm", "catboost"], description="Model families that challenge each other"
    )
    trials: int = Field(default=4, description="Optuna trials per family (the family's defaults first)")
    timeout_s: float = Field(
        default=25.0, description="Optuna time budget per family, in seconds (a started trial finishes)"
    )
    rows: str = Field(
        default="all",
        description="Training rows: 'all' (every labelled tick, what live scoring sees), 'consensus' (the "
        "reference design's filter) or 'consensus_weight' (all, consensus rows weighted up)",
    )
    seed: int = Field(default=7, description="Optuna sampler seed")


def _partitions_tag(dataset: pd.DataFrame) -> str:
    """'SYMBOL first..last (n days)' per symbol of the dataset: the symbol-day partitions it came from."""
    spans = []
    for symbol, days in dataset.groupby("symbol")["day"]:
        unique = sorted(days.unique())
        spans.append(f"{symbol} {unique[0]}..{unique[-1]} ({len(unique)} days)")
    return "; ".join(spans)


def _challenge_md(summary: dict) -> str:
    folds = summary["folds"]
    lines = [
        f"winner **{summary['winner']}** (rows: {summary['rows']})",
        "",
        "| family | trials | pruned | s/trial | mean log loss | "
        + " | ".join(f"fold {f['fold']} ({', '.join(f['test_days'])})" for f in folds)
        + " |",
        "|---|---:|---:|---:|---:|" + "---:|" * len(folds),
    ]
    for family, r in summary["families"].items():
        lines.append(
            f"| {family} | {r['trials']} | {r['pruned']} | {r['seconds_per_trial']:.1f} | "
            f"{r['mean_log_loss']:.4f} | " + " | ".join(f"{x:.4f}" for x in r["fold_log_loss"]) + " |"
        )
    lines.append(
        f"| training prior | | | | {summary['prior_mean_log_loss']:.4f} | "
        + " | ".join(f"{x:.4f}" for x in summary["prior_fold_log_loss"])
        + " |"
    )
    return "\n".join(lines)


def model_assets(horizon: Horizon) -> list[dg.AssetsDefinition]:
    """`direction_<h>_model` (train + register a version) and `direction_<h>_champion` (promotion)."""
    prefix = horizon.model_name.replace("-", "_")

    @dg.asset(
        name=f"{prefix}_model",
        partitions_def=UNIVERSES,
        group_name="training",
        ins={"training_dataset": dg.AssetIn(DATASET), "folds": dg.AssetIn(FOLDS)},
    )
    def model(
        context: dg.AssetExecutionContext,
        config: ModelConfig,
        training_dataset: pd.DataFrame,
        shap_feature_sets: dict,
        folds: list,
        mlflow: MlflowResource,
    ) -> dg.Output[dict]:
        """A newly registered candidate version of the universe's model: the better family of a challenge
        tuned inside the purged walk-forward folds, refit on every training day."""
        universe = get_universe(context.partition_key)
        name = universe.model_name(horizon.model_name)
        selected = shap_feature_sets[horizon.key]
        use_shap = config.feature_set == SHAP
        features = (
            FeatureSet.from_dict(selected["feature_set"]) if use_shap else feature_set(config.feature_set)
        )
        spec = ChallengeSpec(
            families=tuple(config.families),
            trials=config.trials,
            timeout_s=config.timeout_s,
            rows=config.rows,
            seed=config.seed,
        )

        def progress(family, trial):
            scores = ", ".join(f"{x:.4f}" for x in trial.fold_log_loss)
            context.log.info(
                f"{name} {family} trial {trial.number} {trial.state}: fold log loss [{scores}] "
                f"in {trial.seconds:.1f} s"
            )

        with mlflow.challenge_run(name, horizon) as run:
            result = run_challenge(
                training_dataset,
                horizon,
                features,
                [Fold.from_dict(f) for f in folds],
                spec,
                progress=progress,
            )
        winner, summary = result.winner, result.summary()
        trained = train_direction_model(
            training_dataset,
            horizon,
            features,
            family=winner.family,
            params=winner.best_params,
            rows=config.rows,
            challenge=summary,
        )
        version = mlflow.register(
            trained,
            universe,
            symbols=sorted(training_dataset["symbol"].unique()),
            selection_run_id=selected["selection_run_id"] if use_shap else None,
            run_id=run.info.run_id,
            lineage={
                "dagster_run_id": context.run_id,
                "dataset": f"{DATASET}[{universe.name}]",
                "partitions": _partitions_tag(training_dataset),
                "days": ",".join(str(d) for d in trained.train_days + trained.holdout_days),
            },
        )
        held = training_dataset[training_dataset["holdout"]]
        y = horizon.codes(held[horizon.label_column])
        proba = trained.predict_proba(matrix(held, trained.feature_set))
        prior_ll = float(prior_losses(trained.prior, y).mean())
        context.log.info(f"{name} v{version} ({winner.family}): {trained.metrics}")
        return dg.Output(
            {
                "name": name,
                "version": version,
                "flavor": winner.family,
                "holdout_days": [d.isoformat() for d in trained.holdout_days],
                "walk_forward": {
                    **{family: r["mean_log_loss"] for family, r in summary["families"].items()},
                    "prior": summary["prior_mean_log_loss"],
                },
            },
            metadata={
                "model": name,
                "version": version,
                "flavor": winner.family,
                "universe": universe.name,
                "symbols": sorted(training_dataset["symbol"].unique()),
                "feature_set": f"{trained.feature_set.name}@v{trained.feature_set.version}",
                "walk_forward": dg.MetadataValue.md(_challenge_md(summary)),
                **{
                    f"walk_forward_{family}_log_loss": r["mean_log_loss"]
                    for family, r in summary["families"].items()
                },
                "walk_forward_prior_log_loss": summary["prior_mean_log_loss"],
                "trials": sum(r["trials"] for r in summary["families"].values()),
                **{f"holdout_{k}": v for k, v in trained.metrics.items()},
                "holdout_prior_log_loss": prior_ll,
                "holdout_days": [d.isoformat() for d in trained.holdout_days],
                "train_class_balance": trained.train_balance,
                "confusion_matrix": figure_md(
                    confusion_figure(trained.confusion, horizon.classes, f"{name} v{version}")
                ),
                "reliability": figure_md(
                    reliability_figure(proba, y, horizon.classes, f"{name} v{version} on held-out ticks")
                ),
            },
        )

    @dg.asset(
        name=f"{prefix}_champion",
        partitions_def=UNIVERSES,
        group_name="training",
        ins={"candidate": dg.AssetIn(f"{prefix}_model"), "training_dataset": dg.AssetIn(DATASET)},
    )
    def champion(candidate: dict, training_dataset: pd.DataFrame, mlflow: MlflowResource) -> dg.Output[dict]:
        """The universe's version behind the `champion` alias after the promotion gate compared the candidate
        with the training prior and the champion on the same held-out days."""
        holdout = training_dataset[training_dataset["holdout"]]
        name = candidate["name"]
        decision = mlflow.gate(name, candidate["version"], holdout)
        champion_version = mlflow.champion_version(name)
        return dg.Output(
            {
                "champion": champion_version,
                "promoted": decision.promoted,
                "reason": decision.reason,
                "candidate_log_loss": decision.candidate_log_loss,
                "prior_log_loss": decision.prior_log_loss,
                "lower_bound": decision.lower_bound,
            },
            metadata={
                "model": name,
                "champion_version": champion_version or "none",
                "candidate_version": candidate["version"],
                "promoted": decision.promoted,
                "reason": decision.reason,
                "candidate_log_loss": decision.candidate_log_loss,
                "prior_log_loss": decision.prior_log_loss,
                "lower_bound": decision.lower_bound,
                "previous_champion_log_loss": decision.champion_log_loss,
                "promotion_report": dg.MetadataValue.md(decision.report),
                **{k.removesuffix(".png"): png_md(v) for k, v in decision.figures.items()},
            },
        )

    return [model, champion]


MODEL_ASSETS = model_assets(HORIZON_15M) + model_assets(HORIZON_30M)
