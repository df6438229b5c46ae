"""Dhan broker feed captures (NSE futures, one row per feed packet, IST times) -> canonical ticks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from feature_store.instruments import get_instrument
from pipelines.sources.common import drop_crossed, finish, round_to_tick, tick_rule

EVENT_TYPE = "full"


def read_dhan(path: str | Path, symbol: str = "NIFTY") -> pd.DataFrame:
    """Canonical ticks from a Dhan capture of `symbol`; `time` (IST, no zone) is converted to UTC.

    `full` packets are the ticks; `oi` packets repeat only the open interest that every `full` row
    already carries, so they are skipped and counted, as are other packet types and rows whose
    cumulative volume goes backwards. size is the increase of the cumulative volume (0 on the first
    row: nothing to compare with), side the tick rule where size > 0; prices are snapped to the tick
    size (the feed sends float32).
    """
    instrument = get_instrument(symbol)
    raw = pd.read_csv(path)
    packet_types = raw["type"].value_counts()
    full = raw.loc[raw["type"] == EVENT_TYPE]
    backwards = full["volume"] < full["volume"].cummax()
    full = full.loc[~backwards]

    price = pd.Series(round_to_tick(full["ltp"], instrument.tick_size), index=full.index)
    size = full["volume"].diff().fillna(0.0)
    bid = pd.Series(round_to_tick(full["bid_price_1"], instrument.tick_size), index=full.index)
    ask = pd.Series(round_to_tick(full["ask_price_1"], instrument.tick_size), index=full.index)
    ticks = pd.DataFrame(
        {
            "ts": pd.to_datetime(full["time"], format="ISO8601").dt.tz_localize(instrument.timezone),
            "symbol": instrument.symbol,
            "seq": full.index.to_numpy(dtype=np.int64),  # the file row number
            "price": price,
            "size": size,
            "volume": full["volume"].astype(np.float64),
            "side": tick_rule(price, size > 0),
            # A price of 0 is how the feed says the level is empty.
            "bid": bid.where(bid > 0),
            "ask": ask.where(ask > 0),
            "bid_size": full["bid_qty_1"].where(bid > 0),
            "ask_size": full["ask_qty_1"].where(ask > 0),
            "oi": full["oi"].astype(np.float64),
        }
    )
    ticks, crossed = drop_crossed(ticks)
    skipped = {f"{kind}_packet": int(n) for kind, n in packet_types.items() if kind != EVENT_TYPE}
    skipped |= {"volume_backwards": int(backwards.sum()), "crossed_book": crossed}
    return finish(ticks, source="dhan", path=path, rows_read=len(raw), skipped=skipped)
