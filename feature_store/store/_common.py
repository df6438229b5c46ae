"""Frame preparation shared by the tick store backends, so both accept and reject exactly the same input."""

from __future__ import annotations

import numpy as np
import pandas as pd

from feature_store.instruments import get_instrument
from feature_store.schema import coerce_predictions, coerce_ticks, validate_ticks


def prepare_ticks(ticks: pd.DataFrame) -> pd.DataFrame:
    """Canonical, validated ticks sorted by (symbol, ts, seq); raises pandera's SchemaErrors on bad rows."""
    frame = validate_ticks(coerce_ticks(ticks))
    return frame.sort_values(["symbol", "ts", "seq"]).reset_index(drop=True)


def prepare_predictions(predictions: pd.DataFrame) -> pd.DataFrame:
    """Canonical prediction rows sorted by (symbol, ts, seq), the first of duplicate keys kept.

    Raises KeyError for a missing column or an unknown symbol and ValueError for a missing key value.
    """
    frame = coerce_predictions(predictions)
    missing_key = frame["symbol"].isna() | frame["ts"].isna()
    if missing_key.any():
        raise ValueError(f"{int(missing_key.sum())} prediction rows lack symbol or ts")
    for symbol in frame["symbol"].unique():
        get_instrument(symbol)  # every stored row must belong to a configured instrument
    frame = frame.drop_duplicates(["symbol", "ts", "seq"], keep="first")
    return frame.sort_values(["symbol", "ts", "seq"]).reset_index(drop=True)


def trading_days(frame: pd.DataFrame) -> np.ndarray:
    """Exchange-local trading day (datetime.date) of every row of a frame with `symbol` and UTC `ts`."""
    days = np.empty(len(frame), dtype=object)
    for symbol, rows in frame.groupby("symbol", sort=False).indices.items():
        days[rows] = get_instrument(symbol).trading_day(frame["ts"].iloc[rows]).to_numpy()
    return days


def utc(ts: pd.Timestamp | str | None) -> pd.Timestamp | None:
    """`ts` as a UTC timestamp; a naive value is taken as UTC (as `coerce_ticks` does), None stays None."""
    if ts is None:
        return None
    ts = pd.Timestamp(ts)
    return ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")


def check_limit(limit: int | None) -> None:
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0 or None, got {limit}")
