"""Typed resources for every external system; local vs. production is decided here, falling back to local."""

from __future__ import annotations

import os

import dagster as dg
import pandas as pd
from pydantic import Field

from feature_store.features import FeatureSet
from feature_store.instruments import Universe
from feature_store.offline import OfflineStore
from feature_store.store import TickStore, default_home, open_store
from pipelines import registry
from pipelines.selection import Selection
from pipelines.streaming import ScoringClient
from pipelines.training import Horizon, TrainedModel


class TickStoreResource(dg.ConfigurableResource):
    """The tick store: PostgreSQL when `pg_url` is set, else Parquet under `home`."""

    home: str = Field(description="Root of the embedded Parquet store ($TICKML_HOME)")
    pg_url: str | None = Field(default=None, description="PostgreSQL URL; when set, ticks live there")

    def open(self) -> TickStore:
        return open_store(url=self.pg_url, home=self.home)


class OfflineStoreResource(dg.ConfigurableResource):
    """Features, labels and datasets as Parquet (the offline store) under `home`."""

    home: str = Field(description="Root of the offline store ($TICKML_HOME)")

    def store(self) -> OfflineStore:
        return OfflineStore(self.home)


class DatasetIOManager(dg.ConfigurableIOManager):
    """Training datasets in the offline store, one version per Dagster run and universe partition.

    A model asset takes the dataset as an input: it loads the version of the latest materialisation of
    its universe's partition, so Dagster's lineage and the rows a model saw are the same thing.
    """

    home: str = Field(description="Root of the offline store ($TICKML_HOME)")

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame) -> None:
        universe = context.asset_partition_key
        path = OfflineStore(self.home).write_dataset(universe, context.run_id, obj)
        context.add_output_metadata({"version": context.run_id, "path": dg.MetadataValue.path(str(path))})

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        universe = context.asset_partition_key
        records = context.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=context.asset_key, asset_partitions=[universe]), limit=1
        ).records
        if not records:
            raise dg.Failure(
                f"{context.asset_key.to_user_string()} of universe {universe!r} was never materialised; "
                "materialise it first (training_job does)"
            )
        version = records[0].asset_materialization.metadata["version"].value
        return OfflineStore(self.home).read_dataset(universe, version)


class MlflowResource(dg.ConfigurableResource):
    """The MLflow tracking server and model registry: registration, promotion and feature selections."""

    tracking_uri: str = Field(description="MLflow tracking and registry URI")

    def register(
        self,
        trained: TrainedModel,
        universe: Universe,
        *,
        symbols: list[str],
        lineage: dict[str, str],
        selection_run_id: str | None,
        run_id: str | None = None,
    ) -> str:
        """Log a training run on `symbols` (pooled) and register it as a new version of the universe's
        model; returns the version."""
        return registry.log_and_register(
            trained,
            name=universe.model_name(trained.horizon.model_name),
            universe=universe.name,
            symbols=symbols,
            lineage=lineage,
            selection_run_id=selection_run_id,
            run_id=run_id,
            uri=self.tracking_uri,
        )

    def challenge_run(self, name: str, horizon: Horizon):
        """The MLflow run a challenge nests its trials under and registers its candidate into."""
        return registry.start_challenge_run(name, horizon, uri=self.tracking_uri)

    def gate(self, name: str, version: str, holdout: pd.DataFrame) -> registry.PromotionDecision:
        """Run the promotion gate on `holdout`; the champion alias moves only when the candidate passes."""
        return registry.gate_and_promote(name, version, holdout, uri=self.tracking_uri)

    def champion_version(self, name: str) -> str | None:
        return registry.champion_version(name, uri=self.tracking_uri)

    def log_backtest(
        self,
        name: str,
        version: str,
        symbol: str,
        report: str,
        summary: str,
        figures: dict,
        tags: dict[str, str],
    ) -> None:
        """Attach a symbol's backtest report, its figures and summary tags to a model version."""
        registry.log_backtest(name, version, symbol, report, summary, figures, tags, uri=self.tracking_uri)

    def log_selection(self, selection: Selection, *, lineage: dict[str, str]) -> tuple[FeatureSet, str]:
        """Log a SHAP selection; returns the versioned pruned feature set and the run id."""
        return registry.log_selection(selection, lineage=lineage, uri=self.tracking_uri)


class ScoringServiceResource(dg.ConfigurableResource):
    """The BentoML scoring service answering POST /score."""

    url: str = Field(description="Base URL of the scoring service, e.g. http://127.0.0.1:3001")
    timeout_s: float = Field(default=10.0, description="HTTP timeout per request in seconds")
    backfill: bool = Field(
        default=False,
        description="The streaming sensor's first evaluation starts at each symbol's first stored tick "
        "instead of the live edge (today's session, else after the last stored tick)",
    )

    def client(self) -> ScoringClient:
        return ScoringClient(self.url, timeout=self.timeout_s)


def default_resources() -> dict[str, dg.ConfigurableResource]:
    """Production when its environment variables are set (TICKML_PG_URL, MLFLOW_TRACKING_URI), else local."""
    home = str(default_home())
    pg = dg.EnvVar("TICKML_PG_URL") if os.environ.get("TICKML_PG_URL") else None
    return {
        "tick_store": TickStoreResource(home=home, pg_url=pg),
        "offline_store": OfflineStoreResource(home=home),
        "dataset_io_manager": DatasetIOManager(home=home),
        "mlflow": MlflowResource(tracking_uri=registry.tracking_uri()),
        "scoring_service": ScoringServiceResource(
            url=os.environ.get("TICKML_SERVICE_URL", "http://127.0.0.1:3001")
        ),
    }
