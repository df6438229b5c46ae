"""Dhan broker feed captures (NSE futures, one row per feed packet, IST wall times) -> tick candidates."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from feature_store.instruments import instrument_for
from pipelines.sources.chunk import Candidates, Rules, Source
from pipelines.sources.csvfile import CsvFile
from pipelines.sources.rows import CsvRows

VENUE = "NSE"
DEFAULT_SYMBOL = "NIFTY"
COLUMNS = ("time", "type", "ltp", "volume", "oi", "bid_price_1", "bid_qty_1", "ask_price_1", "ask_qty_1")
PACKETS = ("full", "oi")
RULES = Rules(size_from_volume=True, cumulative_volume=False, snap_to_tick=True)


def open_dhan(path: str | Path, *, symbol: str | None = None, chunk_rows: int = 500_000) -> Source:
    """Tick candidates from a Dhan capture of `symbol` (default NIFTY); `time` is IST without a zone.

    `full` packets are ticks: size is the increase of the cumulative `volume` (0 on the day's first
    row), side the tick rule where size > 0, prices snapped to the tick (the feed sends float32). `oi`
    packets carry only open interest: each becomes a quote-only tick (size 0) with the new open interest
    and the last price, volume and book carried forward, so no packet is dropped. Other packet types are
    unparseable. A price of 0 is an empty book side.
    """
    symbol = symbol or DEFAULT_SYMBOL
    timezone = instrument_for(symbol, VENUE).timezone
    file = CsvFile(path, required=COLUMNS)

    def chunks() -> Iterator[Candidates]:
        for lines in file.chunks(chunk_rows):
            yield _candidates(CsvRows(lines, file.names, list(COLUMNS), file.delimiter), symbol, timezone)

    return Source(file.path, VENUE, RULES, chunks())


def _candidates(rows: CsvRows, symbol: str, timezone: str) -> Candidates:
    packet = rows.text("type").str.strip()
    rows.bad(
        ~packet.isin(PACKETS).to_numpy() & rows.problems.ok,
        lambda w: [
            f"type={packet.iloc[i]!r} is not a Dhan packet type handled ({', '.join(PACKETS)})" for i in w
        ],
    )
    ts = rows.timestamp("time", tz=timezone)
    values = {
        "price": rows.number("ltp"),
        "volume": rows.number("volume"),
        "oi": rows.number("oi"),
        "bid": rows.number("bid_price_1"),
        "bid_size": rows.number("bid_qty_1"),
        "ask": rows.number("ask_price_1"),
        "ask_size": rows.number("ask_qty_1"),
    }
    symbols = np.full(len(rows), symbol, dtype=object)
    return Candidates(rows.rows, rows.raw, rows.problems, symbols, ts, None, values)
