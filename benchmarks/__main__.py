"""Run every benchmark and print its table (figures are measured here and now, never asserted)."""

from __future__ import annotations

import argparse
import platform

from benchmarks import backtest, challenge, features, honesty, ingest, load, overhead, scoring

BENCHMARKS = ("features", "scoring", "overhead", "load", "backtest", "ingest", "challenge", "honesty")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--ticks", type=int, default=2000, help="single-tick requests per path (default 2000)"
    )
    parser.add_argument(
        "--minutes", type=float, default=5.0, help="minutes of sustained load per setting (default 5)"
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=BENCHMARKS,
        default=list(BENCHMARKS),
        help="benchmarks to run (default all)",
    )
    args = parser.parse_args()
    print(f"# tickml benchmarks on {platform.node()} ({platform.processor() or platform.machine()})\n")
    runs = {
        "features": features.run,
        "scoring": lambda: scoring.run(ticks=args.ticks),
        "overhead": lambda: overhead.run(requests=args.ticks),
        "load": lambda: load.run(minutes=args.minutes),
        "ingest": ingest.run,
        "backtest": backtest.run,
        "challenge": challenge.run,
        "honesty": honesty.run,
    }
    for name in args.only:
        print(runs[name](), end="\n\n", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
