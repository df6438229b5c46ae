"""The backtest as people read it: one table of every strategy on the same ticks, a plain verdict, and
two figures (equity with drawdown, net P&L per day)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines.backtest.engine import BacktestResult
from pipelines.plots import plt

COLUMNS = {  # metric -> column header ({cur}: the venue's currency)
    "trades": "trades",
    "hit_rate": "hit rate",
    "pnl_points": "P&L points",
    "pnl_net": "net P&L {cur}",
    "costs": "costs {cur}",
    "sharpe": "Sharpe",
    "sharpe_lower": "Sharpe 95% low",
    "sortino": "Sortino",
    "max_drawdown": "max drawdown {cur}",
    "turnover": "turnover /session",
    "avg_holding_min": "avg hold min",
    "break_even_cost": "break-even {cur}/trade",
}


def _cell(value: object, metric: str) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    if metric == "trades":
        return f"{int(value):,}"
    if metric == "hit_rate":
        return f"{value:.0%}"
    if metric in ("pnl_net", "costs", "max_drawdown", "break_even_cost"):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"
    return f"{value:.2f}"


def display_table(result: BacktestResult) -> pd.DataFrame:
    """The table as text cells: one row per strategy, the models first."""
    cur = result.instrument.trading.currency
    table = result.table()
    out = pd.DataFrame(index=table.index)
    for metric, header in COLUMNS.items():
        out[header.format(cur=cur)] = [_cell(v, metric) for v in table[metric]]
    out["beats flat (StepM)"] = [_cell(bool(v), "superior") for v in table["superior"]]
    return out


def markdown_table(result: BacktestResult) -> str:
    table = display_table(result)
    header = "| strategy | " + " | ".join(table.columns) + " |"
    rule = "|---|" + "---:|" * (len(table.columns) - 1) + "---|"
    rows = [
        f"| {name} | " + " | ".join(row) + " |" for name, row in zip(table.index, table.values, strict=True)
    ]
    return "\n".join([header, rule, *rows])


def _top_reasons(reasons: np.ndarray, top: int = 3) -> str:
    """The commonest trade-filter reasons with their share of ticks (numbers folded, so 'confidence
    0.41 < 0.60' and 'confidence 0.52 < 0.60' count as one)."""
    folded = pd.Series(reasons).str.replace(r"\d+(\.\d+)?", "#", regex=True)
    shares = folded.value_counts(normalize=True).head(top)
    return ", ".join(f"{reason} {share:.0%}" for reason, share in shares.items())


def verdict(result: BacktestResult) -> list[str]:
    """What the table says, in sentences a trader can act on."""
    cur = result.instrument.trading.currency
    table = result.table()
    rules = table[table["kind"] == "rule"]
    lines = []
    if result.model is not None:
        who = result.model.name
        champ = table.loc[who]
        if champ["trades"] == 0:
            lines.append(
                f"The {who}' trade filter allowed no trade on these days; its reasons, most common first: "
                f"{_top_reasons(result.model.decisions.reason)}."
            )
        else:
            lines.append(
                f"After costs the {who} made {champ['pnl_net']:,.0f} {cur} on {int(champ['trades'])} "
                f"trades (Sharpe {champ['sharpe']:.2f}, 95% lower bound {champ['sharpe_lower']:.2f})."
            )
        if not rules.empty and champ["trades"] == 0:
            best = rules["pnl_net"].idxmax()
            lines.append(
                f"The best rule after costs is {best} ({rules.loc[best, 'pnl_net']:,.0f} {cur}); the {who} did "
                "not trade, so there is nothing to compare with the rules."
            )
        elif not rules.empty:
            best = rules["pnl_net"].idxmax()
            beats = bool((champ["pnl_net"] > rules["pnl_net"]).all())
            lines.append(
                f"The best rule after costs is {best} ({rules.loc[best, 'pnl_net']:,.0f} {cur}): the {who} "
                f"{'beat' if beats else 'do not beat'} every rule after costs."
            )
    comparison = result.comparison
    if comparison.superior:
        lines.append(
            f"Beating not trading once all {comparison.tried} strategies are accounted for (Romano–Wolf "
            f"StepM at 5%): {', '.join(comparison.superior)}; SPA p-value of the best {comparison.spa_pvalue:.3f}."
        )
    else:
        spa = "–" if np.isnan(comparison.spa_pvalue) else f"{comparison.spa_pvalue:.3f}"
        lines.append(
            f"None of the {comparison.tried} strategies beats not trading once the number tried is accounted "
            f"for (SPA p-value of the best {spa}; Romano–Wolf StepM at 5%: none)."
        )
    return lines


def markdown(result: BacktestResult) -> str:
    """The whole report: span, models, table, verdict, how it was computed."""
    inst, days = result.instrument, result.days
    models = ", ".join(f"{n} v{v}" for n, v in result.models.items()) or "none (rules only)"
    t = inst.trading
    return "\n".join(
        [
            f"# Backtest: {inst.symbol} ({inst.venue}), {len(days)} sessions {days[0]} .. {days[-1]}",
            "",
            f"{result.ticks:,} ticks replayed through the serving code path; models {models}. Fills at the "
            f"touch (no book: {t.slippage_ticks:g} tick slippage); costs {t.commission_bps:g} bps + "
            f"{t.fee_per_order:g} {t.currency} per order; one position of {t.point_value:g} {t.currency} "
            f"per point. Sharpe and Sortino from 30-minute block returns, annualised by "
            f"{inst.sessions_per_year()} sessions a year.",
            "",
            summary(result),
            "",
        ]
    )


def summary(result: BacktestResult) -> str:
    """The table and the verdict under it: what the demo prints and the promotion report quotes."""
    return "\n".join([markdown_table(result), "", *verdict(result)])


def _session_starts(result: BacktestResult) -> tuple[np.ndarray, list[pd.Timestamp]]:
    """Market hours before each session of the replay (sessions laid end to end), and each session's open."""
    bounds = [result.instrument.session_bounds(day) for day in result.days]
    lengths = np.array([(close - open_).total_seconds() / 3600 for open_, close in bounds])
    return np.concatenate([[0.0], np.cumsum(lengths)[:-1]]), [open_ for open_, _ in bounds]


def _session_hours(result: BacktestResult, ts: pd.Series) -> np.ndarray:
    """Market time of UTC `ts`: hours into its session plus the length of the sessions before it, so the
    nights and weekends between sessions take no room on a plot."""
    offsets, opens = _session_starts(result)
    index = {day: k for k, day in enumerate(result.days)}
    days = result.instrument.trading_day(ts).map(index).to_numpy(int)
    since_open = pd.DatetimeIndex(ts) - pd.DatetimeIndex([opens[k] for k in days])
    return offsets[days] + since_open.total_seconds().to_numpy() / 3600


def _session_axis(ax, result: BacktestResult) -> None:
    starts, _ = _session_starts(result)
    for x in starts[1:]:
        ax.axvline(x, color="grey", lw=0.5, ls=":")
    step = max(1, len(starts) // 12)
    ax.set_xticks(starts[::step], [str(d) for d in result.days[::step]], rotation=30, ha="right")
    ax.set_xlabel("session (market hours only)")


def equity_figure(result: BacktestResult):
    """Cumulative net P&L of every strategy at each round trip's exit, and its drawdown below."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 5.5), sharex=True, height_ratios=(2, 1))
    for name, strategy in result.strategies.items():
        trades = strategy.trades
        if trades.empty:
            continue
        x = _session_hours(result, trades["exit_ts"])
        equity = trades["net"].cumsum().to_numpy()
        drawdown = equity - np.maximum.accumulate(np.maximum(equity, 0.0))
        style = {"lw": 2.2, "color": "black"} if strategy.kind == "model" else {"lw": 1.0}
        top.step(x, equity, where="post", label=name, **style)
        bottom.step(x, drawdown, where="post", **style)
    cur = result.instrument.trading.currency
    top.axhline(0, color="grey", lw=0.6)
    top.set_ylabel(f"net P&L ({cur})")
    top.legend(fontsize=7, ncol=2)
    top.set_title(f"{result.instrument.symbol}: equity after costs, every strategy on the same ticks")
    bottom.set_ylabel(f"drawdown ({cur})")
    _session_axis(bottom, result)
    fig.tight_layout()
    return fig


def daily_figure(result: BacktestResult):
    """Net P&L per session of every strategy, side by side."""
    days = list(result.days)
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(days) + 3), 3.8))
    width = 0.8 / max(len(result.strategies), 1)
    for k, (name, strategy) in enumerate(result.strategies.items()):
        trades = strategy.trades
        by_day = (
            trades.groupby(result.instrument.trading_day(trades["exit_ts"]).to_numpy())["net"].sum()
            if not trades.empty
            else pd.Series(dtype=float)
        )
        values = [float(by_day.get(day, 0.0)) for day in days]
        ax.bar(np.arange(len(days)) + k * width, values, width, label=name)
    ax.axhline(0, color="grey", lw=0.6)
    ax.set_xticks(np.arange(len(days)) + 0.4 - width / 2, [str(d) for d in days], rotation=30, ha="right")
    ax.set_ylabel(f"net P&L ({result.instrument.trading.currency})")
    ax.set_title(f"{result.instrument.symbol}: net P&L per session")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig
