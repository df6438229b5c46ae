"""What an adapter hands to validation: a chunk of source rows mapped to canonical tick fields."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from feature_store.schema import QUARANTINE_REASONS

NAT = np.iinfo(np.int64).min  # an unknown timestamp in epoch-ns arrays
# A book side the source states as empty (no order at that level); NaN means "not stated on this row".
EMPTY = -np.inf
VALUE_FIELDS = ("price", "size", "volume", "side", "bid", "ask", "bid_size", "ask_size", "oi")


class Problems:
    """The first quarantine reason found for each row of a chunk, and what was wrong (the detail)."""

    def __init__(self, n: int) -> None:
        self.reason = np.full(n, "", dtype=object)
        self.detail = np.full(n, "", dtype=object)
        self.ok = np.ones(n, dtype=bool)  # no reason yet

    def __len__(self) -> int:
        return len(self.reason)

    def flag(self, mask: np.ndarray, reason: str, detail: str | Callable[[np.ndarray], list[str]]) -> None:
        """Give rows in `mask` that have no reason yet `reason`; `detail` is a text or a function of their
        positions returning one text per row (only called for the rows actually flagged)."""
        if reason not in QUARANTINE_REASONS:
            raise ValueError(f"unknown quarantine reason {reason!r}")
        where = np.flatnonzero(np.asarray(mask, dtype=bool) & self.ok)
        if not len(where):
            return
        self.reason[where] = reason
        self.ok[where] = False
        self.detail[where] = detail if isinstance(detail, str) else np.asarray(detail(where), dtype=object)


@dataclass(frozen=True)
class Rules:
    """How a format's missing fields are derived (docs/ingest.md, "What each adapter derives")."""

    size_from_volume: bool = False  # size is the increase of the source's cumulative volume
    cumulative_volume: bool = True  # volume is the running sum of size over the session (the source has none)
    explicit_seq: bool = False  # seq comes from the source; otherwise it is the row number
    # seq is the exchange's own event number: (symbol, trading day, seq) is the tick's identity, and the
    # recorder's receive time is data (a second capture of the same events stores nothing new)
    exchange_seq: bool = False
    snap_to_tick: bool = False  # prices carry float artefacts: snap those within 1% of a tick to the grid
    # where seq is the row number, a row equal to the previous one field for field is a duplicate
    repeat_is_duplicate: bool = True

    def __post_init__(self) -> None:
        if self.size_from_volume and self.cumulative_volume:
            raise ValueError("size_from_volume needs the source's volume: cumulative_volume must be False")


@dataclass
class Candidates:
    """Source rows of one chunk as canonical tick candidates, aligned by position.

    Floats are NaN where the row does not state the field (validation carries it forward or derives it);
    bid/ask are `EMPTY` where the row states an empty book side. `side` is +1/-1/0 where the source says,
    NaN where the tick rule decides. `ts` is epoch nanoseconds UTC (`NAT` when unknown); `seq` is None when
    the source has none (the row number is used). Rows already found bad carry their reason in `problems`.
    """

    rows: np.ndarray
    raw: Callable[[np.ndarray], list[str]]
    problems: Problems
    symbol: np.ndarray
    ts: np.ndarray
    seq: np.ndarray | None
    values: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.rows)
        for name in VALUE_FIELDS:
            self.values.setdefault(name, np.full(n, np.nan))
        unknown = set(self.values) - set(VALUE_FIELDS)
        if unknown:
            raise KeyError(f"unknown tick fields {sorted(unknown)}")

    def __len__(self) -> int:
        return len(self.rows)


@dataclass
class Source:
    """An open source file: its absolute path (the quarantine `source`), venue, rules and candidate chunks.

    `not_ticks` counts the source's lines that are not tick events, by kind (e.g. "depth update"); the
    adapter adds to it while `chunks` is consumed, and ingest reports it, so no line goes uncounted.
    """

    path: Path
    venue: str | None
    rules: Rules
    chunks: Iterator[Candidates]
    not_ticks: Counter[str] = field(default_factory=Counter)
