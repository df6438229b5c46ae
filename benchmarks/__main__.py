"""Run every benchmark and print its table (figures are measured here and now, never asserted)."""

from __future__ import annotations

import argparse
import platform

from benchmarks import features, ingest, scoring


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--ticks", type=int, default=2000, help="single-tick requests per path (default 2000)"
    )
    args = parser.parse_args()
    print(f"# tickml benchmarks on {platform.node()} ({platform.processor() or platform.machine()})\n")
    print(features.run())
    print()
    print(scoring.run(ticks=args.ticks))
    print()
    print(ingest.run())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
