"""The rule baselines read the catalogue's indicators and say UP, DOWN or FLAT as documented."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from feature_store.features import FEATURE_NAMES
from feature_store.instruments import get_instrument
from pipelines.backtest.replay import Replay
from pipelines.backtest.rules import (
    ATR_BREAKOUT,
    RULES,
    VOTE_WEIGHTS,
    bollinger_reversion,
    macd_0,
    momentum_10,
    price_change,
    rsi_50,
    weighted_vote,
)


def replay(**columns: list[float]) -> Replay:
    n = len(next(iter(columns.values())))
    X = np.full((n, len(FEATURE_NAMES)), np.nan)
    for name, values in columns.items():
        X[:, FEATURE_NAMES.index(name)] = values
    ticks = pd.DataFrame({"ts": pd.date_range("2025-01-06 04:00", periods=n, freq="1s", tz="UTC")})
    return Replay(get_instrument("NIFTY"), ticks, X, np.ones(n, dtype=bool))


@pytest.mark.parametrize(
    "rule, column, values, expected",
    [
        (rsi_50, "rsi_14", [60.0, 40.0, 50.0, np.nan], ["UP", "DOWN", "FLAT", "FLAT"]),
        (macd_0, "macd_bps", [0.5, -0.5, 0.0, np.nan], ["UP", "DOWN", "FLAT", "FLAT"]),
        (momentum_10, "momentum_10_ticks", [3.0, -1.0, 0.0, np.nan], ["UP", "DOWN", "FLAT", "FLAT"]),
        (price_change, "ret_1", [0.2, -0.2, 0.0, np.nan], ["UP", "DOWN", "FLAT", "FLAT"]),
        (bollinger_reversion, "bb_position", [-0.1, 1.2, 0.5, np.nan], ["UP", "DOWN", "FLAT", "FLAT"]),
    ],
)
def test_single_indicator_rules(rule, column: str, values: list[float], expected: list[str]) -> None:
    signals = rule(replay(**{column: values}))

    assert signals.signal.tolist() == expected
    assert signals.confidence.tolist() == [1.0] * 4 and signals.agree.all()


def test_the_vote_weights_are_the_reference_systems() -> None:
    assert VOTE_WEIGHTS == {
        "rsi": 0.25,
        "macd": 0.25,
        "bollinger": 0.20,
        "adx": 0.15,
        "stochastic": 0.10,
        "atr": 0.05,
    }
    assert sum(VOTE_WEIGHTS.values()) == pytest.approx(1.0)


def test_the_vote_goes_with_the_weight_behind_it() -> None:
    # tick 0: RSI oversold, MACD up, below the lower band -> 70% long; tick 1: only the stochastic is
    # overbought -> 10% short; tick 2: a strong +DI trend against an overbought RSI -> 25% vs 15%, short
    frame = replay(
        rsi_14=[25.0, 50.0, 75.0],
        macd_hist_bps=[1.0, 0.0, 0.0],
        bb_position=[-0.2, 0.5, 0.5],
        adx_14=[10.0, 10.0, 40.0],
        plus_di_14=[20.0, 20.0, 30.0],
        minus_di_14=[20.0, 20.0, 10.0],
        stoch_k_14=[50.0, 90.0, 50.0],
        ret_10=[0.0, 0.0, 0.0],
        atr_14_bps=[1.0, 1.0, 1.0],
    )

    signals = weighted_vote(frame)

    assert signals.signal.tolist() == ["UP", "DOWN", "DOWN"]
    assert signals.confidence.tolist() == pytest.approx([0.70, 0.10, 0.25])


def test_the_atr_vote_needs_a_breakout_beyond_a_random_walks_two_sigma() -> None:
    frame = replay(ret_10=[ATR_BREAKOUT * 1.01, ATR_BREAKOUT * 0.99], atr_14_bps=[1.0, 1.0])

    signals = weighted_vote(frame)

    assert signals.signal.tolist() == ["UP", "FLAT"]
    assert signals.confidence.tolist() == pytest.approx([0.05, 0.0])


def test_every_rule_is_listed_once() -> None:
    assert len(RULES) == 6 and len(set(RULES.values())) == 6
