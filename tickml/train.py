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


def training_config(
    *,
    stride: int,
    holdout_days: int,
    k: int,
    folds: int,
    trials: int,
    timeout_s: float,
    families: list[str],
    rows: str = "all",
) -> dict:
    """The run config of `training_job`: dataset, SHAP, folds and the challenge of both models."""
    challenge = {"trials": trials, "timeout_s": timeout_s, "families": families, "rows": rows}
    return {
        "ops": {
            "training_dataset": {"config": {"stride": stride, "holdout_days": holdout_days}},
            "shap_feature_sets": {"config": {"k": k}},
            "walk_forward_folds": {"config": {"folds": folds}},
            "direction_15m_model": {"config": challenge},
            "direction_30m_model": {"config": challenge},
        }
    }


def print_outcomes(outcomes: dict[str, dict]) -> None:
    """One line per model: candidate, gate verdict with its numbers, and the champion afterwards."""
    for name, o in outcomes.items():
        verdict = "PROMOTED" if o["promoted"] else "REFUSED"
        scores = ", ".join(f"{k} {v:.4f}" for k, v in o["walk_forward"].items())
        print(f"  {name}: walk-forward mean log loss {scores} (candidate: {o['flavor']})")
        print(
            f"  {name} v{o['version']} {verdict} by the gate: held-out log loss {o['candidate_log_loss']:.4f} "
            f"vs training prior {o['prior_log_loss']:.4f}, 95% lower bound of the gain {o['lower_bound']:+.4f}; "
            f"champion: {'v' + o['champion'] if o['champion'] else 'none'}"
        )


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
        outcomes, result = run_training(
            universe.name,
            training_config(
                stride=args.stride,
                holdout_days=args.holdout_days,
                k=args.k,
                folds=args.folds,
                trials=args.trials,
                timeout_s=args.timeout,
                families=args.families,
                rows=args.rows,
            ),
        )
        bar.update()
    seconds = time.monotonic() - started
    print(f"training run {result.run_id[:8]}: {seconds:.1f} s")
    print_outcomes(outcomes)
    if failed:
        print(f"asset checks failed: {', '.join(failed)} (see the runs in the Dagster UI)", file=sys.stderr)
    if all(o["champion"] for o in outcomes.values()):
        print(f"serve these champions: tickml serve --universe {universe.name}")
    else:
        print(
            "no champion for " + ", ".join(n for n, o in outcomes.items() if not o["champion"]) + ": nothing "
            "to serve there until a version passes the gate (more days, or a market with more to learn); "
            "each version's promotion report is in MLflow"
        )
    return 0


def add_command(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train a universe's models on the days in the store, through Dagster (runs show in the UI)",
        description="Runs ticks_job over each symbol's stored trading days (one run per symbol), then "
        "training_job for the universe: dataset, SHAP feature sets, purged walk-forward folds, a "
        "LightGBM-vs-CatBoost challenge tuned by Optuna per horizon, the candidates registered under the "
        "universe's names, and the promotion gate (champion only past the training prior). The default "
        "universe owns direction-15m and direction-30m; another universe gets "
        "direction-15m-<name> and direction-30m-<name>.",
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
    p.add_argument("--folds", type=int, default=3, help="walk-forward folds (default 3)")
    p.add_argument(
        "--trials", type=int, default=4, help="Optuna trials per model family and horizon (default 4)"
    )
    p.add_argument(
        "--timeout", type=float, default=25.0, help="Optuna seconds per family and horizon (default 25)"
    )
    p.add_argument(
        "--families",
        nargs="+",
        default=["lightgbm", "catboost"],
        choices=["lightgbm", "catboost"],
        help="model families that challenge each other (default both)",
    )
    p.add_argument(
        "--rows",
        default="all",
        choices=["all", "consensus", "consensus_weight"],
        help="training rows: every labelled tick (default), the consensus filter's, or all with consensus "
        "rows weighted up",
    )
    p.set_defaults(func=train)
