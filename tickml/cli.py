"""`tickml` command line: each subcommand is a thin wrapper over pipelines/, serving/ and orchestration/."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import threading

from tickml.backtest import add_command as add_backtest_command
from tickml.data_commands import _date, add_commands
from tickml.stack import add_command as add_stack_command
from tickml.train import add_command as add_train_command


def _signal(args: argparse.Namespace) -> float:
    """--signal, or the demo's signal (imported only when needed: the simulator is slow to import)."""
    if args.signal is not None:
        return args.signal
    from pipelines.simulate import DEMO_SIGNAL

    return DEMO_SIGNAL


def _demo(args: argparse.Namespace) -> int:
    from tickml.demo import run_demo

    summary = run_demo(
        days=args.days, live_minutes=args.live_minutes, speed=args.speed, seed=args.seed, signal=_signal(args)
    )
    print(summary.render())
    return 0


def _serve(args: argparse.Namespace) -> int:
    from feature_store.instruments import UNIVERSE_ENV, get_universe
    from tickml.service import serve_command

    try:
        universe = get_universe(args.universe)
    except KeyError as exc:
        print(f"tickml serve: {exc.args[0]}", file=sys.stderr)
        return 2
    os.environ[UNIVERSE_ENV] = universe.name
    from pipelines import registry

    names = [universe.model_name(base) for base in (registry.MODEL_15M, registry.MODEL_30M)]
    command = serve_command(args.port, args.host)
    try:
        versions = [registry.vetted_champion(name) for name in names]
        what = " and ".join(f"models:/{n}@champion (v{v})" for n, v in zip(names, versions, strict=True))
    except Exception as exc:  # noqa: BLE001 - the service starts anyway: not ready, retrying
        what = f"nothing yet ({' '.join(str(exc).split())}); /readyz answers 503 until a champion passes the gate"
    print(f"serving {what} (universe {universe.name}) on {args.host}:{args.port}", flush=True)
    os.execv(command[0], command)  # replace this process so signals reach bentoml directly
    return 0


def _ui(args: argparse.Namespace) -> int:
    from tickml.ui import run_ui

    return run_ui(args.host, args.dagster_port, args.mlflow_port)


def _stream(args: argparse.Namespace) -> int:
    from feature_store.store import open_store
    from pipelines.shards import Shard
    from pipelines.streaming import MAX_TICKS_PER_PASS, ScoringClient, run_stream

    max_ticks = MAX_TICKS_PER_PASS if args.max_ticks is None else args.max_ticks
    if max_ticks < 1:
        print(f"--max-ticks must be at least 1, got {max_ticks}", file=sys.stderr)
        return 2
    try:
        shard = Shard.parse(args.shard) if args.shard else None
    except ValueError as exc:
        print(f"--shard: {exc}", file=sys.stderr)
        return 2
    store, stop, status = open_store(), threading.Event(), 0
    reporter = _LazyReporter(
        store
    )  # opened on the first scored pass: a stream starts without waiting on Dagster
    try:
        with ScoringClient(args.url) as client:
            steps = run_stream(
                store,
                client,
                poll_interval=args.interval,
                stop=stop,
                cursor_name=args.cursor if shard is None else f"{args.cursor}-{shard.index}of{shard.count}",
                max_ticks=max_ticks,
                owns=None if shard is None else shard.owns,
                backfill=args.backfill,
            )
            for step in steps:  # run_stream logs failures and refusals; a failed pass yields too
                reporter.add(step, flush=args.once)
                if step.ticks_scored:
                    print(
                        f"scored {step.ticks_scored} ticks, stored {step.predictions_stored} predictions",
                        flush=True,
                    )
                if args.once:
                    if step.error:
                        print(f"stream pass failed (service {args.url}): {step.error}", file=sys.stderr)
                        status = 1
                    break
            steps.close()
    except KeyboardInterrupt:
        stop.set()
    finally:
        reporter.flush()
        store.close()
    return status


class _LazyReporter:
    """What `tickml stream` scored, reported to the Dagster instance as `live_predictions` (opened when
    there is something to report); when the instance cannot be opened it says why once and the stream runs
    on without it."""

    def __init__(self, store) -> None:
        self._store, self._reporter, self._failed = store, None, False

    def add(self, step, *, flush: bool = False) -> None:
        if step.progress and self._reporter is None and not self._failed:
            try:
                from orchestration.local import local_instance
                from orchestration.serving.live import ProgressReporter

                self._reporter = ProgressReporter(local_instance(), self._store)
            except Exception as exc:  # noqa: BLE001 - the predictions are the stream's job, the report is extra
                print(f"tickml stream: not reporting to Dagster ({exc})", file=sys.stderr)
                self._failed = True
        if self._reporter is not None:
            self._reporter.add(step, flush=flush)

    def flush(self) -> None:
        if self._reporter is not None:
            self._reporter.flush()


def _feed(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from feature_store.instruments import get_instrument
    from feature_store.store import open_store
    from pipelines.feed import play
    from pipelines.simulate import simulate_session

    instrument = get_instrument(args.symbol)
    ticks = simulate_session(instrument, args.day, seed=args.seed, signal=_signal(args))
    if ticks.empty:
        print(f"{args.day} is not a trading day for {args.symbol}", file=sys.stderr)
        return 2
    if args.minutes:
        ticks = ticks[ticks["ts"] < ticks["ts"].iloc[0] + dt.timedelta(minutes=args.minutes)]
    store = open_store()
    try:
        with tqdm(
            total=len(ticks), desc=f"feeding {args.symbol} {args.day} at {args.speed:g}x", unit="tick"
        ) as bar:
            play(ticks, store, speed=args.speed, on_write=lambda batch: bar.update(len(batch)))
    except KeyboardInterrupt:
        return 130
    finally:
        store.close()
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from feature_store.instruments import get_instrument
    from feature_store.store import open_store
    from pipelines.simulate import simulate_session

    instrument, store, stored = get_instrument(args.symbol), open_store(), 0
    try:
        for day in tqdm(instrument.trading_days(args.start, args.days), desc="simulating", unit="day"):
            stored += store.write_ticks(
                simulate_session(instrument, day, seed=args.seed, signal=_signal(args))
            )
    finally:
        store.close()
    print(f"stored {stored:,} new ticks of {args.symbol}")
    return 0


def _sim_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--symbol", default="NIFTY", help="instrument from instruments.yaml (default NIFTY)")
    p.add_argument("--seed", type=int, default=7, help="simulator seed (default 7)")
    p.add_argument(
        "--signal",
        type=float,
        default=None,
        help="order-flow signal strength (default: the demo's, pipelines.simulate.DEMO_SIGNAL); 0 = random walk",
    )


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="tickml",
        description="Machine learning on market ticks: Dagster assets, MLflow models, BentoML live scoring. "
        "Stores default to the project (TICKML_HOME, DAGSTER_HOME, MLFLOW_TRACKING_URI); "
        "set TICKML_PG_URL to keep ticks in PostgreSQL.",
    )
    sub = root.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("demo", help="simulate, train, register, serve and stream: the whole path in minutes")
    p.add_argument("--days", type=int, default=10, help="training days to simulate (default 10)")
    p.add_argument("--live-minutes", type=int, default=35, help="market minutes streamed live (default 35)")
    p.add_argument("--speed", type=float, default=60.0, help="live replay speed, x real time (default 60)")
    p.add_argument("--seed", type=int, default=7, help="simulator seed (default 7)")
    p.add_argument(
        "--signal",
        type=float,
        default=None,
        help="simulator signal strength (default: the demo's, pipelines.simulate.DEMO_SIGNAL); 0 is a random "
        "walk, where the gate must refuse and nothing is served",
    )
    p.set_defaults(func=_demo)

    p = sub.add_parser("serve", help="serve both @champion models over HTTP with `bentoml serve`")
    p.add_argument("--port", type=int, default=3001, help="HTTP port (default 3001)")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1, this machine only; 0.0.0.0 exposes it: put "
        "authentication in front)",
    )
    p.add_argument(
        "--universe", default="default", help="the universe whose champions to serve (default 'default')"
    )
    p.set_defaults(func=_serve)

    p = sub.add_parser(
        "stream",
        help="continuously score new ticks from the store through the service",
        description="Scores new ticks from the tick store through the service, stores the predictions exactly "
        "once and reports what it scored to Dagster as materialisations of live_predictions (symbol × day).",
    )
    p.add_argument(
        "--url",
        default=os.environ.get("TICKML_SERVICE_URL", "http://127.0.0.1:3001"),
        help="scoring service URL (default $TICKML_SERVICE_URL or http://127.0.0.1:3001)",
    )
    p.add_argument(
        "--interval", type=float, default=0.2, help="seconds between polls of the store (default 0.2)"
    )
    p.add_argument(
        "--cursor", default="stream", help="name of the cursor kept in the store (default 'stream')"
    )
    p.add_argument(
        "--max-ticks",
        type=int,
        default=None,
        help="ticks per pass at most (default 2000, well inside the service's replay cache)",
    )
    p.add_argument(
        "--once",
        action="store_true",
        help="one pass (at most --max-ticks), then exit: 0 when it ran, 1 when the service or store failed",
    )
    p.add_argument(
        "--backfill",
        action="store_true",
        help="a cursor never saved starts at each symbol's first stored tick (default: the live edge, today's "
        "session, else after each symbol's last stored tick)",
    )
    p.add_argument(
        "--shard",
        default=None,
        metavar="I/N",
        help="stream only the symbols of shard I of N, to the replica started with TICKML_SHARD=I/N "
        "(its own cursor, '<cursor>-IofN')",
    )
    p.set_defaults(func=_stream)

    p = sub.add_parser(
        "ui",
        help="the Dagster UI and the MLflow UI in one command (`make ui`); Ctrl-C or SIGTERM stops both",
        description="Runs `dagster dev` on the project's workspace and `mlflow ui` on its tracking store, "
        "and stops both with everything they started on Ctrl-C, SIGINT or SIGTERM, or when either exits.",
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address both listen on (default 127.0.0.1; anyone who reaches them can launch runs and "
        "register models: put authentication in front before widening it)",
    )
    p.add_argument("--dagster-port", type=int, default=3000, help="Dagster UI port (default 3000)")
    p.add_argument("--mlflow-port", type=int, default=5000, help="MLflow UI port (default 5000)")
    p.set_defaults(func=_ui)

    p = sub.add_parser("feed", help="play a simulated session into the tick store at N x speed")
    _sim_options(p)
    p.add_argument(
        "--day", type=_date, default=dt.date.today(), help="trading day YYYY-MM-DD (default today)"
    )
    p.add_argument("--speed", type=float, default=1.0, help="x real time (default 1)")
    p.add_argument("--minutes", type=int, default=None, help="only the first N market minutes")
    p.set_defaults(func=_feed)

    p = sub.add_parser("simulate", help="write simulated sessions straight into the tick store")
    _sim_options(p)
    p.add_argument("--start", type=_date, required=True, help="first day YYYY-MM-DD")
    p.add_argument("--days", type=int, default=1, help="number of trading days (default 1)")
    p.set_defaults(func=_simulate)
    add_commands(sub)
    add_train_command(sub)
    add_backtest_command(sub)
    add_stack_command(sub)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from tickml.env import apply_defaults  # after parsing: --help needs no pandas

    apply_defaults()
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
