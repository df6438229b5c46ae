"""Honesty of the backtest on a random walk: after costs, no model or rule shows a Sharpe ratio whose
lower confidence bound is above zero, while a strategy that knows the future does (so the check can
fail)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from feature_store.instruments import get_instrument
from pipelines import registry
from pipelines.backtest.engine import CHAMPIONS, run_backtest
from pipelines.backtest.replay import Replay, Signals
from pipelines.backtest.rules import RULES
from pipelines.labels import label_ticks
from pipelines.scoring import ChampionPair
from pipelines.simulate import simulate_days
from pipelines.trade_filter import TradeFilterConfig
from tests.fixtures_models import FIRST_DAY

PEEK = "knows the 15m label"


def peek_ahead(replay: Replay) -> Signals:
    """Long on a tick whose 15-minute label is UP (its target comes before its stop), short on DOWN:
    the future itself, leaked on purpose."""
    labels = label_ticks(replay.ticks, replay.instrument)["label_15m"].to_numpy(dtype=object)
    signal = np.where(labels == "UP", "UP", np.where(labels == "DOWN", "DOWN", "FLAT")).astype(object)
    return Signals(signal, np.ones(len(signal)), np.ones(len(signal), dtype=bool))


@pytest.fixture(scope="module")
def random_walk_backtest(champions):
    nifty = get_instrument("NIFTY")
    ticks = pd.concat(
        simulate_days(nifty, nifty.trading_days(FIRST_DAY, 3), seed=101, signal=0.0), ignore_index=True
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", champions)
        pair = ChampionPair(
            registry.load_champion(registry.MODEL_15M), registry.load_champion(registry.MODEL_30M)
        )
    # a lower threshold than the reference design's, so the small champions trade on these days
    config = TradeFilterConfig.for_instrument(nifty, min_confidence=0.45)
    return run_backtest(nifty, ticks, pair, config=config, rules={**RULES, PEEK: peek_ahead})


def test_on_a_random_walk_no_model_or_rule_has_a_sharpe_lower_bound_above_zero(random_walk_backtest):
    table = random_walk_backtest.table().drop(index=PEEK)

    assert table.loc[CHAMPIONS, "trades"] > 0
    assert (table["trades"] > 0).all()
    assert not (table["sharpe_lower"] > 0).any(), table[["trades", "pnl_net", "sharpe", "sharpe_lower"]]
    assert not table["superior"].any()


def test_a_strategy_that_sees_the_future_is_caught_by_the_same_check(random_walk_backtest):
    peek = random_walk_backtest.table().loc[PEEK]

    assert peek["sharpe_lower"] > 0 and peek["superior"]
    assert random_walk_backtest.comparison.superior == (PEEK,)
