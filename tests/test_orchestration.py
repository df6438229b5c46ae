"""The Dagster code location loads on every run, and its asset graph materialises on small data."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import dagster as dg
import mlflow
import pandas as pd
import pytest

from feature_store.instruments import get_instrument
from orchestration.definitions import defs
from orchestration.features.assets import tick_features, tick_labels, training_dataset
from orchestration.local import RANGE_END, RANGE_START, add_partitions
from orchestration.resources import DatasetIOManager, MlflowResource, OfflineStoreResource, TickStoreResource
from orchestration.ticks.assets import raw_ticks
from orchestration.ticks.partitions import symbol_day_key
from orchestration.training.assets import MODEL_ASSETS
from orchestration.training.backtest import backtest_report
from orchestration.training.folds import walk_forward_folds
from orchestration.training.selection import shap_feature_sets
from pipelines import registry
from pipelines.simulate import simulate_session
from tests.fixtures_models import FIRST_DAY

ROOT = Path(__file__).resolve().parent.parent
EXPECTED_ASSETS = {
    "raw_ticks",
    "tick_labels",
    "tick_features",
    "training_dataset",
    "shap_feature_sets",
    "walk_forward_folds",
    "direction_15m_model",
    "direction_30m_model",
    "direction_15m_champion",
    "direction_30m_champion",
    "backtest_report",
    "live_predictions",
}


def test_definitions_load_with_every_asset_job_and_sensor():
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()

    assert {k.to_user_string() for k in graph.get_all_asset_keys()} == EXPECTED_ASSETS
    assert set(defs.resolve_job_def("ticks_job").graph.node_names()) == {
        "raw_ticks",
        "tick_labels",
        "tick_features",
    }
    assert set(defs.resolve_job_def("training_job").graph.node_names()) == EXPECTED_ASSETS - {
        "raw_ticks",
        "tick_labels",
        "tick_features",
        "live_predictions",  # written by the streaming driver, not by a job
    }
    folds_check = next(iter(defs.resolve_assets_def("walk_forward_folds").check_specs))
    assert folds_check.name == "folds_purged" and folds_check.blocking
    assert defs.resolve_sensor_def("scoring_sensor").name == "scoring_sensor"
    assert defs.resolve_sensor_def("tick_store_partitions").name == "tick_store_partitions"


def test_dagster_cli_validates_the_workspace():
    result = subprocess.run(
        [str(Path(sys.executable).with_name("dagster")), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def resources(tmp_path, monkeypatch) -> dict:
    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return {
        "tick_store": TickStoreResource(home=str(tmp_path / "home")),
        "offline_store": OfflineStoreResource(home=str(tmp_path / "home")),
        "dataset_io_manager": DatasetIOManager(home=str(tmp_path / "home")),
        "mlflow": MlflowResource(tracking_uri=uri),
    }


@pytest.fixture
def instance(tmp_path) -> dg.DagsterInstance:
    """A Dagster instance of its own with NIFTY's first days and the default universe as partitions."""
    with dg.DagsterInstance.ephemeral(tempdir=str(tmp_path / "dagster")) as instance:
        add_partitions(
            instance,
            days=[d.isoformat() for d in registry_days(5)],
            symbols=["NIFTY"],
            universes=["default"],
        )
        yield instance


def test_asset_graph_materialises_into_gated_candidates(resources, instance):
    days = [d.isoformat() for d in registry_days(5)]
    result = dg.materialize(
        [raw_ticks, tick_labels, tick_features],
        instance=instance,
        resources=resources,
        tags={
            RANGE_START: str(symbol_day_key(days[0], "NIFTY")),
            RANGE_END: str(symbol_day_key(days[-1], "NIFTY")),
        },
        run_config={"ops": {"raw_ticks": {"config": {"source": "simulator", "seed": 3, "signal": 2.0}}}},
    )
    assert result.success
    assert all(c.passed for c in result.get_asset_check_evaluations())
    # one run, one materialisation per symbol-day partition
    assert sorted(m.partition for m in result.asset_materializations_for_node("raw_ticks")) == [
        str(symbol_day_key(d, "NIFTY")) for d in days
    ]
    ticks_meta = result.asset_materializations_for_node("raw_ticks")[0].metadata
    assert ticks_meta["ticks"].value > 5 * 40_000 and ticks_meta["partitions"].value == 5

    small = {"trials": 2, "timeout_s": 30.0}
    result = dg.materialize(
        [training_dataset, shap_feature_sets, walk_forward_folds, *MODEL_ASSETS, backtest_report],
        instance=instance,
        partition_key="default",
        resources=resources,
        run_config={
            "ops": {
                "training_dataset": {"config": {"stride": 20, "holdout_days": 2}},
                "shap_feature_sets": {"config": {"k": 8}},
                "walk_forward_folds": {"config": {"folds": 1}},
                "direction_15m_model": {"config": small},
                "direction_30m_model": {"config": small},
            }
        },
    )

    assert result.success
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks["folds_purged"].passed and checks["dataset_schema"].passed
    assert result.output_for_node("walk_forward_folds") == [
        {"fold": 0, "train_days": days[:2], "test_days": [days[2]]}
    ]
    client = registry.configure()
    for name in ("direction_15m", "direction_30m"):
        model = name.replace("_", "-")
        candidate = result.output_for_node(f"{name}_model")
        outcome = result.output_for_node(f"{name}_champion")
        assert candidate["version"] == "1"
        # the gate's verdict decides the alias, and its numbers are on the version and in the metadata
        assert (
            outcome["champion"] == ("1" if outcome["promoted"] else None) == registry.champion_version(model)
        )
        tags = client.get_model_version(model, "1").tags
        assert tags["gate.decision"] == ("passed" if outcome["promoted"] else "refused")
        assert float(tags["gate.lower_bound"]) == pytest.approx(outcome["lower_bound"], abs=1e-6)
        assert (outcome["lower_bound"] > 0) is outcome["promoted"]
        meta = result.asset_materializations_for_node(f"{name}_model")[0].metadata
        assert 0 < meta["holdout_accuracy"].value <= 1 and {
            "confusion_matrix",
            "reliability",
            "walk_forward",
        } <= set(meta)
        assert meta["trials"].value == 4 and meta["flavor"].value in ("lightgbm", "catboost")
        champion_meta = result.asset_materializations_for_node(f"{name}_champion")[0].metadata
        assert "| prior |" in champion_meta["promotion_report"].value
        loaded = registry.load_version(model, "1")
        assert loaded.feature_set.name.startswith("shap_") and len(loaded.feature_set.features) == 8
        artifacts = {a.path for a in client.list_artifacts(loaded.run_id)}
        assert {
            "shap_summary.png",
            "shap_kept_dropped.json",
            "feature_set.json",
            "challenge.json",
        } <= artifacts
        trials = client.search_runs(
            [client.get_experiment_by_name(registry.EXPERIMENT).experiment_id],
            filter_string=f"tags.mlflow.parentRunId = '{loaded.run_id}'",
        )
        assert len(trials) == 4
        # the backtest after the decision: its report on the version, linked from the promotion report
        assert {"backtest/NIFTY.md", "backtest/NIFTY_equity.png"} <= {
            a.path for a in client.list_artifacts(loaded.run_id, "backtest")
        }
        assert "## Backtest on the held-out days: NIFTY" in mlflow.artifacts.load_text(
            f"runs:/{loaded.run_id}/promotion/report.md"
        )
    backtest = result.asset_materializations_for_node("backtest_report")[0].metadata
    assert re.search(r"\| (champions|candidates) \|", backtest["NIFTY_report"].value)
    assert "| weighted vote |" in backtest["NIFTY_report"].value
    assert {"NIFTY_equity", "NIFTY_daily_pnl", "NIFTY_net_pnl"} <= set(backtest)
    for model in ("direction-15m", "direction-30m"):  # the version's tags carry the same figures
        assert int(tags_after(model)["backtest.NIFTY.trades"]) == backtest["NIFTY_trades"].value
        assert float(tags_after(model)["backtest.NIFTY.net_pnl"]) == pytest.approx(
            backtest["NIFTY_net_pnl"].value, abs=0.01
        )


def tags_after(model: str) -> dict[str, str]:
    return registry.configure().get_model_version(model, "1").tags


def registry_days(n: int):
    return get_instrument("NIFTY").trading_days(FIRST_DAY, n)


def _quarantine_rows(n: int, day: str) -> pd.DataFrame:
    ts = pd.Timestamp(f"{day} 05:00", tz="UTC")
    return pd.DataFrame(
        {
            "source": "/data/feed.csv",
            "row": range(n),
            "symbol": "NIFTY",
            "day": day,
            "ts": ts,
            "reason": ["crossed_book"] * (n // 2) + ["bad_price"] * (n - n // 2),
            "detail": "test",
            "raw": "x",
            "quarantined_at": ts,
        }
    )


@pytest.mark.parametrize(("threshold", "passes"), [(0.001, False), (0.5, True)])
def test_quarantine_share_check_fails_the_partition_above_its_threshold(
    resources, instance, threshold, passes
):
    day = registry_days(1)[0].isoformat()
    store = resources["tick_store"].open()
    store.write_ticks(simulate_session(get_instrument("NIFTY"), registry_days(1)[0], seed=1).iloc[:1000])
    store.write_quarantine(_quarantine_rows(50, day))

    result = dg.materialize(
        [raw_ticks],
        instance=instance,
        partition_key=symbol_day_key(day, "NIFTY"),
        resources=resources,
        run_config={"ops": {"raw_ticks": {"config": {"source": "store", "max_quarantine_share": threshold}}}},
        raise_on_error=False,
    )

    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks["quarantine_share"].passed is passes and checks["tick_schema"].passed
    meta = result.asset_materializations_for_node("raw_ticks")[0].metadata
    assert meta["quarantined_by_reason"].value == {"crossed_book": 25, "bad_price": 25}
    assert meta["ticks"].value == 1000
