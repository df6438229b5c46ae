"""The canonical tick: one pandera schema is the single definition of the contract."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

# Column order of a canonical tick frame everywhere in tickml (stores, features, service).
TICK_COLUMNS: tuple[str, ...] = (
    "ts",
    "symbol",
    "seq",
    "price",
    "size",
    "volume",
    "side",
    "bid",
    "ask",
    "bid_size",
    "ask_size",
    "oi",
)
TICK_KEY: tuple[str, ...] = ("symbol", "ts", "seq")
TICK_DTYPES: dict[str, str] = {
    "ts": "datetime64[ns, UTC]",
    "symbol": "str",
    "seq": "int64",
    "price": "float64",
    "size": "float64",
    "volume": "float64",
    "side": "int8",
    "bid": "float64",
    "ask": "float64",
    "bid_size": "float64",
    "ask_size": "float64",
    "oi": "float64",
}
NULLABLE_COLUMNS = frozenset({"bid", "ask", "bid_size", "ask_size", "oi"})


class TickSchema(pa.DataFrameModel):
    """One row per market event; timestamps are exchange event time in UTC."""

    ts: Series[pd.DatetimeTZDtype] = pa.Field(dtype_kwargs={"unit": "ns", "tz": "UTC"})
    symbol: Series[str] = pa.Field(str_length={"min_value": 1})
    seq: Series[np.int64] = pa.Field(ge=0)
    price: Series[np.float64] = pa.Field(gt=0)
    size: Series[np.float64] = pa.Field(ge=0)
    volume: Series[np.float64] = pa.Field(ge=0)
    side: Series[np.int8] = pa.Field(isin=[-1, 0, 1])
    bid: Series[np.float64] = pa.Field(gt=0, nullable=True)
    ask: Series[np.float64] = pa.Field(gt=0, nullable=True)
    bid_size: Series[np.float64] = pa.Field(ge=0, nullable=True)
    ask_size: Series[np.float64] = pa.Field(ge=0, nullable=True)
    oi: Series[np.float64] = pa.Field(ge=0, nullable=True)

    @pa.dataframe_check
    def values_finite(cls, df: pd.DataFrame) -> Series[bool]:
        """No +-inf anywhere: an overflowed value is an error, not a price (NaN stays 'not quoted')."""
        numeric = df[["price", "size", "volume", "bid", "ask", "bid_size", "ask_size", "oi"]].to_numpy(
            dtype=float
        )
        return pd.Series(~np.isinf(numeric).any(axis=1), index=df.index)

    @pa.dataframe_check
    def book_not_crossed(cls, df: pd.DataFrame) -> Series[bool]:
        """Best bid never above best ask when both are quoted."""
        return ~(df["bid"] > df["ask"])

    @pa.dataframe_check
    def unique_key(cls, df: pd.DataFrame) -> bool:
        """(symbol, ts, seq) identifies a tick."""
        return not df.duplicated(list(TICK_KEY)).any()

    class Config:
        strict = "filter"
        coerce = False
        ordered = False


def empty_ticks() -> pd.DataFrame:
    """A zero-row frame with the canonical columns and dtypes."""
    return coerce_ticks(pd.DataFrame({c: [] for c in TICK_COLUMNS}))


def coerce_ticks(df: pd.DataFrame) -> pd.DataFrame:
    """Return `df` with the canonical column order and dtypes (no row is dropped or fixed).

    `ts` may be tz-aware (converted to UTC) or integer epoch nanoseconds (taken as UTC).
    Missing nullable columns are added as NaN; a missing required column raises KeyError.
    """
    out = pd.DataFrame(index=df.index)
    for col in TICK_COLUMNS:
        if col in df.columns:
            out[col] = df[col]
        elif col in NULLABLE_COLUMNS:
            out[col] = np.nan
        else:
            raise KeyError(f"tick frame lacks required column {col!r}")
    ts = out["ts"]
    if pd.api.types.is_integer_dtype(ts):
        out["ts"] = pd.to_datetime(ts, unit="ns", utc=True)
    else:
        out["ts"] = pd.to_datetime(ts, utc=True)
    out["ts"] = out["ts"].astype("datetime64[ns, UTC]")
    for col, dtype in TICK_DTYPES.items():
        if col != "ts":
            out[col] = out[col].astype(dtype)
    return out


def validate_ticks(df: pd.DataFrame) -> pd.DataFrame:
    """Validate a canonical tick frame against `TickSchema`; raises pandera's SchemaErrors (lazy)."""
    return TickSchema.validate(df, lazy=True)


# A stored prediction: one row per scored tick, idempotent on (symbol, ts, seq).
LABELS_15M: tuple[str, ...] = ("DOWN", "TRAP_DOWN", "FLAT", "TRAP_UP", "UP")
LABELS_30M: tuple[str, ...] = ("DOWN", "FLAT", "UP")
PREDICTION_DTYPES: dict[str, str] = {
    "symbol": "str",
    "ts": "datetime64[ns, UTC]",
    "seq": "int64",
    **{f"p15_{c.lower()}": "float64" for c in LABELS_15M},
    **{f"p30_{c.lower()}": "float64" for c in LABELS_30M},
    "signal": "str",  # combined direction: UP, DOWN or FLAT
    "confidence": "float64",
    "action": "str",  # trade filter decision: BUY, SELL, EXIT (stop loss) or NONE
    "reason": "str",  # why the trade filter decided so
    "model_15m_version": "str",
    "model_30m_version": "str",
    "scored_at": "datetime64[ns, UTC]",
}
PREDICTION_COLUMNS: tuple[str, ...] = tuple(PREDICTION_DTYPES)


def coerce_predictions(df: pd.DataFrame) -> pd.DataFrame:
    """Return `df` with exactly the prediction columns and dtypes; a missing column raises KeyError."""
    missing = [c for c in PREDICTION_COLUMNS if c not in df.columns]
    if missing:
        raise KeyError(f"prediction frame lacks columns {missing}")
    out = df.loc[:, list(PREDICTION_COLUMNS)].copy()
    for col in ("ts", "scored_at"):
        out[col] = pd.to_datetime(out[col], utc=True).astype("datetime64[ns, UTC]")
    for col, dtype in PREDICTION_DTYPES.items():
        if not dtype.startswith("datetime"):
            out[col] = out[col].astype(dtype)
    return out


# A quarantined source row: never silently dropped, never silently fixed. Idempotent on (source, row).
QUARANTINE_REASONS: tuple[str, ...] = (
    "unparseable",  # a field cannot be parsed (bad number, bad timestamp, wrong field count)
    "truncated",  # the file ends inside this row
    "unknown_symbol",  # no instrument is configured and the source does not know the venue
    "bad_price",  # price NaN, missing or <= 0
    "negative_size",  # traded size < 0
    "crossed_book",  # best bid above best ask
    "outside_session",  # timestamp outside the instrument's session (or inside a break)
    "out_of_order",  # timestamp earlier than the previous kept tick of the symbol
    "duplicate",  # the same event as a tick kept earlier from the source (docs/ingest.md, "Identity")
)
QUARANTINE_DTYPES: dict[str, str] = {
    "source": "str",  # the file (absolute path) or feed the row came from
    "row": "int64",  # 0-based data row number within the source (header excluded)
    "symbol": "str",  # "" when unknown
    "day": "str",  # exchange-local trading day YYYY-MM-DD, "" when the timestamp is unknown
    "ts": "datetime64[ns, UTC]",  # NaT when unparseable
    "reason": "str",  # one of QUARANTINE_REASONS
    "detail": "str",  # what was wrong, with the offending value
    "raw": "str",  # the source row as text
    "quarantined_at": "datetime64[ns, UTC]",
}
QUARANTINE_COLUMNS: tuple[str, ...] = tuple(QUARANTINE_DTYPES)
# `detail` and `raw` are kept to this many UTF-8 bytes: a hostile or broken file (a 1 MB "row" with no line
# end) must not make the quarantine as large as the file. A cut text ends with CUT_MARK saying how long it was.
QUARANTINE_TEXT_BYTES = 4096
CUT_MARK = " …[cut: {:,} bytes in all]"


def cap_text(texts: pd.Series, limit: int = QUARANTINE_TEXT_BYTES) -> pd.Series:
    """`texts` with each value longer than `limit` UTF-8 bytes cut to `limit` bytes (on a character
    boundary), CUT_MARK included; shorter values unchanged (a value of n characters has at most 4n bytes)."""
    long = texts.str.len().to_numpy() > limit // 4
    if not long.any():
        return texts
    out = texts.copy()
    for label, text in texts[long].items():
        data = text.encode("utf-8", "surrogatepass")
        if len(data) <= limit:
            continue
        mark = CUT_MARK.format(len(data))
        keep = data[: limit - len(mark.encode())].decode("utf-8", "ignore")
        out[label] = keep + mark
    return out


def coerce_quarantine(df: pd.DataFrame) -> pd.DataFrame:
    """Return `df` with exactly the quarantine columns and dtypes, `detail` and `raw` capped to
    QUARANTINE_TEXT_BYTES (`cap_text`); unknown reasons raise ValueError."""
    missing = [c for c in QUARANTINE_COLUMNS if c not in df.columns]
    if missing:
        raise KeyError(f"quarantine frame lacks columns {missing}")
    out = df.loc[:, list(QUARANTINE_COLUMNS)].copy()
    for col in ("ts", "quarantined_at"):
        out[col] = pd.to_datetime(out[col], utc=True).astype("datetime64[ns, UTC]")
    for col, dtype in QUARANTINE_DTYPES.items():
        if not dtype.startswith("datetime"):
            out[col] = out[col].fillna("").astype(dtype) if dtype == "str" else out[col].astype(dtype)
    unknown = sorted(set(out["reason"]) - set(QUARANTINE_REASONS))
    if unknown:
        raise ValueError(f"unknown quarantine reasons {unknown}; expected one of {QUARANTINE_REASONS}")
    for col in ("detail", "raw"):
        out[col] = cap_text(out[col])
    return out
