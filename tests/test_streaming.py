"""The streaming sensor against a real served model and a real tick store of each backend."""

from __future__ import annotations

import datetime as dt
import socket
import threading
from collections.abc import Callable

import pandas as pd
import pytest

from feature_store.instruments import get_instrument
from feature_store.schema import PREDICTION_COLUMNS
from feature_store.store import TickKey, TickStore
from pipelines.simulate import simulate_session
from pipelines.streaming import (
    ScoringClient,
    dump_cursor,
    load_cursor,
    run_stream,
    score_new_ticks,
)

DayFor = Callable[[str], dt.date]


def session_ticks(symbol: str, day: dt.date, n: int) -> pd.DataFrame:
    """The first `n` ticks of a simulated session of `symbol`."""
    return simulate_session(get_instrument(symbol), day, seed=9, signal=1.0).iloc[:n].reset_index(drop=True)


def last_key(ticks: pd.DataFrame) -> TickKey:
    return TickKey(int(ticks["ts"].iloc[-1].value), int(ticks["seq"].iloc[-1]))


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

    for step in run_stream(tick_store, scoring_client, poll_interval=0.01, stop=stop, cursor_name="test"):
        steps.append(step)
        if step.ticks_scored == 0:
            stop.set()

    expected = {symbol: last_key(frame) for symbol, frame in two_symbols.items()}
    assert sum(s.ticks_scored for s in steps) == 900
    assert load_cursor(tick_store.get_cursor("test")) == expected


def test_run_stream_outlives_an_unreachable_service(tick_store: TickStore, two_symbols: dict) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]  # nothing listens there once the socket is closed
    stop = threading.Event()
    threading.Timer(1.0, stop.set).start()

    with ScoringClient(f"http://127.0.0.1:{dead_port}", timeout=0.5) as client:
        steps = list(run_stream(tick_store, client, poll_interval=0.05, stop=stop, cursor_name="test"))

    assert steps == []
    assert tick_store.get_cursor("test") is None


def test_cursor_round_trips_through_json() -> None:
    cursor = {"NIFTY": TickKey(1_925_000_000_123_456_789, 42), "AMZN": TickKey(1_925_000_001_000_000_000, 0)}

    assert load_cursor(dump_cursor(cursor)) == cursor


@pytest.mark.parametrize("text", [None, ""])
def test_no_stored_cursor_means_start_from_the_beginning(text: str | None) -> None:
    assert load_cursor(text) == {}


@pytest.mark.parametrize("text", ["not json", '["NIFTY"]', '{"NIFTY": 5}', '{"NIFTY": ["x", 1]}'])
def test_malformed_cursor_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="cursor"):
        load_cursor(text)
