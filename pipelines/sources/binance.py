"""Binance combined-stream captures (`<receive ns> <json>` lines, often gzip; spot and futures) -> tick candidates."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from math import isfinite
from pathlib import Path

import numpy as np

from pipelines.sources.chunk import NAT, Candidates, Problems, Rules, Source
from pipelines.sources.lines import LineChunk, line_chunks, open_binary

VENUE = "CRYPTO"
RULES = Rules(explicit_seq=True, exchange_seq=True, cumulative_volume=True)
# seq = exchange id * SEQ_KINDS + kind: trade ids, aggregate-trade ids and book update ids are separate
# counters that can take the same value, so the kind in the low bits keeps (symbol, day, seq) unique while
# seq stays exchange-derived (seq // SEQ_KINDS is the id Binance sent).
TRADE, QUOTE, AGG_TRADE = 0, 1, 2
SEQ_KINDS = 4
INT64_MAX = int(np.iinfo(np.int64).max)
MAX_ID = (INT64_MAX - SEQ_KINDS) // SEQ_KINDS
# A receive time below this (1973) is not epoch nanoseconds: a recorder writing ms or s.
MIN_RECEIVE_NS = 10**17
TICK_KINDS = ("trade", "aggTrade", "bookTicker")
TRADE_KINDS = {"trade": ("t", TRADE), "aggTrade": ("a", AGG_TRADE)}
BOOK_FIELDS = frozenset("usbBaA")  # a raw (unwrapped) spot bookTicker: no event type field
# Non-tick messages, by how the ingest table names them.
DEPTH_UPDATE, PARTIAL_DEPTH, REST_SNAPSHOT, REPLY = (
    "depth update",
    "partial depth",
    "REST snapshot",
    "subscription reply",
)
_FIELDS = ("price", "size", "side", "bid", "ask", "bid_size", "ask_size")  # the Candidates values stated
NAN = float("nan")
_NO_VALUES = (NAN,) * len(_FIELDS)
# The stdlib's C scanner called directly: 0.20 s for the sample's 41,249 lines against 0.37 s by json.loads
# (its per-call encoding detection), so no third-party JSON parser is needed at these rates.
_SCAN = json.JSONDecoder().scan_once


class _Bad(Exception):
    """A line that is no readable stream message; the text is the quarantine detail."""


def open_binance(path: str | Path, *, symbol: str | None = None, chunk_rows: int = 500_000) -> Source:
    """Tick candidates from a Binance WebSocket capture: one `<receive ns> <json>` line per message.

    `trade` and `aggTrade` messages are trades: price `p`, size `q` (base asset on spot, contracts on
    coin-margined futures such as BTCUSD_PERP), aggressor -1 when `m` (the buyer was the maker, so the
    seller took liquidity) else +1; bid/ask are the last quote's, carried forward by validation.
    `bookTicker` messages are quotes: best bid `b`/`B` and ask `a`/`A`, size 0, the last trade price carried.
    The symbol is the message's `s` unless `symbol` says otherwise; symbols are on the 24-hour CRYPTO venue
    (the UTC day is the trading day).

    ts is the recorder's receive time (ns, UTC) for every message: the spot `bookTicker` carries no
    exchange time, and the recorder's clock runs about 1.27 s behind the exchange's `E`, so exchange time
    for trades beside receive time for quotes would put each trade ~1.27 s away from the book it hit.
    One clock keeps trades and quotes in the order they were seen; the trading day follows it too.

    seq is the exchange's id (`t`, `a` or `u`) times SEQ_KINDS plus the kind, and (symbol, trading day,
    seq) is the tick's identity, so a second capture of the same messages stores nothing new. Depth
    updates, partial depth, REST snapshots (no `stream` wrapper) and subscription replies are not ticks:
    they are counted in `Source.not_ticks` by kind, as are other streams (by their event type). When one
    file holds both `trade` and `aggTrade` for a symbol, the stream seen second repeats the first's trades
    and is quarantined as `duplicate`. A line without the receive time, broken JSON, a message of no
    known shape, a missing field or a value of the wrong type is `unparseable` (`truncated` for a last
    line the file cuts short).
    """
    path = Path(path).resolve()
    not_ticks: Counter[str] = Counter()
    reader = _Reader(symbol, not_ticks)

    def chunks() -> Iterator[Candidates]:
        with open_binary(path) as handle:
            for lines in line_chunks(handle, chunk_rows):
                candidates = reader.candidates(lines)
                if len(candidates):
                    yield candidates

    return Source(path, VENUE, RULES, chunks(), not_ticks)


class _Reader:
    """Parses line chunks in file order, remembering which trade stream each symbol's trades come from."""

    def __init__(self, symbol: str | None, not_ticks: Counter[str]) -> None:
        self.symbol = symbol
        self.not_ticks = not_ticks
        self.trade_stream: dict[str, str] = {}  # symbol -> "trade" or "aggTrade", the first one seen

    def candidates(self, lines: LineChunk) -> Candidates:
        """Candidates of the chunk's tick-bearing lines (and of the lines that do not parse)."""
        at, ts, seq, symbols, values, bad, duplicate = [], [], [], [], [], {}, {}
        data, starts, stops = lines.data, lines.starts.tolist(), lines.stops.tolist()
        for i, (a, b) in enumerate(zip(starts, stops, strict=True)):
            try:
                event = self._event(data[a:b])
            except _Bad as exc:
                bad[len(at)] = str(exc)
                event = (NAT, "", -1, _NO_VALUES, "")
            if event is None:
                continue
            if event[4]:
                duplicate[len(at)] = event[4]
            at.append(i)
            ts.append(event[0])
            symbols.append(event[1])
            seq.append(event[2])
            values.append(event[3])
        return self._pack(lines, at, ts, seq, symbols, values, bad, duplicate)

    def _event(self, line: bytes) -> tuple | None:
        """(ts, symbol, seq, values, duplicate detail or "") of a tick line; None for a message that is not
        a tick (counted in `not_ticks`); raises _Bad for a line that does not parse."""
        try:
            text = line.decode()
        except UnicodeDecodeError as exc:
            raise _Bad(f"not UTF-8: {exc}") from None
        head, _, body = text.partition(" ")
        if not (head.isascii() and head.isdigit()) or not body:
            raise _Bad("line does not start with the recorder's receive time (ns) and a space")
        ts = int(head)
        if not MIN_RECEIVE_NS <= ts <= INT64_MAX:
            raise _Bad(f"receive time {head} is not epoch nanoseconds")
        message = _json(body)
        kind, fields = self._kind(message)
        if kind not in TICK_KINDS:
            self.not_ticks[kind] += 1
            return None
        symbol = self.symbol or fields.get("s")
        if type(symbol) is not str or not symbol:
            symbol = _text(fields, "s", kind)  # raises, naming what is wrong
        if kind == "bookTicker":
            seq = _id(fields, "u", kind) * SEQ_KINDS + QUOTE
            bid, bid_size = _number(fields, "b", kind), _number(fields, "B", kind)
            ask, ask_size = _number(fields, "a", kind), _number(fields, "A", kind)
            return ts, symbol, seq, (NAN, 0.0, 0.0, bid, ask, bid_size, ask_size), ""
        id_field, code = TRADE_KINDS[kind]
        seq = _id(fields, id_field, kind) * SEQ_KINDS + code
        price, size = _number(fields, "p", kind), _number(fields, "q", kind)
        maker = fields.get("m")
        if maker is not True and maker is not False:
            raise _Bad(
                f"{kind} lacks field 'm'" if "m" not in fields else f"{kind} m={maker!r} is not true or false"
            )
        repeats = ""
        first = self.trade_stream.setdefault(symbol, kind)
        if first != kind:
            repeats = f"{kind} of {symbol} repeats the trades of its {first} stream in this file"
        return ts, symbol, seq, (price, size, -1.0 if maker else 1.0, NAN, NAN, NAN, NAN), repeats

    @staticmethod
    def _kind(message) -> tuple[str, dict]:
        """The message's kind (a TICK_KINDS name, or how the ingest table names a non-tick) and its fields."""
        if type(message) is dict:  # the common case first: a combined-stream tick message
            stream, fields = message.get("stream"), message.get("data")
            if type(stream) is str and type(fields) is dict:
                kind = stream[stream.find("@") + 1 :]
                if kind in TICK_KINDS:
                    return kind, fields
        if not isinstance(message, dict):
            raise _Bad(f"a JSON {type(message).__name__}, not a stream message")
        if "stream" in message:  # a combined stream: {"stream": "btcusdt@trade", "data": {...}}
            stream, fields = message["stream"], message.get("data")
            if not isinstance(stream, str) or not isinstance(fields, dict):
                raise _Bad("combined-stream message without a stream name and a data object")
            kind = stream.partition("@")[2].partition("@")[0]
            if kind == "depth":
                return DEPTH_UPDATE, fields
            if kind.startswith("depth"):
                return PARTIAL_DEPTH, fields
            if kind in TICK_KINDS:
                return kind, fields
            return f"{fields.get('e') or kind} message", fields
        if "lastUpdateId" in message and "bids" in message:  # GET /api/v3/depth (or /dapi/v1/depth)
            return REST_SNAPSHOT, message
        if "id" in message and ("result" in message or "error" in message):
            return REPLY, message
        kind = message.get("e")
        if kind is None and BOOK_FIELDS <= message.keys():
            return "bookTicker", message
        if kind == "depthUpdate":
            return DEPTH_UPDATE, message
        if kind in TICK_KINDS:
            return kind, message
        if isinstance(kind, str) and kind:
            return f"{kind} message", message
        raise _Bad("not a Binance market-data message (no stream, no event type)")

    def _pack(self, lines, at, ts, seq, symbols, values, bad, duplicate) -> Candidates:
        n = len(at)
        at = np.asarray(at, dtype=np.int64)
        problems = Problems(n)
        if bad:
            where = np.fromiter(bad, dtype=np.int64, count=len(bad))
            cut = np.zeros(n, dtype=bool)
            if lines.cut and at[where[-1]] == len(lines) - 1:
                cut[where[-1]] = True
            problems.flag(
                cut, "truncated", lambda w: [f"file ends inside this line ({bad[int(i)]})" for i in w]
            )
            mask = np.zeros(n, dtype=bool)
            mask[where] = True
            problems.flag(mask, "unparseable", lambda w: [bad[int(i)] for i in w])
        if duplicate:
            mask = np.zeros(n, dtype=bool)
            mask[list(duplicate)] = True
            problems.flag(mask, "duplicate", lambda w: [duplicate[int(i)] for i in w])
        matrix = np.array(values, dtype=np.float64).reshape(n, len(_FIELDS))

        def raw(positions: np.ndarray) -> list[str]:
            return [lines.text(int(at[p])) for p in positions]

        return Candidates(
            lines.rows[at],
            raw,
            problems,
            np.array(symbols, dtype=object),
            np.array(ts, dtype=np.int64),
            np.array(seq, dtype=np.int64),
            {name: matrix[:, k] for k, name in enumerate(_FIELDS)},
        )


def _json(text: str):
    """The one JSON value `text` holds (the C scanner, without json.loads' per-call overhead)."""
    try:
        value, end = _SCAN(text, 0)
    except StopIteration:
        raise _Bad("not JSON: expecting a value at char 0") from None
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise _Bad(f"not JSON: {exc}") from None
    if end != len(text) and text[end:].strip():
        raise _Bad(f"not JSON: extra data at char {end}")
    return value


def _field(fields: dict, name: str, kind: str):
    if name not in fields:
        raise _Bad(f"{kind} lacks field {name!r}")
    return fields[name]


def _text(fields: dict, name: str, kind: str) -> str:
    value = _field(fields, name, kind)
    if not isinstance(value, str) or not value:
        raise _Bad(f"{kind} {name}={value!r} is not a symbol")
    return value


def _id(fields: dict, name: str, kind: str) -> int:
    value = fields.get(name)
    if type(value) is int and 0 <= value <= MAX_ID:  # not a bool: type(True) is bool
        return value
    raise _Bad(f"{kind} {name}={_field(fields, name, kind)!r} is not an id")


def _number(fields: dict, name: str, kind: str) -> float:
    """A decimal string (Binance's form) or a JSON number; NaN and infinities are not numbers here."""
    value = fields.get(name)
    kind_of = type(value)
    try:
        number = float(value) if kind_of is str or kind_of is float or kind_of is int else NAN
    except ValueError:
        number = NAN
    if not isfinite(number):
        _field(fields, name, kind)  # a missing field says so
        raise _Bad(f"{kind} {name}={value!r} is not a number")
    return number
