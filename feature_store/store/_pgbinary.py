"""Canonical ticks as PostgreSQL binary COPY data, built with numpy: no Python loop over rows.

Every tuple of one (symbol, trading day) has the same layout except for NULLs, so a packed big-endian
numpy record holds one row; a nullable column that is NULL in every row is left out of the record
(length -1, no value), and a column NULL in some rows only is cut out of those rows with a byte mask.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

HEADER = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
TRAILER = (-1).to_bytes(2, "big", signed=True)
_PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 00:00 UTC in µs after 1970: timestamptz's zero
_PG_EPOCH_DAY = dt.date(2000, 1, 1).toordinal()

# the table's column order after (symbol, day): (name, numpy big-endian type, nullable)
TICK_FIELDS: tuple[tuple[str, str, bool], ...] = (
    ("ts_ns", ">i8", False),
    ("seq", ">i8", False),
    ("ts", ">i8", False),  # timestamptz: µs after 2000-01-01 UTC
    ("price", ">f8", False),
    ("size", ">f8", False),
    ("volume", ">f8", False),
    ("side", ">i2", False),
    ("bid", ">f8", True),
    ("ask", ">f8", True),
    ("bid_size", ">f8", True),
    ("ask_size", ">f8", True),
    ("oi", ">f8", True),
)
TICK_COPY_COLUMNS: tuple[str, ...] = ("symbol", "day", *(name for name, _, _ in TICK_FIELDS))


def tick_rows(frame: pd.DataFrame, symbol: str, day: dt.date) -> bytes:
    """Binary COPY tuples (no header, no trailer) of canonical ticks all of `symbol` and `day`.

    Columns are `TICK_COPY_COLUMNS`; `ts` is truncated to the microsecond (floor), NaN is NULL.
    """
    n = len(frame)
    ts_ns = pd.DatetimeIndex(frame["ts"]).asi8
    values = {
        "ts_ns": ts_ns,
        "seq": frame["seq"].to_numpy(),
        "ts": ts_ns // 1000 - _PG_EPOCH_US,
        **{name: frame[name].to_numpy() for name, _, _ in TICK_FIELDS[3:]},
    }
    nulls = {name: np.isnan(values[name]) for name, _, nullable in TICK_FIELDS if nullable}
    name_bytes = symbol.encode()
    fields = [("count", ">i2"), ("symbol_len", ">i4")]
    if name_bytes:  # numpy has no zero-width bytes field
        fields.append(("symbol", f"S{len(name_bytes)}"))
    fields += [("day_len", ">i4"), ("day", ">i4")]
    for name, kind, _ in TICK_FIELDS:
        fields.append((f"{name}_len", ">i4"))
        if name not in nulls or not nulls[name].all():
            fields.append((name, kind))
    record = np.dtype(fields)  # packed: no alignment padding, exactly the wire layout
    rows = np.empty(n, dtype=record)
    rows["count"] = len(TICK_COPY_COLUMNS)
    rows["symbol_len"] = len(name_bytes)
    if name_bytes:
        rows["symbol"] = name_bytes
    rows["day_len"] = 4
    rows["day"] = day.toordinal() - _PG_EPOCH_DAY
    partial = []
    for name, kind, _ in TICK_FIELDS:
        if name in record.names:
            rows[f"{name}_len"] = np.dtype(kind).itemsize
            rows[name] = values[name]
            if name in nulls and nulls[name].any():
                rows[f"{name}_len"][nulls[name]] = -1
                partial.append(name)
        else:
            rows[f"{name}_len"] = -1
    if not partial:
        return rows.tobytes()
    # drop the value bytes of NULL cells: row-major boolean indexing keeps the tuples in order
    keep = np.ones((n, record.itemsize), dtype=bool)
    for name in partial:
        offset = record.fields[name][1]
        keep[np.flatnonzero(nulls[name])[:, None], np.arange(offset, offset + 8)] = False
    return rows.view(np.uint8).reshape(n, record.itemsize)[keep].tobytes()
