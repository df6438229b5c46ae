"""The market simulator: deterministic, canonical, realistic enough, and learnable only when asked."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from feature_store.instruments import get_instrument
from feature_store.schema import LABELS_15M, TICK_COLUMNS, validate_ticks
from pipelines.labels import label_ticks
from pipelines.simulate import DEMO_SIGNAL, simulate_days, simulate_session

NIFTY = get_instrument("NIFTY")
MONDAY = dt.date(2025, 3, 10)  # an ordinary Monday at every venue (3 March was B3's Carnival)
SATURDAY = dt.date(2025, 3, 15)
INSTRUMENTS = ["NIFTY", "AMZN", "PETR4", "BTCUSDT"]


@pytest.fixture(scope="module")
def nifty_session() -> pd.DataFrame:
    return simulate_session(NIFTY, MONDAY, seed=7, signal=DEMO_SIGNAL)


def ts_ns(ticks: pd.DataFrame) -> np.ndarray:
    return ticks["ts"].to_numpy("datetime64[ns]").view(np.int64)


def flow_vs_forward_return(
    ticks: pd.DataFrame, window: int = 300, minutes: int = 5
) -> tuple[np.ndarray, np.ndarray]:
    """Trade-sign imbalance of the last `window` events and the price change over the next `minutes`."""
    side = ticks["side"].to_numpy(np.float64)
    signed = np.concatenate(([0.0], np.cumsum(side)))
    trades = np.concatenate(([0.0], np.cumsum(side != 0)))
    now = np.arange(window, len(ticks))
    traded = np.maximum(trades[now + 1] - trades[now + 1 - window], 1)
    imbalance = (signed[now + 1] - signed[now + 1 - window]) / traded
    ts, price = ts_ns(ticks), ticks["price"].to_numpy()
    ahead = pd.Timedelta(minutes=minutes).value
    later = np.searchsorted(ts, ts[now] + ahead, side="right") - 1
    inside = ts[now] + ahead <= ts[-1]
    return imbalance[inside], (price[later] - price[now])[inside]


def flow_correlation(signal: float, seed: int, days: int = 10) -> float:
    sessions = simulate_days(NIFTY, NIFTY.trading_days(MONDAY, days), seed=seed, signal=signal)
    flow, forward = zip(*(flow_vs_forward_return(t) for t in sessions), strict=True)
    return float(np.corrcoef(np.concatenate(flow), np.concatenate(forward))[0, 1])


def test_same_seed_gives_identical_ticks(nifty_session: pd.DataFrame) -> None:
    again = simulate_session(NIFTY, MONDAY, seed=7, signal=DEMO_SIGNAL)

    pd.testing.assert_frame_equal(again, nifty_session)


def test_different_seed_gives_different_ticks(nifty_session: pd.DataFrame) -> None:
    other = simulate_session(NIFTY, MONDAY, seed=8, signal=DEMO_SIGNAL)

    assert not np.array_equal(other["price"].to_numpy()[:1000], nifty_session["price"].to_numpy()[:1000])


def test_a_day_is_the_same_whether_or_not_earlier_days_are_simulated() -> None:
    days = NIFTY.trading_days(MONDAY, 3)

    chained = list(simulate_days(NIFTY, days, seed=11))
    alone = simulate_session(NIFTY, days[2], seed=11)

    pd.testing.assert_frame_equal(chained[2], alone)


def test_each_session_opens_near_the_previous_close() -> None:
    sessions = list(simulate_days(NIFTY, NIFTY.trading_days(MONDAY, 20), seed=3))

    gaps = [
        nxt["price"].iloc[0] / prev["price"].iloc[-1] - 1
        for prev, nxt in zip(sessions, sessions[1:], strict=False)
    ]

    # An overnight gap has a standard deviation of about 0.2% for NIFTY; 1% would be a five-sigma gap.
    assert max(abs(g) for g in gaps) < 0.01


@pytest.mark.parametrize("symbol", INSTRUMENTS)
def test_session_is_schema_valid(symbol: str) -> None:
    ticks = simulate_session(get_instrument(symbol), MONDAY, seed=1, signal=DEMO_SIGNAL)

    validated = validate_ticks(ticks)

    assert list(validated.columns) == list(TICK_COLUMNS) and len(validated) == len(ticks) > 0


@pytest.mark.parametrize("symbol", INSTRUMENTS)
def test_events_per_second_between_two_and_three(symbol: str) -> None:
    instrument = get_instrument(symbol)
    open_ts, close_ts = instrument.session_bounds(MONDAY)

    ticks = simulate_session(instrument, MONDAY, seed=2)

    assert 2.0 <= len(ticks) / (close_ts - open_ts).total_seconds() <= 3.0


def test_ticks_lie_strictly_inside_the_session(nifty_session: pd.DataFrame) -> None:
    open_ts, close_ts = NIFTY.session_bounds(MONDAY)

    assert nifty_session["ts"].min() > open_ts and nifty_session["ts"].max() < close_ts


def test_ts_and_seq_strictly_increase(nifty_session: pd.DataFrame) -> None:
    assert (np.diff(ts_ns(nifty_session)) > 0).all()
    assert nifty_session["seq"].tolist() == list(range(len(nifty_session)))


def test_no_ticks_on_a_weekend_day() -> None:
    ticks = simulate_session(NIFTY, SATURDAY, seed=1)

    assert ticks.empty and list(ticks.columns) == list(TICK_COLUMNS)


def test_simulate_days_skips_non_trading_days() -> None:
    days = [SATURDAY, SATURDAY + dt.timedelta(days=1), SATURDAY + dt.timedelta(days=2)]

    sessions = list(simulate_days(NIFTY, days, seed=1))

    assert len(sessions) == 1 and NIFTY.trading_day(sessions[0]["ts"]).eq(days[2]).all()


@pytest.mark.parametrize("symbol", INSTRUMENTS)
def test_prices_and_quotes_lie_on_the_tick_grid(symbol: str) -> None:
    instrument = get_instrument(symbol)
    ticks = simulate_session(instrument, MONDAY, seed=4, signal=DEMO_SIGNAL)

    in_ticks = ticks[["price", "bid", "ask"]].to_numpy() / instrument.tick_size

    assert np.abs(in_ticks - np.round(in_ticks)).max() < 1e-6


def test_book_is_never_crossed_nor_locked(nifty_session: pd.DataFrame) -> None:
    assert (nifty_session["bid"] < nifty_session["ask"]).all()


def test_spread_is_usually_one_tick(nifty_session: pd.DataFrame) -> None:
    spread_ticks = ((nifty_session["ask"] - nifty_session["bid"]) / NIFTY.tick_size).round()

    share = spread_ticks.value_counts(normalize=True)

    assert share[1.0] > 0.7 and set(share.index) <= {1.0, 2.0, 3.0}


def test_trades_execute_at_the_quote_of_their_aggressor(nifty_session: pd.DataFrame) -> None:
    trades = nifty_session[nifty_session["size"] > 0]

    buys, sells = trades[trades["side"] == 1], trades[trades["side"] == -1]

    assert len(buys) + len(sells) == len(trades)
    assert (buys["price"] == buys["ask"]).all() and (sells["price"] == sells["bid"]).all()


def test_quote_updates_carry_the_last_trade_price(nifty_session: pd.DataFrame) -> None:
    last_trade = nifty_session["price"].where(nifty_session["size"] > 0).ffill()
    quotes = nifty_session["size"] == 0

    carried = nifty_session.loc[quotes, "price"]

    assert (nifty_session.loc[quotes, "side"] == 0).all()
    assert carried.iloc[100:].equals(last_trade[quotes].iloc[100:])


def test_volume_is_the_running_sum_of_trade_sizes(nifty_session: pd.DataFrame) -> None:
    assert np.array_equal(nifty_session["volume"].to_numpy(), nifty_session["size"].cumsum().to_numpy())


def test_start_price_and_symbol_overrides() -> None:
    ticks = simulate_session(NIFTY, MONDAY, seed=1, start_price=20000.0, symbol="NIFTY_SIM")

    assert ticks["symbol"].eq("NIFTY_SIM").all() and abs(ticks["price"].iloc[0] - 20000.0) < 5.0


def test_fifteen_minute_volatility_suits_the_nifty_thresholds() -> None:
    sessions = simulate_days(NIFTY, NIFTY.trading_days(MONDAY, 5), seed=5)

    moves = pd.concat([t.set_index("ts")["price"].resample("15min").last().diff() for t in sessions])

    assert 20.0 <= moves.std() <= 40.0


@pytest.mark.parametrize("signal", [0.0, DEMO_SIGNAL])
def test_a_day_shows_every_fifteen_minute_class(signal: float) -> None:
    ticks = simulate_session(NIFTY, MONDAY, seed=9, signal=signal)

    classes = set(label_ticks(ticks, NIFTY)["label_15m"].dropna())

    assert classes == set(LABELS_15M)


def test_without_signal_order_flow_does_not_predict_the_price() -> None:
    # Over 40 seeds (ten days each) this correlation was -0.004 +/- 0.031, never beyond 0.09.
    assert abs(flow_correlation(signal=0.0, seed=21)) < 0.12


def test_with_signal_order_flow_predicts_the_price() -> None:
    # Over 40 seeds (ten days each) this correlation was 0.26 +/- 0.03, never below 0.19.
    assert flow_correlation(signal=DEMO_SIGNAL, seed=21) > 0.15
