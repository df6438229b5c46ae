"""Fills at the touch and each venue's costs, on hand-made NIFTY ticks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from feature_store.instruments import get_instrument
from pipelines.backtest.fills import END_OF_DATA, fill_prices, order_cost, round_trips

NIFTY = get_instrument("NIFTY")  # 75 INR a point, 1.3 bps and 20 INR an order, 0.05 a tick


def ticks(prices, bids=None, asks=None) -> pd.DataFrame:
    n = len(prices)
    start = pd.Timestamp("2025-01-06 04:00", tz="UTC")
    return pd.DataFrame(
        {
            "ts": pd.date_range(start, periods=n, freq="1min"),
            "price": np.asarray(prices, dtype=float),
            "bid": np.asarray(bids if bids is not None else [np.nan] * n, dtype=float),
            "ask": np.asarray(asks if asks is not None else [np.nan] * n, dtype=float),
        }
    )


def actions(*names: str) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(names, dtype=object), np.asarray([f"why {a}" for a in names], dtype=object)


def test_buys_fill_at_the_ask_and_sells_at_the_bid() -> None:
    buy, sell = fill_prices(NIFTY, ticks([100.0], bids=[99.5], asks=[100.5]))

    assert (buy[0], sell[0]) == (100.5, 99.5)


def test_without_a_book_fills_are_the_price_plus_or_minus_slippage() -> None:
    buy, sell = fill_prices(NIFTY, ticks([100.0]))

    assert buy[0] == pytest.approx(100.05) and sell[0] == pytest.approx(99.95)


def test_an_order_pays_commission_on_its_notional_and_the_fixed_fee() -> None:
    assert order_cost(NIFTY, 24000.0) == pytest.approx(1.3e-4 * 24000.0 * 75 + 20.0)


def test_a_long_round_trip_buys_the_ask_and_sells_the_bid() -> None:
    frame = ticks([100.0, 101.0, 102.0], bids=[99.9, 100.9, 101.9], asks=[100.1, 101.1, 102.1])
    action, reason = actions("BUY", "NONE", "EXIT")

    trade = round_trips(NIFTY, frame, action, reason).iloc[0]

    assert (trade["side"], trade["entry_price"], trade["exit_price"]) == (1, 100.1, 101.9)
    assert trade["points"] == pytest.approx(1.8)
    assert trade["gross"] == pytest.approx(1.8 * 75)
    assert trade["costs"] == pytest.approx(order_cost(NIFTY, 100.1) + order_cost(NIFTY, 101.9))
    assert trade["net"] == pytest.approx(trade["gross"] - trade["costs"])
    assert trade["exit_reason"] == "why EXIT"


def test_a_short_gains_when_the_price_falls() -> None:
    frame = ticks([100.0, 98.0], bids=[99.9, 97.9], asks=[100.1, 98.1])
    action, reason = actions("SELL", "EXIT")

    trade = round_trips(NIFTY, frame, action, reason).iloc[0]

    assert (trade["side"], trade["points"]) == (-1, pytest.approx(99.9 - 98.1))


def test_a_reversal_closes_one_position_and_opens_the_other_at_the_same_tick() -> None:
    frame = ticks([100.0, 101.0, 99.0], bids=[99.9, 100.9, 98.9], asks=[100.1, 101.1, 99.1])
    action, reason = actions("BUY", "SELL", "EXIT")

    trades = round_trips(NIFTY, frame, action, reason)

    assert trades["side"].tolist() == [1, -1]
    assert trades["exit_ts"].iloc[0] == trades["entry_ts"].iloc[1]
    assert (trades["exit_price"].iloc[0], trades["entry_price"].iloc[1]) == (100.9, 100.9)


def test_a_position_open_at_the_end_closes_at_the_last_tick() -> None:
    frame = ticks([100.0, 100.5, 101.0])
    action, reason = actions("BUY", "NONE", "NONE")

    trade = round_trips(NIFTY, frame, action, reason).iloc[0]

    assert trade["exit_reason"] == END_OF_DATA
    assert trade["exit_ts"] == frame["ts"].iloc[-1]


def test_no_signal_no_trades() -> None:
    trades = round_trips(NIFTY, ticks([100.0, 101.0]), *actions("NONE", "NONE"))

    assert trades.empty and "net" in trades.columns
