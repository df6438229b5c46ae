"""Batch/online parity on any tick frame: both engines over the same ticks, compared feature by feature.

The check behind `tickml features parity` and the parity tests: relative difference at most `RTOL`,
and NaN in one engine exactly where it is NaN in the other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from feature_store.features.batch import compute_features
from feature_store.features.definitions import FEATURE_NAMES
from feature_store.features.online import OnlineFeatures
from feature_store.instruments import Instrument

RTOL = 1e-9


@dataclass(frozen=True)
class ParityReport:
    """Outcome of comparing the two engines over `ticks` ticks.

    `worst_feature` is the feature with the largest relative difference (infinite where one engine
    has NaN and the other a value), `worst_tick` the row where it occurs; both None when nothing was
    compared or everything is equal.
    """

    ticks: int
    worst_feature: str | None
    worst_rel_diff: float
    worst_tick: int | None
    nan_mismatches: int
    rtol: float = RTOL

    @property
    def ok(self) -> bool:
        return self.nan_mismatches == 0 and self.worst_rel_diff <= self.rtol

    def render(self) -> str:
        """One line for people: verdict, ticks compared, worst feature and its relative difference."""
        verdict = "parity OK" if self.ok else "PARITY FAILED"
        worst = (
            "all features identical"
            if self.worst_feature is None
            else f"worst feature {self.worst_feature}: relative difference {self.worst_rel_diff:.3g} "
            f"at tick {self.worst_tick}"
        )
        nan = f", NaN in one engine only on {self.nan_mismatches} values" if self.nan_mismatches else ""
        return f"{verdict}: {self.ticks} ticks x {len(FEATURE_NAMES)} features, {worst}{nan} (rtol {self.rtol:g})"


def compare(
    batch: np.ndarray, online: np.ndarray, names: tuple[str, ...] = FEATURE_NAMES, rtol: float = RTOL
) -> ParityReport:
    """Compare two (ticks, features) matrices with columns `names`; raises ValueError if shapes differ."""
    if batch.shape != online.shape:
        raise ValueError(f"shapes differ: batch {batch.shape}, online {online.shape}")
    nan_mismatch = np.isnan(batch) != np.isnan(online)
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = np.maximum(np.abs(batch), np.abs(online))
        rel = np.where(batch == online, 0.0, np.abs(batch - online) / scale)
    rel = np.nan_to_num(rel, nan=0.0, posinf=np.inf)
    rel[nan_mismatch] = np.inf
    if rel.size == 0 or not rel.any():
        return ParityReport(len(batch), None, 0.0, None, 0, rtol)
    row, col = np.unravel_index(np.argmax(rel), rel.shape)
    return ParityReport(len(batch), names[col], float(rel[row, col]), int(row), int(nan_mismatch.sum()), rtol)


def online_matrix(ticks: pd.DataFrame, instrument: Instrument) -> np.ndarray:
    """Every tick through `OnlineFeatures.update`, one call each, as the scoring service does."""
    engine = OnlineFeatures(instrument)
    ts = ticks["ts"].dt.tz_convert("UTC").astype("datetime64[ns, UTC]").array.asi8
    columns = ("price", "size", "volume", "side", "bid", "ask", "bid_size", "ask_size")
    values = [
        ticks[c].to_numpy(dtype=np.float64, na_value=np.nan) if c in ticks else np.full(len(ticks), np.nan)
        for c in columns
    ]
    out = np.empty((len(ticks), len(FEATURE_NAMES)))
    for i in range(len(ticks)):
        out[i] = engine.update(
            int(ts[i]),
            values[0][i],
            values[1][i],
            values[2][i],
            int(values[3][i]),
            values[4][i],
            values[5][i],
            values[6][i],
            values[7][i],
        )
    return out


def parity_report(ticks: pd.DataFrame, instrument: Instrument) -> ParityReport:
    """Run the batch engine and the online engine (tick by tick) over ONE symbol's canonical ticks.

    `ticks` must be sorted by ts (UTC) then seq; raises ValueError otherwise or for several symbols.
    """
    batch = compute_features(ticks, instrument)[list(FEATURE_NAMES)].to_numpy()
    return compare(batch, online_matrix(ticks, instrument))
