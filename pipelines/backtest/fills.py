"""From the trade filter's decisions to round trips: fills at the touch, each venue's costs.

A BUY fills at the tick's ask, a SELL at its bid; a tick without that side of the book fills at its price
plus (buy) or minus (sell) the venue's slippage in ticks. Every order pays commission (bps of its
notional) and the venue's fixed fee. A reversal is two orders: the open position closes and the new one
opens at the same tick. A position still open at the end of the replay closes at its last tick.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from feature_store.instruments import Instrument

TRADE_COLUMNS = (
    "symbol",
    "side",  # +1 long, -1 short
    "entry_ts",
    "entry_price",
    "exit_ts",
    "exit_price",
    "exit_reason",
    "points",  # (exit - entry) * side, at the fills
    "gross",  # points * point value, in the venue's currency
    "costs",  # commission and fees of both orders
    "net",  # gross - costs
    "notional",  # entry price * point value
)

END_OF_DATA = "end of data: closed at the last tick"


def fill_prices(instrument: Instrument, ticks: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(buy, sell) fill price of every tick: ask and bid where quoted, else price +/- slippage."""
    slip = instrument.trading.slippage_ticks * instrument.tick_size
    price = ticks["price"].to_numpy(np.float64)
    ask, bid = ticks["ask"].to_numpy(np.float64), ticks["bid"].to_numpy(np.float64)
    buy = np.where(np.isfinite(ask), ask, price + slip)
    sell = np.where(np.isfinite(bid), bid, price - slip)
    return buy, sell


def order_cost(instrument: Instrument, price: float) -> float:
    """Commission and fee of one order at `price`, in the venue's currency."""
    trading = instrument.trading
    return trading.commission_bps * 1e-4 * price * trading.point_value + trading.fee_per_order


def round_trips(
    instrument: Instrument, ticks: pd.DataFrame, action: np.ndarray, reason: np.ndarray
) -> pd.DataFrame:
    """Round trips (`TRADE_COLUMNS`, in exit order) of the decisions `action`/`reason` on `ticks`."""
    buy, sell = fill_prices(instrument, ticks)
    ts = ticks["ts"].array
    point_value = instrument.trading.point_value
    rows: list[tuple] = []
    open_side, open_row = 0, -1

    def close(row: int, why: str) -> None:
        entry = buy[open_row] if open_side > 0 else sell[open_row]
        exit_ = sell[row] if open_side > 0 else buy[row]
        points = (exit_ - entry) * open_side
        costs = order_cost(instrument, entry) + order_cost(instrument, exit_)
        gross = points * point_value
        rows.append(
            (instrument.symbol, open_side, ts[open_row], entry, ts[row], exit_, why, points, gross, costs,
             gross - costs, entry * point_value)
        )  # fmt: skip

    for row in np.flatnonzero(action != "NONE").tolist():
        what = action[row]
        if what == "EXIT":
            if open_side:
                close(row, reason[row])
            open_side = 0
            continue
        side = 1 if what == "BUY" else -1
        if open_side == -side:
            close(row, reason[row])
        open_side, open_row = side, row
    if open_side:
        close(len(ticks) - 1, END_OF_DATA)
    trades = pd.DataFrame(rows, columns=list(TRADE_COLUMNS))
    if trades.empty:
        trades = trades.astype({"side": "int64", "points": "float64", "gross": "float64", "net": "float64"})
        for c in ("entry_ts", "exit_ts"):
            trades[c] = pd.Series(dtype="datetime64[ns, UTC]")
    return trades
