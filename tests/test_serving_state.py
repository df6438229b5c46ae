"""Warm start of the service's state, in process: a symbol rebuilt from the session's stored ticks scores
exactly as if it had never stopped, and a store it cannot read is marked in every prediction."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from feature_store.instruments import Instrument, get_instrument
from pipelines.registry import MODEL_15M, MODEL_30M, load_champion
from pipelines.scoring import ChampionPair
from pipelines.simulate import simulate_session
from pipelines.streaming import ticks_payload
from pipelines.trade_filter import TradeFilterConfig
from serving import state as state_module
from serving.schemas import Tick
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
