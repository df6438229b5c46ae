"""B3 market-data captures (one CSV per symbol and day: book and trade events, UTC) -> canonical ticks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from feature_store.instruments import get_instrument
from pipelines.sources.common import drop_crossed, finish, round_to_tick

# Aggressor codes, read off the data: 4-trades print at/above the mid on up-ticks (buyer),
# 3-trades at/below it on down-ticks (seller), 2-trades show no lean (crosses, auctions).
AGGRESSOR_SIDE = {4.0: 1, 3.0: -1, 2.0: 0}


def read_b3(path: str | Path) -> pd.DataFrame:
    """Canonical ticks from one B3 capture file; ts is network_received_time (UTC).

    Trades carry md_entry_px/md_entry_size; book rows carry the last trade price (the mid before the
    first trade). The best bid/ask is carried forward and snapped to the tick size; bid/ask sizes are
    NaN (the feed lacks them); volume is the cumulative traded size; seq is rpt_seq. Rows with a
    crossed book (bid > ask, seen in opening/closing auctions) and trades with an unknown aggressor
    code are skipped and counted.
    """
    raw = pd.read_csv(path)
    symbols = raw["symbol"].unique()
    if len(symbols) != 1:
        raise ValueError(f"{path}: expected one symbol per B3 file, got {list(symbols)}")
    instrument = get_instrument(str(symbols[0]))
    unknown_type = ~raw["event_type"].isin(["book", "trade"])
    traded = raw["event_type"] == "trade"
    side = raw["aggressor"].map(AGGRESSOR_SIDE)
    unknown_side = traded & side.isna()

    bid = pd.Series(round_to_tick(raw["en_b_px_1"], instrument.tick_size), index=raw.index).ffill()
    ask = pd.Series(round_to_tick(raw["en_s_px_1"], instrument.tick_size), index=raw.index).ffill()
    trade_price = pd.Series(round_to_tick(raw["md_entry_px"], instrument.tick_size), index=raw.index).where(
        traded
    )
    size = raw["md_entry_size"].where(traded, 0.0).astype(np.float64)
    ticks = pd.DataFrame(
        {
            "ts": pd.to_datetime(raw["network_received_time"], utc=True, format="ISO8601"),
            "symbol": instrument.symbol,
            "seq": raw["rpt_seq"].astype(np.int64),
            "price": trade_price.ffill().fillna((bid + ask) / 2),
            "size": size,
            # Summed before any row is dropped: a skipped trade still traded.
            "volume": size.cumsum(),
            "side": side.where(traded, 0).fillna(0),
            "bid": bid,
            "ask": ask,
        }
    )
    dropped = (unknown_type | unknown_side).to_numpy()
    ticks, crossed = drop_crossed(ticks.loc[~dropped])
    return finish(
        ticks,
        source="b3",
        path=path,
        rows_read=len(raw),
        skipped={
            "unknown_event_type": int(unknown_type.sum()),
            "unknown_aggressor": int((unknown_side & ~unknown_type).sum()),
            "crossed_book": crossed,
        },
    )
