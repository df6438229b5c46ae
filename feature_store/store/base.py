"""The tick store interface: ticks, predictions and streaming cursors, one contract for every backend."""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from typing import NamedTuple

import numpy as np
import pandas as pd


class TickKey(NamedTuple):
    """Position of a tick within its symbol's stream: epoch nanoseconds (UTC) and sequence number."""

    ts_ns: int
    seq: int


class TickStore(ABC):
    """Where ticks, predictions and streaming cursors live.

    Frames are canonical (see `feature_store.schema`): `ts` is datetime64[ns, UTC], rows are returned
    ordered by (ts, seq) within a symbol. Writes are idempotent on (symbol, ts, seq); which ticks are the
    same exchange event (same (symbol, trading day, seq) where seq is the exchange's, same content where it
    is not) is decided by ingest before it writes, with `stored_seqs` and `read_ticks` (docs/ingest.md).
    """

    @abstractmethod
    def write_ticks(self, ticks: pd.DataFrame) -> int:
        """Store canonical ticks (any symbols, any days); return how many were new (not already stored)."""

    @abstractmethod
    def read_ticks(
        self, symbol: str, start: pd.Timestamp | None = None, end: pd.Timestamp | None = None
    ) -> pd.DataFrame:
        """Ticks of `symbol` with start <= ts < end (UTC; None is unbounded), ordered by (ts, seq)."""

    @abstractmethod
    def ticks_after(self, symbol: str, after: TickKey | None, limit: int | None = None) -> pd.DataFrame:
        """Up to `limit` ticks of `symbol` strictly after `after` in (ts, seq) order; all when `after` is None."""

    @abstractmethod
    def stored_seqs(
        self, symbol: str, day: dt.date, first: int | None = None, last: int | None = None
    ) -> np.ndarray:
        """The seqs of the stored ticks of `symbol` on trading `day` (exchange-local date) with
        first <= seq <= last (None is unbounded): sorted, distinct, int64.

        For sources whose seq is the exchange's event number, (symbol, day, seq) is a tick's identity:
        asking for the seq range of an incoming chunk reads only what can overlap it.
        """

    @abstractmethod
    def rederive_volume(self, symbol: str, day: dt.date) -> int:
        """Make every stored tick's `volume` of `symbol` on trading `day` the running sum of `size` over the
        day's ticks in (ts, seq) order; return how many ticks' volume changed (0: nothing is written).

        For sources whose cumulative volume is derived, after ticks arrived out of order (a later file
        holding an earlier part of the session). One atomic operation: a reader sees the day's volumes
        all before or all after, never a mix; ticks, keys and counts are unchanged.
        """

    @abstractmethod
    def symbols(self) -> list[str]:
        """Symbols with at least one stored tick, sorted."""

    @abstractmethod
    def days(self, symbol: str) -> list[dt.date]:
        """Trading days (exchange-local dates, see `Instrument.trading_day`) with stored ticks, sorted."""

    @abstractmethod
    def write_predictions(self, predictions: pd.DataFrame, *, shadow: bool = False) -> int:
        """Store prediction rows (`feature_store.schema.PREDICTION_COLUMNS`); return how many were new.

        `shadow`: rows of a challenger scored beside the champion, kept apart (same columns and key)."""

    @abstractmethod
    def read_predictions(
        self,
        symbol: str | None = None,
        start: pd.Timestamp | None = None,
        end: pd.Timestamp | None = None,
        *,
        shadow: bool = False,
    ) -> pd.DataFrame:
        """Stored predictions (all symbols when `symbol` is None), ordered by (symbol, ts, seq); the
        shadow challenger's with `shadow`."""

    @abstractmethod
    def get_cursor(self, name: str) -> str | None:
        """The stored value of streaming cursor `name`, or None if never set."""

    @abstractmethod
    def set_cursor(self, name: str, value: str) -> None:
        """Durably store streaming cursor `name` (overwrites)."""

    @abstractmethod
    def write_quarantine(self, rows: pd.DataFrame) -> int:
        """Store quarantined rows (`feature_store.schema.QUARANTINE_COLUMNS`); idempotent on (source, row).

        Returns how many were new, so re-ingesting a file quarantines nothing twice.
        """

    @abstractmethod
    def read_quarantine(self, symbol: str | None = None, day: dt.date | None = None) -> pd.DataFrame:
        """Quarantined rows, optionally of one symbol and/or trading day, ordered by (source, row)."""

    @abstractmethod
    def stats(self) -> list[dict]:
        """Per (symbol, trading day): ticks stored and rows quarantined by reason.

        A list of `{"symbol", "day" (YYYY-MM-DD or "" when unknown), "ticks", "quarantined",
        "reasons": {reason: count}}`, sorted by symbol then day; a day with only quarantined rows appears
        with ticks 0.
        """

    def close(self) -> None:  # noqa: B027 - optional hook; backends with connections override it
        """Release connections; the store is unusable afterwards."""
