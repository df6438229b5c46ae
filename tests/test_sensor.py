"""The Dagster driver of the streaming sensor, evaluated against a real service and a real tick store."""

from __future__ import annotations

import json

import dagster as dg
import pandas as pd

from feature_store.instruments import get_instrument
from orchestration.resources import ScoringServiceResource, TickStoreResource
from orchestration.serving.sensors import scoring_sensor
from pipelines.simulate import simulate_session
from pipelines.streaming import MAX_TICKS_PER_PASS, load_cursor
from tests.streaming_helpers import Gateway, corrupt_stored_tick


def _evaluate(cursor: str | None, resources: dict) -> dg.SensorEvaluationContext:
    context = dg.build_sensor_context(cursor=cursor, resources=resources)
    scoring_sensor(context)
    return context


def test_sensor_scores_each_new_tick_once_and_moves_its_cursor(scoring_service, fresh_day, tmp_path):
    ticks = simulate_session(get_instrument("NIFTY"), fresh_day("NIFTY"), seed=21, signal=1.0)
    first, later = ticks.iloc[:300], ticks.iloc[300:420]
    resources = {
        "tick_store": TickStoreResource(home=str(tmp_path)),
        "scoring_service": ScoringServiceResource(url=scoring_service, timeout_s=60.0, backfill=True),
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
        "scoring_service": ScoringServiceResource(url="http://127.0.0.1:9", timeout_s=1.0, backfill=True),
    }
    resources["tick_store"].open().write_ticks(ticks)

    context = dg.build_sensor_context(cursor=None, resources=resources)
    result = scoring_sensor(context)

    assert "unavailable" in result.skip_reason.skip_message
    assert context.cursor is None
    assert resources["tick_store"].open().read_predictions("NIFTY").empty


def _resources(home, url: str) -> dict:
    return {
        "tick_store": TickStoreResource(home=str(home)),
        "scoring_service": ScoringServiceResource(url=url, timeout_s=60.0, backfill=True),
    }


def test_sensor_drains_a_backlog_over_bounded_evaluations(scoring_service, fresh_day, tmp_path):
    ticks = simulate_session(get_instrument("NIFTY"), fresh_day("NIFTY"), seed=23, signal=1.0)
    ticks = ticks.iloc[: MAX_TICKS_PER_PASS + 50]
    resources = _resources(tmp_path, scoring_service)
    store = resources["tick_store"].open()
    store.write_ticks(ticks)

    first = _evaluate(None, resources)
    after_first = len(store.read_predictions("NIFTY"))
    second = _evaluate(first.cursor, resources)

    stored = store.read_predictions("NIFTY")
    assert after_first == MAX_TICKS_PER_PASS
    assert load_cursor(first.cursor)["NIFTY"].seq == int(ticks["seq"].iloc[MAX_TICKS_PER_PASS - 1])
    assert load_cursor(second.cursor)["NIFTY"].seq == int(ticks["seq"].iloc[-1])
    assert len(stored) == len(ticks) and not stored.duplicated(["ts", "seq"]).any()


def test_sensor_keeps_what_it_stored_when_the_service_fails_part_way(scoring_service, fresh_day, tmp_path):
    ticks = simulate_session(get_instrument("NIFTY"), fresh_day("NIFTY"), seed=24, signal=1.0).iloc[:1200]
    with Gateway(scoring_service, forward=1) as gateway:  # the first batch of 500 gets through, then 503
        resources = _resources(tmp_path, gateway.url)
        store = resources["tick_store"].open()
        store.write_ticks(ticks)

        context = dg.build_sensor_context(cursor=None, resources=resources)
        result = scoring_sensor(context)

    assert "unavailable" in result.skip_reason.skip_message and "503" in result.skip_reason.skip_message
    assert "scored 500 ticks of NIFTY up to" in result.skip_reason.skip_message
    assert load_cursor(context.cursor)["NIFTY"].seq == int(ticks["seq"].iloc[499])
    assert len(store.read_predictions("NIFTY")) == 500


def test_sensor_names_an_unsendable_tick_and_streams_the_rest(scoring_service, fresh_day, tmp_path):
    nifty = simulate_session(get_instrument("NIFTY"), fresh_day("NIFTY"), seed=25, signal=1.0).iloc[:40]
    amzn = simulate_session(get_instrument("AMZN"), fresh_day("AMZN"), seed=25, signal=1.0).iloc[:40]
    resources = _resources(tmp_path, scoring_service)
    store = resources["tick_store"].open()
    store.write_ticks(pd.concat([nifty, amzn]))
    corrupt_stored_tick(store, "NIFTY", int(nifty["seq"].iloc[10]), "bid", float("inf"))

    context = dg.build_sensor_context(cursor=None, resources=resources)
    result = scoring_sensor(context)

    assert "NIFTY refused" in result.skip_reason.skip_message and "bid=inf" in result.skip_reason.skip_message
    assert load_cursor(context.cursor)["NIFTY"].seq == int(nifty["seq"].iloc[9])
    assert load_cursor(context.cursor)["AMZN"].seq == int(amzn["seq"].iloc[-1])
    assert len(store.read_predictions("AMZN")) == 40


def test_the_first_evaluation_starts_at_the_live_edge_and_says_what_it_scored(
    scoring_service, fresh_day, tmp_path
):
    nifty = get_instrument("NIFTY")
    history_day = fresh_day("NIFTY")
    live_day = fresh_day("NIFTY")
    history = simulate_session(nifty, history_day, seed=26, signal=1.0).iloc[:300]
    live = simulate_session(nifty, live_day, seed=26, signal=1.0).iloc[:120]
    resources = {
        "tick_store": TickStoreResource(home=str(tmp_path)),
        "scoring_service": ScoringServiceResource(url=scoring_service, timeout_s=60.0),  # not a backfill
    }
    store = resources["tick_store"].open()
    store.write_ticks(history)

    first = dg.build_sensor_context(cursor=None, resources=resources)
    idle = scoring_sensor(first)
    store.write_ticks(live)
    later = dg.build_sensor_context(cursor=first.cursor, resources=resources)
    result = scoring_sensor(later)

    # history is left alone: only the ticks stored after the sensor started are scored
    assert (
        "no new ticks" in idle.skip_reason.skip_message
        and "from the live edge" in idle.skip_reason.skip_message
    )
    assert len(store.read_predictions("NIFTY")) == len(live)
    # the cursor reads as the last tick's time and seq, and so does the tick's text
    raw = json.loads(later.cursor)
    last = live.iloc[-1]
    assert raw == {
        "NIFTY": {"ts": pd.Timestamp(last["ts"]).tz_convert("UTC").isoformat(), "seq": int(last["seq"])}
    }
    local = pd.Timestamp(last["ts"]).tz_convert(nifty.tz)
    assert (
        f"scored {len(live)} ticks of NIFTY up to {local:%Y-%m-%d %H:%M:%S} IST"
        in result.skip_reason.skip_message
    )
    # and what was scored is a materialisation of the symbol-day's live_predictions partition
    (event,) = result.asset_events
    assert event.asset_key == dg.AssetKey("live_predictions")
    assert event.partition == f"{live_day.isoformat()}|NIFTY"
    assert event.metadata["ticks_scored"].value == len(live)
    assert sum(event.metadata["actions"].value.values()) == len(live)
    assert event.metadata["latency_p99_ms"].value >= event.metadata["latency_p50_ms"].value > 0
    assert "direction-15m/" in event.metadata["model_versions"].value
    assert event.metadata["predictions_stored_day"].value == len(live)  # the day's total, from the store


def test_the_sensor_records_live_predictions_in_the_instance(scoring_service, fresh_day, tmp_path):
    """Evaluated by Dagster itself (the daemon's code path): the asset events land in the instance."""
    from orchestration.definitions import defs

    ticks = simulate_session(get_instrument("NIFTY"), fresh_day("NIFTY"), seed=27, signal=1.0).iloc[:80]
    resources = _resources(tmp_path, scoring_service)
    resources["tick_store"].open().write_ticks(ticks)
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(
            instance=instance, cursor=None, resources=resources, definitions=defs
        )
        data = scoring_sensor.evaluate_tick(context)
        for event in data.asset_events:
            instance.report_runless_asset_event(event)
        records = instance.fetch_materializations(dg.AssetKey("live_predictions"), limit=5).records

    assert data.skip_message.startswith("scored 80 ticks of NIFTY up to")
    assert [r.asset_materialization.metadata["ticks_scored"].value for r in records] == [80]
