"""LOBSTER files (message + orderbook, NASDAQ, seconds after local midnight) -> canonical ticks."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from feature_store.instruments import get_instrument
from pipelines.sources.common import drop_crossed, finish

MESSAGE_COLUMNS = ("time", "type", "order_id", "size", "price", "direction")
BOOK_COLUMNS = ("ask", "ask_size", "bid", "bid_size")
EXECUTIONS = (4, 5)  # visible and hidden executions; every other type is a book (quote) event
HALT = 7
PRICE_SCALE = 10_000
# LOBSTER fills an empty book side with these dummy prices.
EMPTY_ASK, EMPTY_BID = 9_999_999_999, -9_999_999_999
_NAME = re.compile(r"^(?P<ticker>[^_]+)_(?P<date>\d{4}-\d{2}-\d{2})_\d+_\d+_message_(?P<levels>\d+)\.csv$")


def read_lobster(message_path: str | Path, orderbook_path: str | Path | None = None) -> pd.DataFrame:
    """Canonical ticks from a LOBSTER message file and its orderbook file (found beside it by name).

    The symbol and date come from the file name; times are converted from America/New_York (the
    instrument's time zone) to UTC. Executions (types 4, 5) are trades whose aggressor is opposite to
    the resting order's direction; other events are quotes carrying the last trade price (the mid
    before the first trade). Halt rows (type 7) are skipped and counted. seq is the file row number.
    """
    message_path = Path(message_path)
    match = _NAME.match(message_path.name)
    if match is None:
        raise ValueError(
            f"{message_path.name} is not a LOBSTER message file name (TICKER_DATE_START_END_message_N.csv)"
        )
    if orderbook_path is None:
        orderbook_path = message_path.with_name(message_path.name.replace("_message_", "_orderbook_"))
    instrument = get_instrument(match["ticker"])

    messages = pd.read_csv(message_path, header=None, names=list(MESSAGE_COLUMNS))
    # Deeper files repeat the four columns per level; level 1 is the first four.
    book = pd.read_csv(orderbook_path, header=None, usecols=range(4), names=list(BOOK_COLUMNS))
    if len(book) != len(messages):
        raise ValueError(f"{orderbook_path} has {len(book)} rows but {message_path} has {len(messages)}")
    rows_read = len(messages)

    midnight_ns = pd.Timestamp(match["date"], tz=instrument.timezone).value
    # float seconds carry ns precision: < 2**53 ns in a day, so rounding recovers the integer exactly.
    ts_ns = midnight_ns + np.rint(messages["time"].to_numpy() * 1e9).astype(np.int64)

    ask = book["ask"].where(book["ask"] < EMPTY_ASK) / PRICE_SCALE
    bid = book["bid"].where(book["bid"] > EMPTY_BID) / PRICE_SCALE
    traded = messages["type"].isin(EXECUTIONS)
    trade_price = (messages["price"] / PRICE_SCALE).where(traded)
    price = trade_price.ffill().fillna((bid + ask) / 2)
    size = messages["size"].astype(np.float64).where(traded, 0.0)
    ticks = pd.DataFrame(
        {
            "ts": ts_ns,
            "symbol": instrument.symbol,
            "seq": np.arange(rows_read, dtype=np.int64),
            "price": price,
            "size": size,
            "volume": size.cumsum(),
            "side": (-messages["direction"]).where(traded, 0),
            "bid": bid,
            "ask": ask,
            "bid_size": book["bid_size"].astype(np.float64).where(bid.notna()),
            "ask_size": book["ask_size"].astype(np.float64).where(ask.notna()),
        }
    )
    halted = (messages["type"] == HALT).to_numpy()
    ticks, crossed = drop_crossed(ticks.loc[~halted])
    return finish(
        ticks,
        source="lobster",
        path=message_path,
        rows_read=rows_read,
        skipped={"trading_halt": int(halted.sum()), "crossed_book": crossed},
    )
