"""`tickml backtest`: stored sessions of one symbol replayed through the serving code path, the models
beside the rule baselines, after costs."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tickml.data_commands import _date


def backtest(args: argparse.Namespace) -> int:
    from mlflow.exceptions import MlflowException
    from tqdm import tqdm

    from feature_store.instruments import get_instrument, get_universe, load_universes
    from feature_store.store import open_store
    from pipelines import registry
    from pipelines.backtest import report
    from pipelines.backtest.engine import run_backtest, session_ticks
    from pipelines.scoring import load_pair
    from pipelines.trade_filter import TradeFilterConfig

    try:
        instrument = get_instrument(args.symbol)
    except KeyError as exc:
        print(f"tickml backtest: {exc.args[0]}", file=sys.stderr)
        return 2
    store = open_store()
    try:
        stored = store.days(instrument.symbol)
        days = [
            d
            for d in stored
            if (args.start is None or d >= args.start) and (args.end is None or d <= args.end)
        ]
        if not days:
            span = f"{stored[0]} .. {stored[-1]}" if stored else "none"
            print(
                f"tickml backtest: no stored {instrument.symbol} sessions between {args.start or 'the first'} "
                f"and {args.end or 'the last'} (stored: {span})",
                file=sys.stderr,
            )
            return 2
        ticks = session_ticks(store, instrument, days)
    finally:
        store.close()

    champions, label = None, "champions"
    if not args.rules_only:
        refs = args.model
        if refs and any("/" in r or ("@" in r and not r.endswith("@champion")) for r in refs):
            label = "models"
        if not refs:
            universe = next(
                (u for u in load_universes().values() if instrument.symbol in u.symbols), get_universe()
            )
            refs = [universe.model_name(registry.MODEL_15M)]
        try:
            champions = load_pair(refs)
        except (LookupError, ValueError, MlflowException) as exc:
            print(
                f"tickml backtest: {exc.args[0] if exc.args else exc}; or run the rules alone with --rules-only",
                file=sys.stderr,
            )
            return 3
    overrides = {} if args.min_confidence is None else {"min_confidence": args.min_confidence}
    try:
        config = TradeFilterConfig.for_instrument(instrument, **overrides)
    except ValueError as exc:
        print(f"tickml backtest: --min-confidence: {exc}", file=sys.stderr)
        return 2
    trained_on = _trained_on(champions) if champions is not None else set()
    seen = sorted(trained_on & {str(d) for d in days})
    if seen:
        print(
            f"tickml backtest: warning: the models trained on {len(seen)} of these sessions "
            f"({seen[0]} .. {seen[-1]}): those results are in-sample; --start after "
            f"{max(trained_on)} replays only sessions they never saw",
            file=sys.stderr,
        )
    with tqdm(total=len(ticks), desc=f"replaying {instrument.symbol}", unit="tick", unit_scale=True) as bar:
        result = run_backtest(instrument, ticks, champions, config=config, progress=bar.update, label=label)
    if args.json:
        table = result.table().reset_index()
        print(json.dumps({"symbol": instrument.symbol, "days": [str(d) for d in result.days],
                          "models": result.models, "spa_pvalue": _finite(result.comparison.spa_pvalue),
                          "strategies": json.loads(table.to_json(orient="records"))}, indent=2))  # fmt: skip
    else:
        print(report.markdown(result))
        if result.model is not None:
            speed = f"{result.ticks_per_second:,.0f} ticks/s (features, both models, filter)"
            print(f"replayed {result.ticks:,} ticks at {speed}")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "backtest.md").write_text(report.markdown(result))
        report.equity_figure(result).savefig(out / "equity.png", dpi=110)
        report.daily_figure(result).savefig(out / "daily_pnl.png", dpi=110)
        for name, strategy in result.strategies.items():
            strategy.trades.to_csv(
                out / f"trades_{name.replace(' ', '_').replace(',', '_')}.csv", index=False
            )
        print(f"report, plots and trades in {out}", file=sys.stderr)
    return 0


def add_command(sub) -> None:
    p = sub.add_parser(
        "backtest",
        help="replay stored sessions through the serving code: models and rule baselines after costs",
        description="Replays a symbol's stored sessions through the online features, both models, the combined "
        "signal and the trade filter (the code the service runs), fills at the touch with the venue's "
        "costs, and runs the rule baselines (RSI, MACD, momentum, price change, Bollinger, a weighted vote) "
        "on the same ticks. Prints one table and a verdict that accounts for how many strategies were "
        "compared (SPA, Romano-Wolf StepM).",
    )
    p.add_argument("--symbol", required=True, help="a stored symbol (e.g. NIFTY, PETR4)")
    p.add_argument(
        "--model",
        action="append",
        metavar="NAME[@ALIAS]|NAME/VERSION",
        help="a model to backtest, e.g. direction-15m@champion or direction-15m-petr4/1; one brings its "
        "other-horizon partner at the same alias (default: the symbol's universe's champions)",
    )
    p.add_argument("--rules-only", action="store_true", help="no models: the rule baselines alone")
    p.add_argument("--start", type=_date, help="first session, YYYY-MM-DD (default: the first stored)")
    p.add_argument("--end", type=_date, help="last session, YYYY-MM-DD (default: the last stored)")
    p.add_argument(
        "--min-confidence", type=float, help="the trade filter's confidence threshold (default: the venue's)"
    )
    p.add_argument("--json", action="store_true", help="print the table as JSON")
    p.add_argument("--out", metavar="DIR", help="also write the report, the two plots and the trades here")
    p.set_defaults(func=backtest)


def _trained_on(champions) -> set[str]:
    """The sessions (YYYY-MM-DD) either model's version trained on, from its `train_days` tag."""
    days: set[str] = set()
    for model in (champions.model_15m, champions.model_30m):
        days |= set(filter(None, model.tags.get("train_days", "").split(",")))
    return days


def _finite(x: float) -> float | None:
    """`x`, or None (JSON null) when it is NaN."""
    return None if x != x else x
