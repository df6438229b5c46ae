"""B3 UMDF market-data captures (book and trade events, network time in UTC) -> tick candidates."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from pipelines.sources.chunk import Candidates, Rules, Source
from pipelines.sources.csvfile import CsvFile
from pipelines.sources.rows import CsvRows, per_value

VENUE = "B3"
COLUMNS = (
    "symbol",
    "rpt_seq",
    "network_received_time",
    "event_type",
    "md_entry_px",
    "md_entry_size",
    "aggressor",
    "en_s_px_1",
    "en_b_px_1",
)
# Aggressor codes, read off the data: 4-trades print at/above the mid on up-ticks (buyer),
# 3-trades at/below it on down-ticks (seller), 2-trades show no lean (crosses, auctions).
AGGRESSOR_SIDE = {4.0: 1.0, 3.0: -1.0, 2.0: 0.0}
RULES = Rules(explicit_seq=True, exchange_seq=True, cumulative_volume=True, snap_to_tick=True)


def open_b3(path: str | Path, *, symbol: str | None = None, chunk_rows: int = 500_000) -> Source:
    """Tick candidates from a B3 capture; ts is network_received_time (UTC), seq is rpt_seq.

    Trades carry md_entry_px/md_entry_size and the aggressor code; book rows are quotes (size 0) that
    carry the last trade price (the mid before the day's first trade). The best bid/ask is on every
    row (a blank side repeats the last one); bid/ask sizes are not in the feed (NaN); volume is the
    cumulative traded size of the stored ticks; prices are snapped to the tick (float artefacts such as
    33.980000000000004). `symbol` replaces the file's symbol column. Unknown event types and aggressor
    codes are unparseable.
    """
    file = CsvFile(path, required=COLUMNS)

    def chunks() -> Iterator[Candidates]:
        for lines in file.chunks(chunk_rows):
            yield _candidates(CsvRows(lines, file.names, list(COLUMNS), file.delimiter), symbol)

    return Source(file.path, VENUE, RULES, chunks())


def _candidates(rows: CsvRows, symbol: str | None) -> Candidates:
    event = rows.text("event_type").str.strip()
    rows.bad(
        ~event.isin(["book", "trade"]).to_numpy() & rows.problems.ok,
        lambda w: [f"event_type={event.iloc[i]!r} is neither book nor trade" for i in w],
    )
    trade = (event == "trade").to_numpy()
    seq = rows.number("rpt_seq", required=True)
    rows.bad(
        rows.problems.ok & ((seq < 0) | (seq != np.floor(seq))),
        lambda w: [f"rpt_seq={seq[i]!r} is not a sequence number" for i in w],
    )
    ts = rows.timestamp("network_received_time")
    price = rows.number("md_entry_px")
    size = rows.number("md_entry_size")
    code = rows.number("aggressor")
    side = np.select([code == c for c in AGGRESSOR_SIDE], list(AGGRESSOR_SIDE.values()), np.nan)
    rows.bad(
        trade & rows.problems.ok & np.isnan(size),
        lambda w: ["md_entry_size is missing on a trade"] * len(w),
    )
    rows.bad(
        trade & rows.problems.ok & np.isnan(side),
        lambda w: [f"aggressor={code[i]!r} is not a B3 aggressor code (4 buy, 3 sell, 2 none)" for i in w],
    )
    if symbol is None:
        symbols = per_value(rows.text("symbol").str.strip())
    else:
        symbols = np.full(len(rows), symbol, dtype=object)
    values = {
        # book rows are quotes: their price is carried forward, nothing trades
        "price": np.where(trade, price, np.nan),
        "size": np.where(trade, size, 0.0),
        "side": np.where(trade, side, 0.0),
        "bid": rows.number("en_b_px_1"),
        "ask": rows.number("en_s_px_1"),
    }
    seq = np.where(np.isnan(seq), -1, seq).astype(np.int64)
    return Candidates(rows.rows, rows.raw, rows.problems, symbols, ts, seq, values)
