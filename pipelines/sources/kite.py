"""Zerodha Kite Connect tick captures (NSE futures, full mode with 5-level depth, UTC) -> tick candidates."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from pipelines.sources.chunk import Candidates, Rules, Source
from pipelines.sources.csvfile import CsvFile
from pipelines.sources.rows import CsvRows, per_value

VENUE = "NSE"
COLUMNS = (
    "time",
    "trading_symbol",
    "last_price",
    "volume_traded",
    "oi",
    "aggressor_side",
    "bid_price_1",
    "bid_qty_1",
    "ask_price_1",
    "ask_qty_1",
)
AGGRESSOR_SIDE = {"BUY": 1.0, "SELL": -1.0, "NEUTRAL": np.nan, "": np.nan}  # NaN: the tick rule decides
RULES = Rules(size_from_volume=True, cumulative_volume=False, snap_to_tick=True)
# NSE futures contract names: root, 2-digit year, month, FUT (NIFTY25DECFUT -> NIFTY).
_FUTURE = re.compile(r"^(?P<root>.+?)\d{2}(?:JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC)FUT$")


def open_kite(path: str | Path, *, symbol: str | None = None, chunk_rows: int = 500_000) -> Source:
    """Tick candidates from a Kite capture; `time` is UTC.

    The symbol is the root of the futures contract in `trading_symbol` (NIFTY25DECFUT -> NIFTY; other
    names as they are) unless `symbol` says otherwise. size is the increase of `volume_traded` (0 on the
    day's first row: nothing to compare with). The app's `aggressor_side` is the side where the volume
    grew (its own `volume_delta` disagrees with `volume_traded` on about half the rows, so it is not
    used); NEUTRAL or blank leaves the side to the tick rule. A price of 0 is an empty book side.
    """
    file = CsvFile(path, required=COLUMNS)

    def chunks() -> Iterator[Candidates]:
        for lines in file.chunks(chunk_rows):
            yield _candidates(CsvRows(lines, file.names, list(COLUMNS), file.delimiter), symbol)

    return Source(file.path, VENUE, RULES, chunks())


def futures_root(name: str) -> str:
    """The underlying of an NSE futures contract name; any other name unchanged."""
    match = _FUTURE.match(name)
    return match["root"] if match else name


def _candidates(rows: CsvRows, symbol: str | None) -> Candidates:
    ts = rows.timestamp("time")
    aggressor = rows.text("aggressor_side").str.strip().str.upper()
    side = per_value(aggressor, lambda a: AGGRESSOR_SIDE.get(a, np.nan), dtype=np.float64)
    unknown = ~aggressor.isin(list(AGGRESSOR_SIDE)).to_numpy() & rows.problems.ok
    rows.bad(
        unknown, lambda w: [f"aggressor_side={aggressor.iloc[i]!r} is not BUY, SELL or NEUTRAL" for i in w]
    )
    if symbol is None:
        symbols = per_value(rows.text("trading_symbol").str.strip(), futures_root)
    else:
        symbols = np.full(len(rows), symbol, dtype=object)
    values = {
        "price": rows.number("last_price"),
        "volume": rows.number("volume_traded"),
        "oi": rows.number("oi"),
        "side": side,
        "bid": rows.number("bid_price_1"),
        "bid_size": rows.number("bid_qty_1"),
        "ask": rows.number("ask_price_1"),
        "ask_size": rows.number("ask_qty_1"),
    }
    return Candidates(rows.rows, rows.raw, rows.problems, symbols, ts, None, values)
