"""LOBSTER message + orderbook files (NASDAQ, seconds after local midnight, any depth) -> tick candidates."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from itertools import zip_longest
from pathlib import Path

import numpy as np
import pandas as pd

from feature_store.instruments import instrument_for
from pipelines.sources.chunk import EMPTY, NAT, Candidates, Problems, Rules, Source
from pipelines.sources.csvfile import CsvFile
from pipelines.sources.lines import LineChunk
from pipelines.sources.rows import CsvRows

VENUE = "NASDAQ"
MESSAGE_COLUMNS = ("time", "type", "order_id", "size", "price", "direction")
QUOTES = (1, 2, 3)  # new limit order, partial cancel, delete: the book changed, nothing traded
EXECUTIONS = (4, 5)  # visible and hidden executions: `direction` is the resting order's side
CROSS = 6  # cross trade (auction): no aggressor
HALT = 7
PRICE_SCALE = 10_000
# LOBSTER fills an empty book side with these dummy prices.
EMPTY_ASK, EMPTY_BID = 9_999_999_999, -9_999_999_999
HALT_STATES = {-1.0: "trading halted", 0.0: "quoting resumed", 1.0: "trading resumed"}
# The message file is the exchange's ordered event stream of the day, so a message's index (its row) is the
# exchange's event number: (symbol, day, seq) identifies it. Hidden executions against several hidden orders
# print byte-identical rows at the same nanosecond (45 in the AMZN sample): distinct fills, not duplicates.
RULES = Rules(cumulative_volume=True, exchange_seq=True, repeat_is_duplicate=False)
NAME = re.compile(r"^(?P<ticker>[^_]+)_(?P<date>\d{4}-\d{2}-\d{2})_\d+_\d+_message_(?P<levels>\d+)\.csv$")


def book_columns(levels: int) -> list[str]:
    """The orderbook file's columns: ask price/size, bid price/size for each level, level 1 first."""
    return [f"{name}_{k}" for k in range(1, levels + 1) for name in ("ask", "ask_size", "bid", "bid_size")]


def open_lobster(
    message_path: str | Path,
    *,
    orderbook_path: str | Path | None = None,
    symbol: str | None = None,
    date: str | dt.date | None = None,
    chunk_rows: int = 500_000,
) -> Source:
    """Tick candidates from a LOBSTER message file and its orderbook file (found beside it by name).

    Symbol, date and depth come from LOBSTER's naming `SYM_YYYY-MM-DD_start_end_message_N.csv` unless
    `symbol`/`date` say otherwise (the depth is then read off the orderbook's first row: 4 columns per
    level). Row i of both files is one event; its time is seconds after midnight America/New_York
    (the instrument's zone), converted to UTC. Executions (types 4, 5) are trades whose aggressor is
    opposite to the resting order's direction; cross trades (6) have no aggressor; other events are quotes
    carrying the last trade price (the mid before the first trade). Level 1 gives bid/ask and their sizes.
    Trading-halt rows (type 7) are quarantined as outside_session: the market is not trading. seq is the
    row number, the message's index in the day's event stream (the event's identity); an event missing from
    either file (one file cut short) is truncated.
    """
    message_path = Path(message_path).resolve()
    match = NAME.match(message_path.name)
    if match is None and (symbol is None or date is None):
        raise ValueError(
            f"{message_path.name} is not named like a LOBSTER message file (SYM_YYYY-MM-DD_start_end_message_N.csv): "
            "give the symbol and the date"
        )
    if orderbook_path is None:
        orderbook_path = message_path.with_name(message_path.name.replace("_message_", "_orderbook_"))
        if orderbook_path == message_path or not orderbook_path.exists():
            raise FileNotFoundError(
                f"no orderbook file beside {message_path} (expected {orderbook_path.name})"
            )
    symbol = symbol or match["ticker"]
    day = pd.Timestamp(date or match["date"]).date()
    levels = int(match["levels"]) if match else _levels(Path(orderbook_path))
    midnight_ns = pd.Timestamp(day, tz=instrument_for(symbol, VENUE).timezone).value
    messages = CsvFile(message_path, names=MESSAGE_COLUMNS)
    books = CsvFile(orderbook_path, names=book_columns(levels))

    def chunks() -> Iterator[Candidates]:
        pairs = zip_longest(messages.chunks(chunk_rows), books.chunks(chunk_rows))
        for message_lines, book_lines in pairs:
            yield _candidates(message_lines, book_lines, books.names, symbol, midnight_ns)

    return Source(message_path, VENUE, RULES, chunks())


def _levels(orderbook_path: Path) -> int:
    with open(orderbook_path, "rb") as handle:
        fields = handle.readline().count(b",") + 1
    if fields % 4:
        raise ValueError(f"{orderbook_path}: {fields} columns is not 4 per level")
    return fields // 4


def _candidates(
    message_lines: LineChunk | None,
    book_lines: LineChunk | None,
    book_names: list[str],
    symbol: str,
    midnight_ns: int,
) -> Candidates:
    """Candidates of the events both files hold whole, then those only one file holds (truncated)."""
    k = min(len(message_lines or ()), len(book_lines or ()))
    both = Problems(k)
    first_row = (message_lines if message_lines is not None else book_lines).first_row
    messages = CsvRows(
        _head(message_lines, k, first_row), list(MESSAGE_COLUMNS), list(MESSAGE_COLUMNS), problems=both
    )
    book = CsvRows(_head(book_lines, k, first_row), book_names, book_names[:4], problems=both)
    values, ts = _events(messages, book, midnight_ns)

    def raw(positions: np.ndarray) -> list[str]:
        return [_raw(message_lines, book_lines, int(i)) for i in positions]

    longer = max(len(message_lines or ()), len(book_lines or ()))
    problems = Problems(longer)
    problems.reason[:k], problems.detail[:k], problems.ok[:k] = both.reason, both.detail, both.ok
    short = "orderbook" if len(book_lines or ()) < longer else "message"
    problems.flag(np.arange(longer) >= k, "truncated", f"the {short} file ends before this event")
    pad = longer - k
    return Candidates(
        np.arange(first_row, first_row + longer, dtype=np.int64),
        raw,
        problems,
        np.full(longer, symbol, dtype=object),
        np.concatenate([ts, np.full(pad, NAT)]),
        None,
        {name: np.concatenate([v, np.full(pad, np.nan)]) for name, v in values.items()},
    )


def _head(lines: LineChunk | None, k: int, first_row: int) -> LineChunk:
    if lines is None:
        return LineChunk(first_row, b"", np.empty(0, np.int64), np.empty(0, np.int64))
    if k == len(lines):
        return lines
    return LineChunk(lines.first_row, lines.data, lines.starts[:k], lines.stops[:k], cut=False)


def _raw(message_lines: LineChunk | None, book_lines: LineChunk | None, i: int) -> str:
    message = message_lines.text(i) if message_lines is not None and i < len(message_lines) else ""
    book = book_lines.text(i) if book_lines is not None and i < len(book_lines) else ""
    return f"{message} | {book}"


def _events(messages: CsvRows, book: CsvRows, midnight_ns: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    seconds = messages.number("time", required=True)
    kind = messages.number("type", required=True)
    size = messages.number("size", required=True)
    price = messages.number("price", required=True)
    direction = messages.number("direction", required=True)
    known = np.isin(kind, (*QUOTES, *EXECUTIONS, CROSS, HALT))
    messages.bad(
        messages.problems.ok & ~known, lambda w: [f"type={kind[i]!r} is not a LOBSTER event type" for i in w]
    )
    execution = np.isin(kind, EXECUTIONS)
    messages.bad(
        messages.problems.ok & execution & ~np.isin(direction, (1, -1)),
        lambda w: [f"direction={direction[i]!r} is neither 1 nor -1" for i in w],
    )
    messages.problems.flag(
        kind == HALT,
        "outside_session",
        lambda w: [f"trading halt message: {HALT_STATES.get(price[i], f'price={price[i]!r}')}" for i in w],
    )
    # float seconds carry ns precision: < 2**53 ns in a day, so rounding recovers the integer exactly.
    ts = np.full(len(seconds), NAT, dtype=np.int64)
    finite = np.isfinite(seconds)
    ts[finite] = midnight_ns + np.rint(seconds[finite] * 1e9).astype(np.int64)

    ask, bid = book.number("ask_1", required=True), book.number("bid_1", required=True)
    traded = execution | (kind == CROSS)
    values = {
        "price": np.where(traded, price / PRICE_SCALE, np.nan),
        "size": np.where(traded, size, 0.0),
        "side": np.where(execution, -direction, 0.0),
        "ask": np.where(ask >= EMPTY_ASK, EMPTY, ask / PRICE_SCALE),
        "bid": np.where(bid <= EMPTY_BID, EMPTY, bid / PRICE_SCALE),
        "ask_size": book.number("ask_size_1"),
        "bid_size": book.number("bid_size_1"),
    }
    return values, ts
