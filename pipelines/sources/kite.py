"""Zerodha Kite Connect tick captures (NSE futures, full mode with 5-level depth, UTC) -> canonical ticks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from feature_store.instruments import get_instrument
from pipelines.sources.common import drop_crossed, finish, round_to_tick, tick_rule

AGGRESSOR_SIDE = {"BUY": 1, "SELL": -1, "NEUTRAL": 0}


def read_kite(path: str | Path, symbol: str = "NIFTY") -> pd.DataFrame:
    """Canonical ticks from a Kite capture of `symbol`; `time` is UTC.

    size is the increase of volume_traded (0 on the first row). The app's `volume_delta` and the
    `aggressor_side` tied to it disagree with volume_traded on about half the rows, so side is
    aggressor_side only where volume_traded grew, and the tick rule where that side is NEUTRAL.
    Rows whose cumulative volume goes backwards are skipped and counted.
    """
    instrument = get_instrument(symbol)
    # index_col=False: rows with a trailing comma must not turn `time` into the index; a header with
    # one instead gives an empty "Unnamed: N" column, dropped next.
    raw = pd.read_csv(path, index_col=False)
    raw = raw.loc[:, ~raw.columns.str.startswith("Unnamed:")]
    tokens = raw["instrument_token"].unique()
    if len(tokens) != 1:
        raise ValueError(f"{path}: expected one instrument per capture, got tokens {list(tokens)}")
    backwards = raw["volume_traded"] < raw["volume_traded"].cummax()
    rows = raw.loc[~backwards]

    price = pd.Series(round_to_tick(rows["last_price"], instrument.tick_size), index=rows.index)
    size = rows["volume_traded"].diff().fillna(0.0)
    traded = size > 0
    app_side = rows["aggressor_side"].map(AGGRESSOR_SIDE).fillna(0)
    side = app_side.where(app_side != 0, tick_rule(price, traded)).where(traded, 0)
    bid = pd.Series(round_to_tick(rows["bid_price_1"], instrument.tick_size), index=rows.index)
    ask = pd.Series(round_to_tick(rows["ask_price_1"], instrument.tick_size), index=rows.index)
    ticks = pd.DataFrame(
        {
            "ts": pd.to_datetime(rows["time"], utc=True, format="ISO8601"),
            "symbol": instrument.symbol,
            "seq": rows.index.to_numpy(dtype=np.int64),  # the file row number
            "price": price,
            "size": size,
            "volume": rows["volume_traded"].astype(np.float64),
            "side": side,
            # A price of 0 is how the feed says the level is empty.
            "bid": bid.where(bid > 0),
            "ask": ask.where(ask > 0),
            "bid_size": rows["bid_qty_1"].astype(np.float64).where(bid > 0),
            "ask_size": rows["ask_qty_1"].astype(np.float64).where(ask > 0),
            "oi": rows["oi"].astype(np.float64),
        }
    )
    ticks, crossed = drop_crossed(ticks)
    skipped = {"volume_backwards": int(backwards.sum()), "crossed_book": crossed}
    return finish(ticks, source="kite", path=path, rows_read=len(raw), skipped=skipped)
