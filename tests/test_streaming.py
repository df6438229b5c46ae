"""The streaming sensor against a real served model and a real tick store of each backend."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from feature_store.instruments import get_instrument
from feature_store.schema import PREDICTION_COLUMNS
from feature_store.store import TickKey, TickStore, open_store
from pipelines.simulate import simulate_session
from pipelines.streaming import (
    MAX_TICKS_PER_PASS,
    ScoringClient,
    ScoringError,
    StreamInterrupted,
    dump_cursor,
    live_edge,
    load_cursor,
    run_stream,
    score_new_ticks,
    ticks_payload,
)
from serving.state import REPLAY_CACHE_SIZE
from tests.streaming_helpers import Gateway, closed_port, corrupt_stored_tick

DayFor = Callable[[str], dt.date]
TICKML = str(Path(sys.executable).with_name("tickml"))


def session_ticks(symbol: str, day: dt.date, n: int) -> pd.DataFrame:
    """The first `n` ticks of a simulated session of `symbol`."""
    return simulate_session(get_instrument(symbol), day, seed=9, signal=1.0).iloc[:n].reset_index(drop=True)


def last_key(ticks: pd.DataFrame) -> TickKey:
    return TickKey(int(ticks["ts"].iloc[-1].value), int(ticks["seq"].iloc[-1]))


def run_cli(*args: str, home: Path) -> subprocess.CompletedProcess:
    # the timeout only guards against a hang; nothing here asserts how long anything takes
    env = {**os.environ, "TICKML_HOME": str(home)}
    env.pop("TICKML_PG_URL", None)
    return subprocess.run([TICKML, *args], capture_output=True, text=True, timeout=300, env=env)


@pytest.fixture
def two_symbols(tick_store: TickStore, fresh_day: DayFor) -> dict[str, pd.DataFrame]:
    """600 NIFTY and 300 AMZN ticks written to the store, on days the service has not seen."""
    ticks = {
        "NIFTY": session_ticks("NIFTY", fresh_day("NIFTY"), 600),
        "AMZN": session_ticks("AMZN", fresh_day("AMZN"), 300),
    }
    for frame in ticks.values():
        tick_store.write_ticks(frame)
    return ticks


def test_first_pass_scores_and_stores_every_tick(
    tick_store: TickStore, scoring_client: ScoringClient, two_symbols: dict[str, pd.DataFrame]
) -> None:
    step = score_new_ticks(tick_store, scoring_client, None, batch_size=250)

    stored = tick_store.read_predictions()
    assert (step.ticks_scored, step.predictions_stored) == (900, 900)
    assert len(stored) == 900 and not stored.duplicated(["symbol", "ts", "seq"]).any()
    assert tuple(stored.columns) == PREDICTION_COLUMNS
    assert len(step.latencies_ms) == 3 + 2  # batches of 250: NIFTY 250+250+100, AMZN 250+50


def test_cursor_ends_at_each_symbols_last_tick(
    tick_store: TickStore, scoring_client: ScoringClient, two_symbols: dict[str, pd.DataFrame]
) -> None:
    step = score_new_ticks(tick_store, scoring_client, None)

    assert step.cursor == {symbol: last_key(frame) for symbol, frame in two_symbols.items()}


def test_second_pass_finds_nothing_new(
    tick_store: TickStore, scoring_client: ScoringClient, two_symbols: dict[str, pd.DataFrame]
) -> None:
    first = score_new_ticks(tick_store, scoring_client, None)

    second = score_new_ticks(tick_store, scoring_client, first.cursor)

    assert (second.ticks_scored, second.predictions_stored, second.cursor) == (0, 0, first.cursor)
    assert len(tick_store.read_predictions()) == 900


def test_replay_after_a_lost_cursor_stores_each_prediction_once(
    tick_store: TickStore, scoring_client: ScoringClient, two_symbols: dict[str, pd.DataFrame]
) -> None:
    first = score_new_ticks(tick_store, scoring_client, None)
    before = tick_store.read_predictions()

    # A crash after storing but before saving the cursor: the same pass runs again from the old cursor.
    replay = score_new_ticks(tick_store, scoring_client, None)

    after = tick_store.read_predictions()
    assert (replay.ticks_scored, replay.predictions_stored, replay.cursor) == (900, 0, first.cursor)
    pd.testing.assert_frame_equal(after, before)


def test_only_appended_ticks_are_scored(
    tick_store: TickStore, scoring_client: ScoringClient, fresh_day: DayFor
) -> None:
    ticks = session_ticks("NIFTY", fresh_day("NIFTY"), 500)
    tick_store.write_ticks(ticks.iloc[:300])
    first = score_new_ticks(tick_store, scoring_client, None)
    tick_store.write_ticks(ticks.iloc[300:])

    second = score_new_ticks(tick_store, scoring_client, first.cursor)

    assert (second.ticks_scored, second.predictions_stored) == (200, 200)
    assert second.cursor == {"NIFTY": last_key(ticks)}
    assert tick_store.read_predictions("NIFTY")["seq"].tolist() == ticks["seq"].tolist()


def test_max_ticks_bounds_a_pass_and_symbols_take_turns(
    tick_store: TickStore, scoring_client: ScoringClient, two_symbols: dict[str, pd.DataFrame]
) -> None:
    step = score_new_ticks(tick_store, scoring_client, None, batch_size=100, max_ticks=300)

    # symbols() is sorted, so the turns are AMZN, NIFTY, AMZN
    expected = {
        "AMZN": last_key(two_symbols["AMZN"].iloc[:200]),
        "NIFTY": last_key(two_symbols["NIFTY"].iloc[:100]),
    }
    assert step.ticks_scored == 300
    assert step.cursor == expected


def test_refused_symbol_keeps_its_cursor_while_others_stream_on(
    tick_store: TickStore, scoring_client: ScoringClient, fresh_day: DayFor
) -> None:
    behind, ahead = fresh_day("NIFTY"), fresh_day("NIFTY")
    scoring_client.score(session_ticks("NIFTY", ahead, 5))  # the service's NIFTY state is now past `behind`
    tick_store.write_ticks(session_ticks("NIFTY", behind, 50))
    amzn = session_ticks("AMZN", fresh_day("AMZN"), 50)
    tick_store.write_ticks(amzn)

    step = score_new_ticks(tick_store, scoring_client, None)

    assert "NIFTY" in step.refused and "NIFTY" not in step.cursor
    assert step.cursor == {"AMZN": last_key(amzn)}
    assert len(tick_store.read_predictions("AMZN")) == 50


def test_run_stream_saves_its_cursor_in_the_store(
    tick_store: TickStore, scoring_client: ScoringClient, two_symbols: dict[str, pd.DataFrame]
) -> None:
    stop = threading.Event()
    steps = []

    for step in run_stream(
        tick_store, scoring_client, poll_interval=0.01, stop=stop, cursor_name="test", backfill=True
    ):
        steps.append(step)
        if step.ticks_scored == 0:
            stop.set()

    expected = {symbol: last_key(frame) for symbol, frame in two_symbols.items()}
    assert sum(s.ticks_scored for s in steps) == 900
    assert load_cursor(tick_store.get_cursor("test")) == expected


def test_run_stream_outlives_an_unreachable_service_yielding_each_failed_pass(
    tick_store: TickStore, two_symbols: dict
) -> None:
    stop = threading.Event()
    steps = []

    with ScoringClient(f"http://127.0.0.1:{closed_port()}", timeout=0.5) as client:
        for step in run_stream(
            tick_store, client, poll_interval=0.01, stop=stop, cursor_name="test", backfill=True
        ):
            steps.append(step)
            if len(steps) == 3:
                stop.set()

    assert len(steps) == 3
    assert all(s.error and "ConnectError" in s.error and s.ticks_scored == 0 for s in steps)
    assert tick_store.get_cursor("test") is None


@pytest.fixture
def poisoned(tick_store: TickStore, fresh_day: DayFor) -> dict[str, pd.DataFrame]:
    """50 NIFTY and 50 AMZN ticks stored; NIFTY's 21st gets a NaN price behind the store's validation."""
    ticks = {
        "NIFTY": session_ticks("NIFTY", fresh_day("NIFTY"), 50),
        "AMZN": session_ticks("AMZN", fresh_day("AMZN"), 50),
    }
    for frame in ticks.values():
        tick_store.write_ticks(frame)
    corrupt_stored_tick(tick_store, "NIFTY", int(ticks["NIFTY"]["seq"].iloc[20]), "price", float("nan"))
    return ticks


def test_unsendable_tick_refuses_its_symbol_after_scoring_the_ticks_before_it(
    tick_store: TickStore, scoring_client: ScoringClient, poisoned: dict[str, pd.DataFrame]
) -> None:
    step = score_new_ticks(tick_store, scoring_client, None)

    assert (
        "price=nan" in step.refused["NIFTY"]
        and f"seq={poisoned['NIFTY']['seq'].iloc[20]}" in step.refused["NIFTY"]
    )
    assert step.cursor == {"NIFTY": last_key(poisoned["NIFTY"].iloc[:20]), "AMZN": last_key(poisoned["AMZN"])}
    assert len(tick_store.read_predictions("NIFTY")) == 20 and len(tick_store.read_predictions("AMZN")) == 50


def test_unsendable_tick_holds_its_symbol_on_every_later_pass(
    tick_store: TickStore, scoring_client: ScoringClient, poisoned: dict[str, pd.DataFrame]
) -> None:
    first = score_new_ticks(tick_store, scoring_client, None)

    second = score_new_ticks(tick_store, scoring_client, first.cursor)

    assert (second.ticks_scored, second.cursor, second.refused) == (0, first.cursor, first.refused)


@pytest.mark.parametrize(
    "column, value", [("price", float("nan")), ("volume", float("inf")), ("bid", float("-inf"))]
)
def test_ticks_payload_names_the_tick_and_field_json_cannot_carry(column: str, value: float) -> None:
    ticks = session_ticks("NIFTY", dt.date(2031, 1, 6), 5)
    ticks.loc[3, column] = value

    with pytest.raises(ValueError) as refused:
        ticks_payload(ticks)

    assert "ticks[3]: NIFTY" in str(refused.value) and f"{column}={value}" in str(refused.value)


def test_default_pass_fits_well_inside_the_services_replay_cache() -> None:
    assert MAX_TICKS_PER_PASS <= REPLAY_CACHE_SIZE // 4


def test_a_backlog_is_scored_in_bounded_passes_by_default(
    tick_store: TickStore, scoring_client: ScoringClient, fresh_day: DayFor
) -> None:
    ticks = session_ticks("NIFTY", fresh_day("NIFTY"), MAX_TICKS_PER_PASS + 50)
    tick_store.write_ticks(ticks)

    first = score_new_ticks(tick_store, scoring_client, None)
    second = score_new_ticks(tick_store, scoring_client, first.cursor)

    assert (first.ticks_scored, second.ticks_scored) == (MAX_TICKS_PER_PASS, 50)
    assert first.cursor == {"NIFTY": last_key(ticks.iloc[:MAX_TICKS_PER_PASS])}
    assert second.cursor == {"NIFTY": last_key(ticks)}


def test_run_stream_drains_a_backlog_pass_by_pass_saving_the_cursor_after_each(
    tick_store: TickStore, scoring_client: ScoringClient, two_symbols: dict[str, pd.DataFrame]
) -> None:
    stop = threading.Event()
    steps, saved = [], []

    for step in run_stream(
        tick_store,
        scoring_client,
        poll_interval=0.01,
        stop=stop,
        cursor_name="test",
        max_ticks=250,
        backfill=True,
    ):
        steps.append(step)
        saved.append(load_cursor(tick_store.get_cursor("test")))
        if step.ticks_scored == 0:
            stop.set()

    stored = tick_store.read_predictions()
    assert [s.ticks_scored for s in steps] == [250, 250, 250, 150, 0]
    assert saved == [s.cursor for s in steps]
    assert len(stored) == 900 and not stored.duplicated(["symbol", "ts", "seq"]).any()


def test_pass_cut_short_by_the_service_hands_back_what_it_stored(
    tick_store: TickStore, scoring_service: str, two_symbols: dict[str, pd.DataFrame]
) -> None:
    with Gateway(scoring_service, forward=3) as gateway, ScoringClient(gateway.url) as client:
        with pytest.raises(StreamInterrupted) as interrupted:
            score_new_ticks(tick_store, client, None, batch_size=100)

    # symbols take turns: AMZN, NIFTY, AMZN got through, NIFTY's second batch met the 503
    step = interrupted.value.step
    assert isinstance(interrupted.value.__cause__, ScoringError) and "503" in step.error
    assert step.cursor == {
        "AMZN": last_key(two_symbols["AMZN"].iloc[:200]),
        "NIFTY": last_key(two_symbols["NIFTY"].iloc[:100]),
    }
    assert step.ticks_scored == step.predictions_stored == len(tick_store.read_predictions()) == 300


def test_run_stream_saves_the_progress_of_a_failed_pass_and_resumes_from_it(
    tick_store: TickStore,
    scoring_service: str,
    scoring_client: ScoringClient,
    two_symbols: dict[str, pd.DataFrame],
) -> None:
    stop = threading.Event()
    with Gateway(scoring_service, forward=3) as gateway, ScoringClient(gateway.url) as client:
        failed = next(
            run_stream(tick_store, client, stop=stop, cursor_name="test", batch_size=100, backfill=True)
        )
    saved = load_cursor(tick_store.get_cursor("test"))

    resumed = []
    for step in run_stream(
        tick_store, scoring_client, poll_interval=0.01, stop=stop, cursor_name="test", backfill=True
    ):
        resumed.append(step)
        if step.ticks_scored == 0:
            stop.set()

    stored = tick_store.read_predictions()
    assert failed.error and (failed.ticks_scored, saved) == (300, failed.cursor)
    assert sum(s.ticks_scored for s in resumed) == 600 and not any(s.refused or s.error for s in resumed)
    assert len(stored) == 900 and not stored.duplicated(["symbol", "ts", "seq"]).any()


def test_stream_once_exits_1_naming_the_service_when_it_is_unreachable(
    tmp_path: Path, fresh_day: DayFor
) -> None:
    open_store(home=tmp_path).write_ticks(session_ticks("NIFTY", fresh_day("NIFTY"), 20))
    url = f"http://127.0.0.1:{closed_port()}"

    result = run_cli("stream", "--once", "--backfill", "--url", url, home=tmp_path)

    assert result.returncode == 1
    assert url in result.stderr and "ConnectError" in result.stderr
    assert open_store(home=tmp_path).get_cursor("stream") is None


def test_stream_once_does_one_bounded_pass(tmp_path: Path, scoring_service: str, fresh_day: DayFor) -> None:
    ticks = session_ticks("NIFTY", fresh_day("NIFTY"), 250)
    open_store(home=tmp_path).write_ticks(ticks)

    result = run_cli(
        "stream", "--once", "--backfill", "--max-ticks", "100", "--url", scoring_service, home=tmp_path
    )

    assert result.returncode == 0, result.stderr
    assert "scored 100 ticks, stored 100 predictions" in result.stdout
    assert load_cursor(open_store(home=tmp_path).get_cursor("stream")) == {
        "NIFTY": last_key(ticks.iloc[:100])
    }


def test_cursor_round_trips_through_json() -> None:
    cursor = {"NIFTY": TickKey(1_925_000_000_123_456_789, 42), "AMZN": TickKey(1_925_000_001_000_000_000, 0)}

    assert load_cursor(dump_cursor(cursor)) == cursor


def test_cursor_reads_as_time_and_seq_and_the_earlier_format_still_loads() -> None:
    cursor = {"NIFTY": TickKey(1_925_000_000_123_456_789, 42)}

    assert json.loads(dump_cursor(cursor)) == {
        "NIFTY": {"ts": "2031-01-01T02:13:20.123456789+00:00", "seq": 42}
    }
    assert load_cursor('{"NIFTY": [1925000000123456789, 42]}') == cursor


def test_a_new_stream_starts_at_the_live_edge_and_a_backfill_at_the_first_tick(
    tmp_path: Path, scoring_service: str, fresh_day: DayFor
) -> None:
    history, live = (
        session_ticks("NIFTY", fresh_day("NIFTY"), 200),
        session_ticks("NIFTY", fresh_day("NIFTY"), 60),
    )
    store = open_store(home=tmp_path)
    store.write_ticks(history)

    pinned = run_cli("stream", "--once", "--url", scoring_service, home=tmp_path)  # nothing new yet
    store.write_ticks(live)
    live_pass = run_cli("stream", "--once", "--url", scoring_service, home=tmp_path)

    assert pinned.returncode == live_pass.returncode == 0, pinned.stderr + live_pass.stderr
    assert "scored" not in pinned.stdout
    assert "scored 60 ticks, stored 60 predictions" in live_pass.stdout
    assert open_store(home=tmp_path).read_predictions("NIFTY")["ts"].min() == live["ts"].min()  # no history
    # today's session is part of the live edge: a stream started mid-session scores it from the open
    today = pd.Timestamp(live["ts"].iloc[-1]) + pd.Timedelta(minutes=1)
    edge = live_edge(store, now=today)
    assert edge["NIFTY"] < last_key(live.iloc[:1])


@pytest.mark.parametrize("text", [None, ""])
def test_no_stored_cursor_means_start_from_the_beginning(text: str | None) -> None:
    assert load_cursor(text) == {}


@pytest.mark.parametrize("text", ["not json", '["NIFTY"]', '{"NIFTY": 5}', '{"NIFTY": ["x", 1]}'])
def test_malformed_cursor_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="cursor"):
        load_cursor(text)
