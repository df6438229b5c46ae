"""`tickml train`: a universe's ticks, labels and features, then its models, through Dagster in this process."""

from __future__ import annotations

import argparse
import sys
import time


def _universe(args: argparse.Namespace):
    """The universe to train: --universe, or the one holding exactly --symbols (declared when new)."""
    from feature_store.instruments import declare_universe, get_universe, universe_of

    if args.universe and args.symbols:
        universe = get_universe(args.universe)
        if sorted(universe.symbols) != sorted(args.symbols):
            raise ValueError(
                f"universe {universe.name} is {list(universe.symbols)}, not {args.symbols}; give one of "
                "--universe or --symbols"
            )
        return universe
    if args.universe:
        return get_universe(args.universe)
    if args.symbols:
        universe = universe_of(args.symbols)
        return declare_universe(universe.name, list(universe.symbols))
    return get_universe()


def _training_config(args: argparse.Namespace) -> dict:
    boost = {"num_boost_round": args.boost_rounds}
    return {
        "ops": {
            "training_dataset": {"config": {"stride": args.stride, "holdout_days": args.holdout_days}},
            "shap_feature_sets": {"config": {"k": args.k}},
            "direction_15m_model": {"config": boost},
            "direction_30m_model": {"config": boost},
        }
    }


def train(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from feature_store.store import open_store

    try:
        universe = _universe(args)
    except (KeyError, ValueError) as exc:
        print(f"tickml train: {exc.args[0]}", file=sys.stderr)
        return 2
    store = open_store()
    try:
        days = {symbol: store.days(symbol) for symbol in universe.symbols}
    finally:
        store.close()
    empty = [symbol for symbol, stored in days.items() if not stored]
    if empty:
        print(
            f"tickml train: no ticks of {', '.join(empty)} in the store ({store!r}); ingest them first "
            "(`tickml ingest FILE... --format F`)",
            file=sys.stderr,
        )
        return 2

    from orchestration.local import run_ticks, run_training, sync_partitions

    sync_partitions()
    print(f"universe {universe.name}: {', '.join(universe.symbols)}", flush=True)
    timings, failed = {}, []
    for symbol, stored in tqdm(
        days.items(), desc="ticks → labels → features (one run per symbol)", unit="symbol"
    ):
        started = time.monotonic()
        result = run_ticks(symbol, stored)
        timings[symbol] = time.monotonic() - started
        failed += [
            f"{c.check_name} on {symbol}" for c in result.get_asset_check_evaluations() if not c.passed
        ]
        print(
            f"  {symbol}: {len(stored)} trading days {stored[0]} .. {stored[-1]} in one run ({result.run_id[:8]}), "
            f"{timings[symbol]:.1f} s",
            flush=True,
        )
    started = time.monotonic()
    with tqdm(total=1, desc="dataset → SHAP → models → champions", unit="run") as bar:
        outcomes, result = run_training(universe.name, _training_config(args))
        bar.update()
    seconds = time.monotonic() - started
    print(f"training run {result.run_id[:8]}: {seconds:.1f} s")
    for name, outcome in outcomes.items():
        verdict = "promoted" if outcome["promoted"] else "not promoted"
        print(
            f"  {name} v{outcome['version']} {verdict}; champion v{outcome['champion']}: {outcome['reason']}"
        )
    if failed:
        print(f"asset checks failed: {', '.join(failed)} (see the runs in the Dagster UI)", file=sys.stderr)
    print(f"serve these champions: tickml serve --universe {universe.name}")
    return 0


def add_command(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train a universe's models on the days in the store, through Dagster (runs show in the UI)",
        description="Runs ticks_job over each symbol's stored trading days (one run per symbol), then "
        "training_job for the universe: dataset, SHAP feature sets, both direction models registered "
        "under the universe's names, champion promotion. The default universe owns direction-15m and "
        "direction-30m; another universe gets direction-15m-<name> and direction-30m-<name>.",
    )
    p.add_argument(
        "--symbols", nargs="+", metavar="SYMBOL", help="symbols to pool (a universe is declared for them)"
    )
    p.add_argument("--universe", help="a configured universe (default: 'default', unless --symbols)")
    p.add_argument("--stride", type=int, default=5, help="keep every k-th tick of a day (default 5)")
    p.add_argument(
        "--holdout-days", type=int, default=2, help="last days of each symbol held out (default 2)"
    )
    p.add_argument("--k", type=int, default=71, help="features kept by SHAP per horizon (default 71)")
    p.add_argument("--boost-rounds", type=int, default=200, help="LightGBM boosting rounds (default 200)")
    p.set_defaults(func=train)
