"""Your own market end to end: calendar partitions, universes as model scope, and the README's PETR4 walk."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import httpx
import pytest
import yaml

from feature_store.features import direction_starter_v1
from feature_store.instruments import (
    Universe,
    declare_universe,
    get_instrument,
    get_universe,
    load_instruments,
    universe_of,
)
from orchestration.ticks.partitions import expected_partitions, partition_requests
from pipelines import registry
from pipelines.training import HORIZON_15M, HORIZON_30M, train_direction_model
from tests.data import B3_FILES
from tests.fixtures_models import SMALL_PARAMS, small_dataset
from tests.fixtures_serving import serve_banner
from tickml import service

TICKML = str(Path(sys.executable).with_name("tickml"))
TODAY = dt.date(2026, 12, 1)
PETR4_DAYS = [dt.date.fromisoformat(f"{p.stem[-4:]}-{p.stem[-6:-4]}-{p.stem[-8:-6]}") for p in B3_FILES]


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.delenv("TICKML_INSTRUMENTS", raising=False)
    monkeypatch.setenv("TICKML_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


# calendars and partitions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("symbol", "day", "trading"),
    [
        ("PETR4", dt.date(2025, 3, 3), False),  # Carnival Monday: a B3 holiday on a weekday
        ("PETR4", dt.date(2025, 3, 5), True),  # Ash Wednesday: B3 opens (late)
        ("PETR4", dt.date(2025, 3, 8), False),  # Saturday
        ("NIFTY", dt.date(2026, 10, 20), False),  # Dussehra: an NSE holiday on a Tuesday
        ("NIFTY", dt.date(2026, 10, 21), True),
        ("AMZN", dt.date(2025, 7, 4), False),  # Independence Day
        ("BTCUSDT", dt.date(2024, 8, 10), True),  # crypto trades on Saturdays
        ("NIFTY", dt.date(2040, 1, 4), True),  # past the calendar's span: the weekdays decide
    ],
)
def test_trading_days_follow_the_exchange_calendar(symbol, day, trading):
    assert get_instrument(symbol).is_trading_day(day) is trading


def test_day_partitions_are_the_calendar_days_the_stored_ticks_span():
    stored = {"PETR4": [dt.date(2025, 3, 5), dt.date(2025, 3, 31)], "NIFTY": []}

    days, symbols = expected_partitions(stored, load_instruments(), TODAY)

    assert days == [d.isoformat() for d in PETR4_DAYS]  # 19 sessions, none on a weekend or at Carnival
    assert symbols == ["PETR4"]


def test_a_stored_day_off_the_calendar_is_a_partition_too():
    days, _ = expected_partitions({"PETR4": [dt.date(2025, 3, 8)]}, load_instruments(), TODAY)

    assert days == ["2025-03-08"]


def test_a_configured_partitions_start_spans_to_today_before_any_tick(home):
    (home).mkdir(parents=True, exist_ok=True)
    (home / "instruments.yaml").write_text(
        yaml.safe_dump({"symbols": {"VALE3": {"venue": "B3", "partitions_start": "2026-11-26"}}})
    )

    days, symbols = expected_partitions({}, load_instruments(), dt.date(2026, 12, 1))

    assert symbols == ["VALE3"]
    assert days == ["2026-11-26", "2026-11-27", "2026-11-30", "2026-12-01"]  # no weekend


@pytest.mark.parametrize(
    ("existing", "wanted", "expected"),
    [
        ([], ["b", "a"], [("add", ["a", "b"])]),
        (["a", "c"], ["d"], [("add", ["d"])]),
        (["a", "c"], ["b"], [("delete", ["c"]), ("add", ["b", "c"])]),
        (["a", "b"], ["a"], []),
    ],
)
def test_partition_requests_keep_dynamic_partitions_sorted(existing, wanted, expected):
    requests = partition_requests("days", existing, wanted)

    kinds = [
        ("add" if isinstance(r, dg.AddDynamicPartitionsRequest) else "delete", list(r.partition_keys))
        for r in requests
    ]
    assert kinds == expected


# universes ------------------------------------------------------------------------------------------


def test_the_default_universe_keeps_the_plain_model_names_and_another_gets_its_own():
    assert get_universe().model_name("direction-15m") == "direction-15m"
    assert Universe("B3_banks", ("PETR4",)).model_name("direction-30m") == "direction-30m-b3_banks"


@pytest.mark.parametrize("name", ["", "a/b", "x y", "-lead"])
def test_a_universe_name_that_cannot_name_a_model_is_refused(name):
    with pytest.raises(ValueError, match="universe name"):
        Universe(name, ("PETR4",))


def test_declaring_a_universe_writes_the_users_file_and_finds_it_by_its_symbols(home):
    declare_universe("brazil", ["PETR4"])

    config = yaml.safe_load((home / "instruments.yaml").read_text())
    assert config["universes"]["brazil"] == {"symbols": ["PETR4"]}
    assert universe_of(["PETR4"]).name == "brazil" and universe_of(["NIFTY"]).name == "default"


def test_a_universe_of_an_unconfigured_symbol_is_refused(home):
    with pytest.raises(KeyError, match="unknown symbol 'NOPE'"):
        declare_universe("x", ["NOPE"])


# the README walk: ingest the PETR4 sample, train its universe through Dagster, serve its champions -------


def _tickml(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([TICKML, *args], capture_output=True, text=True, timeout=900, env=env)


@pytest.fixture
def walk_env(tmp_path, monkeypatch) -> dict:
    """A fresh project: Parquet store, Dagster instance and an MLflow registry where NIFTY has champions."""
    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    dataset = small_dataset()
    for horizon in (HORIZON_15M, HORIZON_30M):
        trained = train_direction_model(dataset, horizon, direction_starter_v1, params=SMALL_PARAMS)
        version = registry.log_and_register(trained, symbols=["NIFTY"])
        assert registry.gate_and_promote(horizon.model_name, version, dataset[dataset["holdout"]]).promoted
    (tmp_path / "dagster").mkdir()
    return {
        **os.environ,
        "TICKML_HOME": str(tmp_path / "home"),
        "DAGSTER_HOME": str(tmp_path / "dagster"),
        "MLFLOW_TRACKING_URI": uri,
        "BENTOML_HOME": str(tmp_path / "bentoml"),
    }


def test_petr4_goes_from_ingest_to_a_served_champion_and_nifty_keeps_its_own(walk_env, tmp_path):
    ingest = _tickml("ingest", *map(str, B3_FILES), "--format", "b3", env=walk_env)
    assert ingest.returncode == 0, ingest.stderr

    # a trial budget the time budget never cuts: the same trials, so the same verdicts, on any machine load
    train = _tickml(
        "train", "--symbols", "PETR4", "--stride", "20", "--k", "10", "--folds", "2", "--trials", "2",
        "--timeout", "600", env=walk_env,
    )  # fmt: skip

    assert train.returncode == 0, train.stdout + train.stderr
    assert "19 trading days 2025-03-05 .. 2025-03-31 in one run" in train.stdout
    client = registry.configure(walk_env["MLFLOW_TRACKING_URI"])
    promoted = {}
    for base in ("direction-15m", "direction-30m"):
        assert registry.champion_version(base) == "1"  # NIFTY's champion did not move
        assert client.get_model_version(base, "1").tags["symbols"] == "NIFTY"
        petr4 = client.get_model_version(f"{base}-petr4", "1")
        assert petr4.tags["symbols"] == "PETR4" and petr4.tags["universe"] == "PETR4"
        assert petr4.tags["lineage.partitions"] == "PETR4 2025-03-05..2025-03-31 (19 days)"
        # whatever the gate said on real data, the alias follows it and the CLI printed it
        promoted[base] = petr4.tags["gate.decision"] == "passed"
        assert registry.champion_version(f"{base}-petr4") == ("1" if promoted[base] else None)
        verdict = "PROMOTED" if promoted[base] else "REFUSED"
        assert f"{base}-petr4 v1 {verdict} by the gate" in train.stdout

    with dg.DagsterInstance.from_config(walk_env["DAGSTER_HOME"]) as instance:
        ticks_runs = [r for r in instance.get_runs() if r.job_name == "ticks_job"]
        assert len(ticks_runs) == 1  # the 19 symbol-days as one run
        materialised = instance.get_materialized_partitions(dg.AssetKey("tick_features"))
        assert materialised == {f"{d.isoformat()}|PETR4" for d in PETR4_DAYS}
        assert instance.get_materialized_partitions(dg.AssetKey("direction_15m_model")) == {"PETR4"}
        dataset_event = instance.get_latest_materialization_event(dg.AssetKey("training_dataset"))
        assert dataset_event.asset_materialization.metadata["symbols"].value == ["PETR4"]

    port = service.free_port()
    if not all(promoted.values()):
        banner = serve_banner(["--universe", "PETR4", "--port", str(port)], walk_env)
        missing = next(f"{b}-petr4" for b, ok in promoted.items() if not ok)
        assert banner.startswith("serving nothing yet") and f"registered model '{missing}' has no" in banner
        return
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [TICKML, "serve", "--universe", "PETR4", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=walk_env,
            start_new_session=True,
        )
    try:
        service.wait_ready(proc, f"http://127.0.0.1:{port}", timeout_s=180, log_path=log)
        served = httpx.get(f"http://127.0.0.1:{port}/models", timeout=10).json()["models"]
        assert [m["name"] for m in served] == ["direction-15m-petr4", "direction-30m-petr4"]
        tick = {
            "ts": "2025-04-01T14:00:00Z",
            "symbol": "PETR4",
            "seq": 1,
            "price": 36.5,
            "size": 100,
            "volume": 100,
            "side": 1,
        }
        scored = httpx.post(f"http://127.0.0.1:{port}/score", json={"ticks": [tick]}, timeout=30).json()
        assert scored["predictions"][0]["models"] == {"direction-15m-petr4": "1", "direction-30m-petr4": "1"}
    finally:
        service.stop(proc)


def test_the_partitions_sensor_adds_what_the_store_holds_then_skips(tmp_path, home):
    from orchestration.local import sync_partitions
    from orchestration.resources import TickStoreResource
    from orchestration.ticks.sensors import tick_store_partitions
    from pipelines.ingest import ingest_files

    store_home = tmp_path / "store"
    tick_store = TickStoreResource(home=str(store_home))
    store = tick_store.open()
    ingest_files([B3_FILES[0], B3_FILES[-1]], "b3", store)  # 2025-03-05 and 2025-03-31
    store.close()

    with dg.DagsterInstance.ephemeral() as instance:
        context = dg.build_sensor_context(instance=instance, resources={"tick_store": tick_store})
        result = tick_store_partitions(context)
        assert isinstance(result, dg.SensorResult)
        added = {r.partitions_def_name: list(r.partition_keys) for r in result.dynamic_partitions_requests}
        assert added == {
            "trading_days": [d.isoformat() for d in PETR4_DAYS],
            "symbols": ["PETR4"],
            "universes": ["default"],
        }
        assert sync_partitions(instance, tick_store) == {"trading_days": 19, "symbols": 1, "universes": 1}
        assert isinstance(tick_store_partitions(context), dg.SkipReason)
