"""Backtest metrics: empyrical (empyrical-reloaded) for Sharpe, Sortino and drawdown, arch for the
bootstrap bound on Sharpe and for the comparison that knows how many strategies were tried.

Returns are the net P&L of each 30-minute block of the replayed sessions (realised at each round trip's
exit; a block without an exit earns 0) over the capital of one position (the first tick's notional).
Annualisation counts sessions, not bars: blocks per session x the venue's sessions per year
(`Instrument.sessions_per_year`). empyrical-reloaded is the maintained fork of Quantopian's empyrical
(used by zipline-reloaded and pyfolio-reloaded) and takes the annualisation factor directly; quantstats
would pull yfinance in and assumes daily bars.
"""

from __future__ import annotations

from dataclasses import dataclass

import empyrical
import numpy as np
import pandas as pd
from arch.bootstrap import SPA, StationaryBootstrap, StepM

from feature_store.instruments import Instrument

BLOCK = pd.Timedelta(minutes=30)
CONFIDENCE = 0.95
RESAMPLES = 999
SEED = 20261202  # bootstrap draws are fixed, so a report is reproducible


@dataclass(frozen=True)
class Period:
    """The replayed span of one symbol: its 30-minute blocks holding ticks and its sessions."""

    instrument: Instrument
    blocks: pd.DatetimeIndex  # UTC block starts, sorted
    sessions: int
    capital: float  # notional of one position at the first tick, in the venue's currency

    @classmethod
    def of(cls, instrument: Instrument, ticks: pd.DataFrame, sessions: int) -> Period:
        """The period of `ticks` (time order), which span `sessions` trading days."""
        ts = pd.DatetimeIndex(ticks["ts"])
        blocks = pd.DatetimeIndex(np.unique(ts.floor(BLOCK)))
        capital = float(ticks["price"].iloc[0]) * instrument.trading.point_value
        return cls(instrument, blocks, sessions, capital)

    @property
    def annualization(self) -> float:
        """Blocks per year: blocks per replayed session x the venue's sessions per year."""
        return len(self.blocks) / max(self.sessions, 1) * self.instrument.sessions_per_year()


def block_returns(trades: pd.DataFrame, period: Period) -> pd.Series:
    """Net P&L per block of `period` (by exit time) over its capital; 0 where nothing closed."""
    if trades.empty:
        return pd.Series(0.0, index=period.blocks)
    pnl = trades.groupby(pd.DatetimeIndex(trades["exit_ts"]).floor(BLOCK))["net"].sum()
    return pnl.reindex(period.blocks, fill_value=0.0) / period.capital


def _sharpe(returns: np.ndarray, annualization: float) -> float:
    return float(empyrical.sharpe_ratio(returns, annualization=annualization))


def sharpe_lower_bound(returns: pd.Series, annualization: float) -> float:
    """One-sided `CONFIDENCE` lower bound of the annualised Sharpe ratio: a stationary bootstrap of the
    block returns (mean resampling length n^(1/3), the usual rule of thumb), percentile interval."""
    values = returns.to_numpy(np.float64)
    if len(values) < 3 or np.std(values) == 0.0:
        return float("nan")
    per_session = max(2, round(len(values) ** (1 / 3)))
    bootstrap = StationaryBootstrap(per_session, values, seed=SEED)

    def sharpe(x: np.ndarray) -> float:
        return _sharpe(x, annualization) if np.std(x) > 0 else 0.0

    bound = bootstrap.conf_int(sharpe, reps=RESAMPLES, method="percentile", size=CONFIDENCE, tail="lower")
    return float(bound[0, 0])


def summarize(trades: pd.DataFrame, period: Period) -> dict[str, float]:
    """The metrics of one strategy's round trips over `period` (see the module docstring)."""
    returns = block_returns(trades, period)
    n = len(trades)
    net, gross = trades["net"].to_numpy(np.float64), trades["gross"].to_numpy(np.float64)
    equity = np.concatenate([[0.0], np.cumsum(net)])
    traded = 2.0 * trades["notional"].sum()  # both orders of each round trip
    holding = (trades["exit_ts"] - trades["entry_ts"]).dt.total_seconds() / 60.0 if n else pd.Series([])
    active = returns.std() > 0
    return {
        "trades": n,
        "hit_rate": float((net > 0).mean()) if n else float("nan"),
        "pnl_points": float(trades["points"].sum()),
        "pnl_gross": float(gross.sum()),
        "costs": float(trades["costs"].sum()),
        "pnl_net": float(net.sum()),
        "sharpe": _sharpe(returns.to_numpy(), period.annualization) if active else float("nan"),
        "sharpe_lower": sharpe_lower_bound(returns, period.annualization),
        "sortino": float(empyrical.sortino_ratio(returns.to_numpy(), annualization=period.annualization))
        if active
        else float("nan"),
        "max_drawdown": float((equity - np.maximum.accumulate(equity)).min()),
        "max_drawdown_pct": float(empyrical.max_drawdown(returns.to_numpy())) * 100.0,
        "turnover": traded / period.capital / max(period.sessions, 1),
        "avg_holding_min": float(holding.mean()) if n else float("nan"),
        # the cost per round trip at which net P&L would be 0: in currency, and in bps of the position's
        # notional (each round trip trades it twice, so `traded` / 2 is the notional of all positions)
        "break_even_cost": float(gross.sum() / n) if n else float("nan"),
        "break_even_bps": float(gross.sum() / traded * 1e4 * 2) if n else float("nan"),
    }


@dataclass(frozen=True)
class Comparison:
    """How strategies compare with not trading, knowing how many were tried."""

    spa_pvalue: float  # Hansen's SPA (consistent): does the best of them beat not trading?
    superior: tuple[str, ...]  # Romano-Wolf StepM at 1 - CONFIDENCE: each one that does
    tried: int


def compare(returns: dict[str, pd.Series]) -> Comparison:
    """SPA and StepM of every strategy's block returns against flat (0), on the same blocks.

    Strategies that never traded cannot beat flat and are left out of the bootstrap (a constant series
    has no variance to studentize); they still count in `tried`.
    """
    frame = pd.DataFrame(returns)
    active = frame.loc[:, frame.std() > 0]
    if active.empty or len(frame) < 3:
        return Comparison(float("nan"), (), len(returns))
    losses = -active
    benchmark = np.zeros(len(frame))
    block = max(2, round(len(frame) ** (1 / 3)))
    spa = SPA(benchmark, losses, block_size=block, reps=RESAMPLES, seed=SEED)
    spa.compute()
    stepm = StepM(benchmark, losses, size=1 - CONFIDENCE, block_size=block, reps=RESAMPLES, seed=SEED)
    stepm.compute()
    superior = tuple(str(name) for name in stepm.superior_models)
    return Comparison(float(spa.pvalues["consistent"]), superior, len(returns))
