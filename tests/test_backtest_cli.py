"""`tickml backtest` from the command line: the champions beside the rules, clear refusals."""

from __future__ import annotations

import json

from mlflow import MlflowClient

from feature_store.instruments import get_instrument
from feature_store.store import open_store
from pipelines.simulate import simulate_session
from tests.fixtures_models import FIRST_DAY
from tests.test_cli import run


def _store_a_day(home) -> str:
    nifty = get_instrument("NIFTY")
    day = nifty.trading_days(FIRST_DAY, 1)[0]
    store = open_store(home=home)
    try:
        store.write_ticks(simulate_session(nifty, day, seed=3, signal=2.0))
    finally:
        store.close()
    return str(day)


def test_backtest_prints_the_champions_and_every_rule_on_the_same_ticks(champions, tmp_path):
    day = _store_a_day(tmp_path)
    env = {"TICKML_HOME": str(tmp_path), "MLFLOW_TRACKING_URI": champions}

    result = run("backtest", "--symbol", "NIFTY", "--start", day, "--end", day, "--json", env=env)

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    names = [s["strategy"] for s in report["strategies"]]
    assert names[0] == "champions" and len(names) == 7
    assert report["models"] == {"direction-15m": "1", "direction-30m": "1"}
    assert report["days"] == [day]
    assert "replaying NIFTY" in result.stderr  # the progress bar
    # the fixture's models trained on this day: the result is in-sample, and the command says so
    assert "warning: the models trained on 1 of these sessions" in result.stderr


def test_backtest_writes_its_report_plots_and_trades(champions, tmp_path):
    _store_a_day(tmp_path)
    out = tmp_path / "report"
    env = {"TICKML_HOME": str(tmp_path), "MLFLOW_TRACKING_URI": champions}

    result = run("backtest", "--symbol", "NIFTY", "--model", "direction-15m/1", "--out", str(out), env=env)

    assert result.returncode == 0, result.stderr
    assert "| models |" in result.stdout and "ticks/s" in result.stdout
    assert {"backtest.md", "equity.png", "daily_pnl.png", "trades_models.csv"} <= {
        p.name for p in out.iterdir()
    }


def test_backtest_without_a_champion_says_what_to_do(tmp_path):
    _store_a_day(tmp_path)
    env = {"TICKML_HOME": str(tmp_path), "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'empty.db'}"}
    MlflowClient(env["MLFLOW_TRACKING_URI"]).search_experiments()  # a registry with no model in it

    result = run("backtest", "--symbol", "NIFTY", env=env)

    assert result.returncode == 3
    assert "no 'champion'" in result.stderr and "--rules-only" in result.stderr
    assert "Traceback" not in result.stderr


def test_backtest_refuses_a_span_without_sessions(tmp_path):
    _store_a_day(tmp_path)

    result = run(
        "backtest",
        "--symbol",
        "NIFTY",
        "--start",
        "2030-01-01",
        "--rules-only",
        env={"TICKML_HOME": str(tmp_path)},
    )

    assert result.returncode == 2 and "no stored NIFTY sessions" in result.stderr


def test_a_bad_threshold_or_an_unknown_version_is_one_clear_line(champions, tmp_path):
    _store_a_day(tmp_path)
    env = {"TICKML_HOME": str(tmp_path), "MLFLOW_TRACKING_URI": champions}

    threshold = run("backtest", "--symbol", "NIFTY", "--min-confidence", "1.5", env=env)
    version = run("backtest", "--symbol", "NIFTY", "--model", "direction-15m/99", env=env)

    assert threshold.returncode == 2 and "min_confidence must be in [0, 1]" in threshold.stderr
    assert version.returncode == 3 and "direction-15m" in version.stderr
    assert "Traceback" not in threshold.stderr + version.stderr
