"""One model asset and one champion asset per horizon, built by the same factory."""

import dagster as dg
from pydantic import Field

from feature_store.features import FeatureSet, feature_set
from orchestration.features.assets import DATASET, training_dataset
from orchestration.plots import figure_md
from orchestration.resources import MlflowResource, OfflineStoreResource
from pipelines.plots import confusion_figure
from pipelines.training import HORIZON_15M, HORIZON_30M, Horizon, train_direction_model

SHAP = "shap"


class ModelConfig(dg.Config):
    feature_set: str = Field(
        default=SHAP,
        description="'shap' trains on this horizon's SHAP-pruned set from shap_feature_sets; "
        "or name a feature set (see `tickml features list`)",
    )
    num_boost_round: int = Field(default=200, description="LightGBM boosting rounds")
    learning_rate: float = Field(default=0.05, description="LightGBM learning rate")
    num_leaves: int = Field(default=31, description="LightGBM leaves per tree")


def model_assets(horizon: Horizon) -> list[dg.AssetsDefinition]:
    """`direction_<h>_model` (train + register a version) and `direction_<h>_champion` (promotion)."""
    prefix = horizon.model_name.replace("-", "_")

    @dg.asset(name=f"{prefix}_model", group_name="training", deps=[training_dataset])
    def model(
        context: dg.AssetExecutionContext,
        config: ModelConfig,
        shap_feature_sets: dict,
        offline_store: OfflineStoreResource,
        mlflow: MlflowResource,
    ) -> dg.Output[dict]:
        """A newly registered version of the model, trained on the dataset's training days."""
        dataset = offline_store.store().read_dataset(DATASET)
        selected = shap_feature_sets[horizon.key]
        use_shap = config.feature_set == SHAP
        features = (
            FeatureSet.from_dict(selected["feature_set"]) if use_shap else feature_set(config.feature_set)
        )
        trained = train_direction_model(
            dataset,
            horizon,
            features,
            params={
                "num_boost_round": config.num_boost_round,
                "learning_rate": config.learning_rate,
                "num_leaves": config.num_leaves,
            },
        )
        version = mlflow.register(
            trained,
            selection_run_id=selected["selection_run_id"] if use_shap else None,
            lineage={
                "dagster_run_id": context.run_id,
                "dataset": DATASET,
                "days": ",".join(str(d) for d in trained.train_days + trained.holdout_days),
            },
        )
        context.log.info(f"{horizon.model_name} v{version}: {trained.metrics}")
        return dg.Output(
            {"version": version, "holdout_days": [d.isoformat() for d in trained.holdout_days]},
            metadata={
                "model": horizon.model_name,
                "version": version,
                "feature_set": f"{trained.feature_set.name}@v{trained.feature_set.version}",
                **{f"holdout_{k}": v for k, v in trained.metrics.items()},
                "holdout_days": [d.isoformat() for d in trained.holdout_days],
                "train_class_balance": trained.train_balance,
                "confusion_matrix": figure_md(
                    confusion_figure(trained.confusion, horizon.classes, f"{horizon.model_name} v{version}")
                ),
            },
        )

    @dg.asset(
        name=f"{prefix}_champion", group_name="training", ins={"candidate": dg.AssetIn(f"{prefix}_model")}
    )
    def champion(
        candidate: dict, offline_store: OfflineStoreResource, mlflow: MlflowResource
    ) -> dg.Output[dict]:
        """The version behind the `champion` alias after comparing the candidate on the same held-out days."""
        dataset = offline_store.store().read_dataset(DATASET)
        holdout = dataset[dataset["holdout"]]
        decision = mlflow.promote(horizon.model_name, candidate["version"], holdout)
        champion_version = mlflow.champion_version(horizon.model_name)
        return dg.Output(
            {"champion": champion_version, "promoted": decision.promoted, "reason": decision.reason},
            metadata={
                "champion_version": champion_version,
                "candidate_version": candidate["version"],
                "promoted": decision.promoted,
                "reason": decision.reason,
                "candidate_log_loss": decision.challenger_log_loss,
                "previous_champion_log_loss": decision.champion_log_loss,
            },
        )

    return [model, champion]


MODEL_ASSETS = model_assets(HORIZON_15M) + model_assets(HORIZON_30M)
