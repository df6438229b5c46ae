"""The Dagster driver of the streaming sensor, evaluated against a real service and a real tick store."""

from __future__ import annotations

import dagster as dg

from feature_store.instruments import get_instrument
from orchestration.resources import ScoringServiceResource, TickStoreResource
from orchestration.serving.sensors import scoring_sensor
from pipelines.simulate import simulate_session
from pipelines.streaming import load_cursor


def _evaluate(cursor: str | None, resources: dict) -> dg.SensorEvaluationContext:
    context = dg.build_sensor_context(cursor=cursor, resources=resources)
    scoring_sensor(context)
    return context


def test_sensor_scores_each_new_tick_once_and_moves_its_cursor(scoring_service, fresh_day, tmp_path):
    ticks = simulate_session(get_instrument("NIFTY"), fresh_day("NIFTY"), seed=21, signal=1.0)
    first, later = ticks.iloc[:300], ticks.iloc[300:420]
    resources = {
        "tick_store": TickStoreResource(home=str(tmp_path)),
        "scoring_service": ScoringServiceResource(url=scoring_service, timeout_s=60.0),
    }
    store = resources["tick_store"].open()
    store.write_ticks(first)

    after_first = _evaluate(None, resources)
    after_idle = _evaluate(after_first.cursor, resources)
    store.write_ticks(later)
    after_later = _evaluate(after_idle.cursor, resources)

    stored = store.read_predictions("NIFTY")
    assert len(stored) == 420
    assert not stored.duplicated(["ts", "seq"]).any()
    assert after_idle.cursor == after_first.cursor
    assert load_cursor(after_first.cursor)["NIFTY"].seq == int(first["seq"].iloc[-1])
    assert load_cursor(after_later.cursor)["NIFTY"].seq == int(later["seq"].iloc[-1])


def test_sensor_skips_without_moving_when_the_service_is_down(tmp_path, fresh_day):
    ticks = simulate_session(get_instrument("NIFTY"), fresh_day("NIFTY"), seed=22, signal=1.0).iloc[:50]
    resources = {
        "tick_store": TickStoreResource(home=str(tmp_path)),
        "scoring_service": ScoringServiceResource(url="http://127.0.0.1:9", timeout_s=1.0),
    }
    resources["tick_store"].open().write_ticks(ticks)

    context = dg.build_sensor_context(cursor=None, resources=resources)
    result = scoring_sensor(context)

    assert "unavailable" in result.skip_message
    assert context.cursor is None
    assert resources["tick_store"].open().read_predictions("NIFTY").empty
