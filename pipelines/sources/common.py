"""What every source reader shares: the read report, tick-size rounding, the tick rule, the final check."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from feature_store.schema import coerce_ticks, validate_ticks

REPORT_ATTR = "read_report"


@dataclass(frozen=True)
class ReadReport:
    """Accounting of one read: every source row is either returned or skipped for a named reason."""

    source: str
    path: str
    rows_read: int
    rows_returned: int
    skipped: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.rows_read != self.rows_returned + sum(self.skipped.values()):
            raise ValueError(f"{self.source} read of {self.path}: rows do not add up ({self})")

    @property
    def rows_skipped(self) -> int:
        return sum(self.skipped.values())


def read_report(ticks: pd.DataFrame) -> ReadReport:
    """The `ReadReport` a reader attached to the frame it returned."""
    return ticks.attrs[REPORT_ATTR]


def round_to_tick(prices: pd.Series | np.ndarray, tick_size: float) -> np.ndarray:
    """Snap prices to the tick grid, removing float artefacts such as 33.980000000000004."""
    decimals = max(0, int(np.ceil(-np.log10(tick_size))) + 1)
    # The second rounding turns k * tick (e.g. 3416 * 0.01 = 34.160000000000004) into the nearest double.
    return np.round(np.round(np.asarray(prices, dtype=np.float64) / tick_size) * tick_size, decimals)


def tick_rule(price: pd.Series, traded: pd.Series) -> pd.Series:
    """Aggressor by the tick rule: +1 on an up-tick, -1 on a down-tick, a zero tick repeats the last
    non-zero direction (0 before any); 0 where nothing traded. Returns int8."""
    direction = np.sign(price.diff()).replace(0.0, np.nan).ffill().fillna(0.0)
    return direction.where(traded, 0.0).astype(np.int8)


def drop_crossed(ticks: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Drop rows whose best bid is above the best ask (the tick schema rejects them); returns the count."""
    crossed = (ticks["bid"] > ticks["ask"]).to_numpy()
    return ticks.loc[~crossed], int(crossed.sum())


def finish(
    ticks: pd.DataFrame, *, source: str, path: str, rows_read: int, skipped: dict[str, int]
) -> pd.DataFrame:
    """Coerce to the canonical columns, validate, and attach the read report (which must add up)."""
    out = validate_ticks(coerce_ticks(ticks.reset_index(drop=True)))
    report = ReadReport(
        source=source,
        path=str(path),
        rows_read=rows_read,
        rows_returned=len(out),
        skipped={reason: n for reason, n in skipped.items() if n},
    )
    out.attrs[REPORT_ATTR] = report
    return out
