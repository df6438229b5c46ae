"""`tickml ingest`, `tickml store stats` and `tickml features list|parity`: data in, and what it holds."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

FORMATS = ("lobster", "b3", "dhan", "kite", "mapped", "binance")  # tested equal to pipelines.sources.FORMATS


def _ingest(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from feature_store.store import open_store
    from pipelines.ingest import ingest_files

    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        print(f"tickml ingest: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    if args.format == "mapped" and args.mapping is None:
        print("--format mapped needs --mapping FILE (see docs/ingest.md)", file=sys.stderr)
        return 2
    bar = None

    def progress(rows: int) -> None:
        nonlocal bar
        if bar is None:  # shown once rows flow: a refused file leaves stderr to the one line saying why
            bar = tqdm(desc=f"ingesting {len(args.paths)} {args.format} file(s)", unit="row")
        bar.update(rows)

    store = open_store()
    try:
        report = ingest_files(
            args.paths,
            args.format,
            store,
            mapping=args.mapping,
            symbol=args.symbol,
            date=args.date,
            progress=progress,
        )
    # a hostile file (SourceFileError: every file is checked before any is stored), a bad mapping or header
    except (ValueError, FileNotFoundError, KeyError) as exc:
        print(f"tickml ingest: refused {exc}", file=sys.stderr)
        return 2
    finally:
        if bar is not None:
            bar.close()
        store.close()
    print(report.table())
    _sync_partitions()
    if not report.accounted:
        print("not every row read was stored or quarantined: see the table above", file=sys.stderr)
        return 1
    return 0


def _sync_partitions() -> None:
    """Give Dagster the new symbols and trading days now (the daemon's sensor would within 30 s)."""
    from orchestration.local import sync_partitions

    try:
        counts = sync_partitions()
    except Exception as exc:  # noqa: BLE001 - the ticks are stored; partitions follow with the sensor
        print(
            f"Dagster partitions not updated ({exc}); the tick_store_partitions sensor adds them",
            file=sys.stderr,
        )
        return
    print(
        f"Dagster partitions: {counts['symbols']} symbol(s) x {counts['trading_days']} trading day(s), "
        f"{counts['universes']} universe(s)"
    )


def _stats(args: argparse.Namespace) -> int:
    from feature_store.store import open_store

    store = open_store()
    try:
        rows = store.stats()
    finally:
        store.close()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("the store holds no ticks and no quarantined rows")
        return 0
    print(f"{'symbol':<10} {'day':<10} {'ticks':>10} {'quarantined':>12}  reasons")
    for r in rows:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(r["reasons"].items())) or "-"
        print(f"{r['symbol']:<10} {r['day'] or '?':<10} {r['ticks']:>10,} {r['quarantined']:>12,}  {reasons}")
    return 0


def _features_list(args: argparse.Namespace) -> int:
    from feature_store.features import catalogue

    rows = catalogue()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        print(f"{r['name']:<{width}}  {r['group']:<14} {r['description']}")
    print(f"\n{len(rows)} features")
    return 0


def _features_parity(args: argparse.Namespace) -> int:
    from feature_store.features import parity_report
    from feature_store.instruments import instrument_for
    from pipelines.sources import read_source
    from pipelines.sources.preflight import SourceFileError, check_file

    try:
        check_file(args.path, args.format)
    except SourceFileError as exc:
        print(f"tickml features parity: refused {exc}", file=sys.stderr)
        return 2
    source = read_source(args.path, args.format, mapping=args.mapping, symbol=args.symbol)
    ticks = source.ticks
    if ticks.empty:
        print(f"{args.path}: no valid ticks to compare", file=sys.stderr)
        return 2
    worst_ok = True
    for symbol, group in ticks.groupby("symbol", sort=True):
        report = parity_report(group.reset_index(drop=True), instrument_for(str(symbol), source.venue))
        worst_ok &= report.ok
        print(report.render() if hasattr(report, "render") else report)
    return 0 if worst_ok else 1


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register ingest, store and features on the root parser's subcommands."""
    p = sub.add_parser(
        "ingest", help="ingest recorded tick files; every row is stored or quarantined with a reason"
    )
    p.add_argument(
        "paths", nargs="+", type=Path, metavar="PATH", help="files to ingest (LOBSTER: the message file)"
    )
    p.add_argument("--format", required=True, choices=FORMATS, help="source format")
    p.add_argument("--mapping", type=Path, help="column-mapping YAML for --format mapped (docs/ingest.md)")
    p.add_argument("--symbol", help="symbol to store the ticks under (default: from the file)")
    p.add_argument("--date", type=_date, help="trading day YYYY-MM-DD when the file name does not say it")
    p.set_defaults(func=_ingest)

    store = sub.add_parser("store", help="what the tick store holds").add_subparsers(
        dest="store_command", required=True
    )
    p = store.add_parser(
        "stats", help="per symbol and trading day: ticks stored and rows quarantined by reason"
    )
    p.add_argument(
        "--json", action="store_true", help="a JSON list of {symbol, day, ticks, quarantined, reasons}"
    )
    p.set_defaults(func=_stats)

    features = sub.add_parser(
        "features", help="the feature catalogue and batch/online parity"
    ).add_subparsers(dest="features_command", required=True)
    p = features.add_parser("list", help="every feature: name, group, description")
    p.add_argument("--json", action="store_true", help="a JSON list of {name, group, description}")
    p.set_defaults(func=_features_list)
    p = features.add_parser("parity", help="run both engines over a file; exit 1 when they disagree")
    p.add_argument("path", type=Path, help="a tick file in one of the ingest formats")
    p.add_argument("--format", required=True, choices=FORMATS, help="source format")
    p.add_argument("--mapping", type=Path, help="column-mapping YAML for --format mapped")
    p.add_argument("--symbol", help="symbol override")
    p.set_defaults(func=_features_parity)


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a date as YYYY-MM-DD, got {text!r}") from exc
