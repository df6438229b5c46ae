"""Backtest metrics: annualised by sessions, drawdown, break-even cost, and the comparison that knows
how many strategies were tried."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from feature_store.instruments import get_instrument
from pipelines.backtest.metrics import BLOCK, Period, block_returns, compare, sharpe_lower_bound, summarize

NIFTY = get_instrument("NIFTY")
START = pd.Timestamp("2025-01-06 04:00", tz="UTC")


def period(instrument=NIFTY, blocks: int = 24, sessions: int = 2, capital: float = 1e6) -> Period:
    return Period(instrument, pd.date_range(START, periods=blocks, freq=BLOCK), sessions, capital)


def trades(nets, gross=None, minutes_apart: int = 30) -> pd.DataFrame:
    n = len(nets)
    entry = pd.date_range(START, periods=n, freq=f"{minutes_apart}min")
    gross = np.asarray(gross if gross is not None else nets, dtype=float)
    return pd.DataFrame(
        {
            "entry_ts": entry,
            "exit_ts": entry + pd.Timedelta(minutes=10),
            "points": gross / 75.0,
            "gross": gross,
            "costs": gross - np.asarray(nets, dtype=float),
            "net": np.asarray(nets, dtype=float),
            "notional": 1e6,
        }
    )


def test_annualisation_counts_sessions_of_the_venue_not_252_bars() -> None:
    nse, crypto = period(), period(get_instrument("BTCUSDT"))

    assert nse.annualization == pytest.approx(12 * NIFTY.sessions_per_year())
    assert crypto.annualization == pytest.approx(12 * 365)


def test_block_returns_are_net_pnl_by_exit_block_over_capital() -> None:
    returns = block_returns(trades([1000.0, -500.0]), period())

    assert returns.iloc[:3].tolist() == [1e-3, -5e-4, 0.0]
    assert len(returns) == 24 and returns.iloc[2:].eq(0).all()


def test_sharpe_is_mean_over_std_scaled_by_blocks_per_year() -> None:
    rng = np.random.default_rng(3)
    nets = rng.normal(200.0, 1000.0, 24)
    p = period()

    metrics = summarize(trades(nets), p)

    r = nets / p.capital
    assert metrics["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * np.sqrt(p.annualization))


def test_drawdown_hit_rate_and_break_even_cost() -> None:
    metrics = summarize(trades([100.0, -300.0, 50.0], gross=[140.0, -260.0, 90.0]), period())

    assert metrics["max_drawdown"] == pytest.approx(-300.0)
    assert metrics["hit_rate"] == pytest.approx(2 / 3)
    assert metrics["pnl_net"] == pytest.approx(-150.0)


def test_at_the_break_even_cost_per_round_trip_the_net_pnl_is_zero() -> None:
    gross = np.array([140.0, -260.0, 190.0])
    even = summarize(trades(gross - 20.0, gross=gross), period())["break_even_cost"]

    at_break_even = summarize(trades(gross - even, gross=gross), period())

    assert even == pytest.approx(70.0 / 3)
    assert at_break_even["pnl_net"] == pytest.approx(0.0)
    # in bps of the positions' notional (1e6 each): the same cost over one position
    assert at_break_even["break_even_bps"] == pytest.approx(even / 1e6 * 1e4)


def test_no_trades_have_no_sharpe_and_no_drawdown() -> None:
    metrics = summarize(trades([]), period())

    assert metrics["trades"] == 0 and np.isnan(metrics["sharpe"]) and metrics["max_drawdown"] == 0.0


def test_the_sharpe_lower_bound_is_below_the_estimate_and_above_zero_for_a_steady_edge() -> None:
    rng = np.random.default_rng(5)
    steady = pd.Series(rng.normal(1e-3, 5e-4, 200))
    noise = pd.Series(rng.normal(0.0, 1e-3, 200))

    assert 0 < sharpe_lower_bound(steady, 3000.0) < summarize_sharpe(steady, 3000.0)
    assert sharpe_lower_bound(noise, 3000.0) < 0


def summarize_sharpe(returns: pd.Series, annualization: float) -> float:
    return float(returns.mean() / returns.std(ddof=1) * np.sqrt(annualization))


def test_one_real_edge_among_noise_is_found_and_named() -> None:
    rng = np.random.default_rng(7)
    returns = {f"noise {k}": pd.Series(rng.normal(0.0, 1e-3, 300)) for k in range(6)}
    returns["edge"] = pd.Series(rng.normal(8e-4, 1e-3, 300))

    comparison = compare(returns)

    assert comparison.spa_pvalue < 0.05
    assert comparison.superior == ("edge",)
    assert comparison.tried == 7


def test_the_best_of_many_noise_strategies_is_not_mistaken_for_an_edge() -> None:
    rng = np.random.default_rng(11)
    returns = {f"noise {k}": pd.Series(rng.normal(0.0, 1e-3, 300)) for k in range(7)}

    comparison = compare(returns)

    assert comparison.spa_pvalue > 0.05 and comparison.superior == ()


def test_strategies_that_never_traded_count_as_tried_but_cannot_win() -> None:
    rng = np.random.default_rng(13)
    returns = {"idle": pd.Series(np.zeros(300)), "edge": pd.Series(rng.normal(8e-4, 1e-3, 300))}

    comparison = compare(returns)

    assert comparison.tried == 2 and comparison.superior == ("edge",)
