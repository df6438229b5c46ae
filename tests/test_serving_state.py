"""Warm start of the service's state, in process: a symbol rebuilt from the session's stored ticks scores
exactly as if it had never stopped, and a store it cannot read is marked in every prediction."""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import replace

import pandas as pd
import pytest

from feature_store.instruments import Instrument, get_instrument
from pipelines.registry import MODEL_15M, MODEL_30M, load_champion
from pipelines.scoring import ChampionPair
from pipelines.simulate import simulate_session
from pipelines.streaming import ticks_payload
from pipelines.trade_filter import TradeFilterConfig
from serving import state as state_module
from serving.schemas import ScoreResponse, Tick
from serving.state import ScoringState

DAY = dt.date(2026, 6, 3)
# a low bar so the small test champions trade, and the trade filter's state is part of what is compared
FILTER = TradeFilterConfig(min_confidence=0.4, require_agreement=False, cooldown=pd.Timedelta(minutes=1))


@pytest.fixture(scope="module")
def pair(champions: str) -> ChampionPair:
    return ChampionPair(load_champion(MODEL_15M), load_champion(MODEL_30M))


@pytest.fixture(scope="module")
def session() -> pd.DataFrame:
    return simulate_session(get_instrument("NIFTY"), DAY, seed=8, signal=1.5).iloc[:6_000]


def _ticks(frame: pd.DataFrame) -> list[Tick]:
    return [Tick.model_validate(t) for t in ticks_payload(frame)]


def _score(state: ScoringState, ticks: list[Tick], batch: int = 100) -> list[dict]:
    out = []
    for start in range(0, len(ticks), batch):
        out += [p.model_dump() for p in state.score(ticks[start : start + batch])]
    return out


def _history(session: pd.DataFrame):
    def before(instrument: Instrument, ts_ns: int, seq: int) -> pd.DataFrame:
        at = session["ts"].array.asi8
        keep = (at < ts_ns) | ((at == ts_ns) & (session["seq"].to_numpy() < seq))
        return session[keep & (session["symbol"] == instrument.symbol).to_numpy()].reset_index(drop=True)

    return before


def test_a_state_rebuilt_mid_session_scores_every_later_tick_as_an_uninterrupted_one(
    pair: ChampionPair, session: pd.DataFrame
) -> None:
    ticks, cut = _ticks(session), 2_345
    uninterrupted = _score(ScoringState(pair, trade_filter=FILTER), ticks)

    restarted = _score(ScoringState(pair, history=_history(session), trade_filter=FILTER), ticks[cut:])

    assert restarted == uninterrupted[cut:]
    assert {p["action"] for p in restarted} - {"NONE"}  # trades after the cut, filter state included


def test_an_unreadable_store_marks_the_symbol_and_a_later_request_rebuilds_it(
    pair: ChampionPair, session: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticks, cut = _ticks(session), 3_000
    uninterrupted = _score(ScoringState(pair, trade_filter=FILTER), ticks)
    failing = {"on": True}

    def history(instrument: Instrument, ts_ns: int, seq: int) -> pd.DataFrame:
        if failing["on"]:
            raise OSError("tick store unreachable")
        return _history(session)(instrument, ts_ns, seq)

    state = ScoringState(pair, history=history, trade_filter=FILTER)
    partial = _score(state, ticks[cut : cut + 200])
    monkeypatch.setattr(state_module, "HISTORY_RETRY_S", 0.0)
    state.symbol("NIFTY").retry_at = 0.0
    failing["on"] = False
    rebuilt = _score(state, ticks[cut + 200 :])

    assert all(not p["history_complete"] and p["action"] == "NONE" for p in partial)
    assert "tick store unreachable" in partial[0]["reason"]
    assert rebuilt == uninterrupted[cut + 200 :]


def test_a_busy_symbol_holds_up_no_other_and_a_swap_leaves_a_request_with_the_pair_it_started_with(
    pair: ChampionPair, session: pd.DataFrame
) -> None:
    inside, release = threading.Event(), threading.Event()

    def slow_history(instrument: Instrument, ts_ns: int, seq: int) -> pd.DataFrame:
        if instrument.symbol == "NIFTY":  # NIFTY's warm start waits: its lock is held meanwhile
            inside.set()
            release.wait(30)
        return session.iloc[:0]

    state = ScoringState(pair, history=slow_history, trade_filter=FILTER)
    nifty, other = _ticks(session.iloc[:8]), _ticks(session.iloc[:5].assign(symbol="AMZN"))
    first: list = []
    scoring = threading.Thread(target=lambda: first.extend(state.score(nifty[:5])))
    scoring.start()
    assert inside.wait(30)
    renamed = ChampionPair(replace(pair.model_15m, version="77"), replace(pair.model_30m, version="78"))
    try:
        busy = state.score(nifty[5:6], wait=False)
        beside = state.score(other, wait=False)
        state.swap(renamed)  # does not wait for the request in flight
    finally:
        release.set()
        scoring.join(30)

    assert busy is None
    assert beside is not None and [p.symbol for p in beside] == ["AMZN"] * 5
    assert [p.models for p in first] == [pair.versions] * 5
    assert [p.models for p in state.score(nifty[5:])] == [renamed.versions] * 3


def test_the_answer_sent_is_a_score_response_and_a_replay_sends_the_same_bytes(
    pair: ChampionPair, session: pd.DataFrame
) -> None:
    state, ticks = ScoringState(pair, trade_filter=FILTER), _ticks(session.iloc[:300])
    first = state.score_json(ticks[:250])
    replayed = state.score_json(ticks[200:250])

    answer = ScoreResponse.model_validate_json(first)
    assert [p.seq for p in answer.predictions] == [t.seq for t in ticks[:250]]
    assert (
        replayed
        == b'{"predictions":['
        + b",".join(p.model_dump_json().encode() for p in answer.predictions[200:])
        + b"]}"
    )
    assert (
        state.score(ticks[250:])
        == ScoreResponse.model_validate_json(
            ScoringState(pair, trade_filter=FILTER).score_json(ticks)
        ).predictions[250:]
    )
