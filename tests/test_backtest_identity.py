"""One code path: a day streamed through `bentoml serve` and the same day backtested in process make
the same prediction and the same trade-filter decision on every tick."""

from __future__ import annotations

import collections

import numpy as np
import pandas as pd
import pytest

from feature_store.instruments import get_instrument
from feature_store.schema import LABELS_15M, LABELS_30M
from feature_store.store import ParquetTickStore
from pipelines import registry
from pipelines.backtest.engine import CHAMPIONS, run_backtest, session_ticks
from pipelines.scoring import ChampionPair
from pipelines.simulate import simulate_session
from pipelines.streaming import ScoringClient, score_new_ticks
from tests.fixtures_serving import REPLAY_SYMBOL


@pytest.fixture
def replay_instruments(served_instruments, monkeypatch):
    """This process reads the service's instruments file (its NIFTY_REPLAY and trade filter)."""
    monkeypatch.setenv("TICKML_INSTRUMENTS", str(served_instruments))


def test_a_streamed_day_and_its_backtest_decide_alike_on_every_tick(
    scoring_service, champions, replay_instruments, fresh_day, tmp_path, monkeypatch
):
    instrument = get_instrument(REPLAY_SYMBOL)
    day = fresh_day("NIFTY")
    store = ParquetTickStore(tmp_path / "tickml")
    store.write_ticks(simulate_session(instrument, day, seed=29, signal=2.0, symbol=REPLAY_SYMBOL))
    with ScoringClient(scoring_service, timeout=120.0) as client:
        step = score_new_ticks(store, client, None, max_ticks=None)
    assert not step.refused and step.ticks_scored == step.predictions_stored
    live = store.read_predictions(REPLAY_SYMBOL).sort_values(["ts", "seq"], ignore_index=True)

    monkeypatch.setenv("MLFLOW_TRACKING_URI", champions)
    champions_pair = ChampionPair(
        registry.load_champion(registry.MODEL_15M), registry.load_champion(registry.MODEL_30M)
    )
    ticks = session_ticks(store, instrument, [day])
    backtest = run_backtest(instrument, ticks, champions_pair, rules={})
    decisions, scores = backtest.strategies[CHAMPIONS].decisions, backtest.scores

    assert len(live) == len(ticks) == backtest.ticks > 50_000
    assert (live["seq"].to_numpy() == ticks["seq"].to_numpy()).all()
    np.testing.assert_array_equal(live[[f"p15_{c.lower()}" for c in LABELS_15M]].to_numpy(), scores.p15)
    np.testing.assert_array_equal(live[[f"p30_{c.lower()}" for c in LABELS_30M]].to_numpy(), scores.p30)
    np.testing.assert_array_equal(live["signal"].to_numpy(dtype=object), scores.signal)
    np.testing.assert_array_equal(live["confidence"].to_numpy(), scores.confidence)
    np.testing.assert_array_equal(live["action"].to_numpy(dtype=object), decisions.action)
    np.testing.assert_array_equal(live["reason"].to_numpy(dtype=object), decisions.reason)
    # the comparison covers trades, not only ticks where nothing happens
    counts = collections.Counter(decisions.action.tolist())
    assert counts["BUY"] + counts["SELL"] >= 2 and counts["EXIT"] >= 1, counts
    assert len(backtest.strategies[CHAMPIONS].trades) >= 2
    assert isinstance(live["ts"].iloc[0], pd.Timestamp)
