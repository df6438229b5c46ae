"""Combining the 15- and 30-minute models' class probabilities into one signal and its confidence.

Directional mass of each horizon:
- 15m (5 classes): bullish = P(UP) + P(TRAP_DOWN) — a failed breakdown resolves upward —, bearish =
  P(DOWN) + P(TRAP_UP), flat = P(FLAT).
- 30m (3 classes): bullish = P(UP), bearish = P(DOWN), flat = P(FLAT).

Each horizon leans UP when its bullish mass is larger than its bearish mass, DOWN when smaller, and
nowhere on a tie: the lean is the way the model expects a move to go, whatever the chance of no move.
The models are calibrated to the live class mix, where FLAT is the largest class on most ticks (about
70% at 30 minutes on the demo's data); the reference design's lean (the strictly largest of the three
masses, for models trained on consensus rows only) would then almost never call a direction.

`signal` is UP or DOWN when both horizons lean that way, else FLAT. `agree` says whether the two leans
are the same (both leaning nowhere counts as agreeing). For UP or DOWN, `confidence` is the mean over
both horizons of the signal direction's share of the directional mass (bullish / (bullish + bearish)
for UP): 0.6 means that, of the probability that price moves, 60% says it moves this way, averaged over
the horizons. For FLAT it is the mean flat mass. It lies in [0, 1], which is what the trade filter's
`min_confidence` needs. Ties resolve to FLAT, never to a trade.
"""

from __future__ import annotations

import numpy as np

from feature_store.schema import LABELS_15M, LABELS_30M

SIGNALS: tuple[str, ...] = ("DOWN", "FLAT", "UP")  # index = lean code + 1

_I15 = {label: i for i, label in enumerate(LABELS_15M)}
_I30 = {label: i for i, label in enumerate(LABELS_30M)}


def _lean(down: np.ndarray, up: np.ndarray) -> np.ndarray:
    """-1, 0 or +1 per row: the larger of the bearish and bullish masses; a tie is 0 (no lean)."""
    return np.sign(up - down).astype(np.int8)


def _share(mass: np.ndarray, other: np.ndarray) -> np.ndarray:
    """mass / (mass + other), 0.5 where both are zero."""
    total = mass + other
    return np.divide(mass, total, out=np.full(mass.shape, 0.5), where=total > 0)


def directional_mass(p15: np.ndarray, p30: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, 3) masses (DOWN, FLAT, UP) of each horizon for rows of `p15` (n, 5) and `p30` (n, 3)."""
    m15 = np.stack(
        [
            p15[:, _I15["DOWN"]] + p15[:, _I15["TRAP_UP"]],
            p15[:, _I15["FLAT"]],
            p15[:, _I15["UP"]] + p15[:, _I15["TRAP_DOWN"]],
        ],
        axis=1,
    )
    m30 = p30[:, [_I30["DOWN"], _I30["FLAT"], _I30["UP"]]]
    return m15, m30


def combine(
    p15: np.ndarray, p30: np.ndarray
) -> tuple[str, float, bool] | tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Signal, confidence and agreement from the two models' probabilities (see the module docstring).

    `p15` has columns in `LABELS_15M` order and `p30` in `LABELS_30M` order. One row each (1-D arrays)
    gives `(signal: str, confidence: float, agree: bool)`; 2-D arrays of n rows give three arrays of
    length n (signals as an object array of str).
    """
    p15 = np.asarray(p15, dtype=np.float64)
    p30 = np.asarray(p30, dtype=np.float64)
    single = p15.ndim == 1
    if single != (p30.ndim == 1):
        raise ValueError(f"p15 and p30 must both be 1-D or both 2-D, got shapes {p15.shape} and {p30.shape}")
    p15, p30 = np.atleast_2d(p15), np.atleast_2d(p30)
    if p15.shape[1] != len(LABELS_15M) or p30.shape[1] != len(LABELS_30M) or len(p15) != len(p30):
        raise ValueError(
            f"expected p15 (n, {len(LABELS_15M)}) and p30 (n, {len(LABELS_30M)}), "
            f"got {p15.shape} and {p30.shape}"
        )
    m15, m30 = directional_mass(p15, p30)
    lean15, lean30 = _lean(m15[:, 0], m15[:, 2]), _lean(m30[:, 0], m30[:, 2])
    agree = lean15 == lean30
    code = np.where(agree, lean15, 0).astype(np.intp)
    up = (_share(m15[:, 2], m15[:, 0]) + _share(m30[:, 2], m30[:, 0])) / 2.0
    flat = (m15[:, 1] + m30[:, 1]) / 2.0
    confidence = np.where(code > 0, up, np.where(code < 0, 1.0 - up, flat))
    signal = np.asarray(SIGNALS, dtype=object)[code + 1]
    if single:
        return str(signal[0]), float(confidence[0]), bool(agree[0])
    return signal, confidence, agree
