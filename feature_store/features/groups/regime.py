"""Block-based regime reading: UP / DOWN / FLAT of the 180-tick window, with its conviction.

Each of the 6 blocks moves up (closes above the price before it), down, or not at all. The regime is
UP (+1) when up-blocks outnumber down-blocks by at least 2 and conviction is at least 0.5 with the
window's return positive; DOWN (-1) is the mirror; FLAT (0) otherwise.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from feature_store.features.spec import REGIME, FeatureDef, check_declarations
from feature_store.features.state import (
    B_CLOSE,
    B_OPEN,
    B_RET,
    B_RET2,
    K_REGIME,
    K_REGIME_AGE,
    LONG,
    N_BLOCKS,
)
from feature_store.features.window import block_sum, centered_ss

MIN_BLOCK_MARGIN = 2  # up-blocks minus down-blocks for a direction
MIN_CONVICTION = 0.5

regime_code = FeatureDef(
    "regime_code", REGIME, "Block regime of the 180-tick window: +1 UP, -1 DOWN, 0 FLAT.", warmup=181
)
regime_conviction = FeatureDef(
    "regime_conviction",
    REGIME,
    "|sum of the 6 block momenta| / sum of |block momenta|, in [0, 1] (0 if no block moved).",
    warmup=181,
)
regime_age = FeatureDef(
    "regime_age", REGIME, "Consecutive ticks (this one included) with the current regime_code.", warmup=181
)
regime_trend_z = FeatureDef(
    "regime_trend_z",
    REGIME,
    "180-tick log return / (std of its tick returns * sqrt(180)): the window's trend in noise units.",
    warmup=181,
)

FEATURES: tuple[FeatureDef, ...] = (regime_code, regime_conviction, regime_age, regime_trend_z)
check_declarations(globals(), FEATURES)

_SLOT = {f.name: i for i, f in enumerate(FEATURES)}
REGIME_CODE = _SLOT["regime_code"]
REGIME_CONVICTION = _SLOT["regime_conviction"]
REGIME_AGE = _SLOT["regime_age"]
REGIME_TREND_Z = _SLOT["regime_trend_z"]

BPS = 1e4
_JIT = {"cache": True, "nogil": True, "error_model": "numpy"}


@njit(**_JIT)
def compute(ks, n, bs, out):
    """Read the regime of the window (n > 180 ticks seen, else nothing) and write it into `out`."""
    if n <= LONG:
        return
    up = 0
    down = 0
    net = 0.0
    path = 0.0
    for b in range(N_BLOCKS):
        mom = np.log(bs[b, B_CLOSE] / bs[b, B_OPEN]) * BPS
        net += mom
        path += abs(mom)
        if mom > 0:
            up += 1
        elif mom < 0:
            down += 1
    conviction = abs(net) / path if path > 0 else 0.0
    code = 0
    if conviction >= MIN_CONVICTION:
        if up - down >= MIN_BLOCK_MARGIN and net > 0:
            code = 1
        elif down - up >= MIN_BLOCK_MARGIN and net < 0:
            code = -1
    age = ks[K_REGIME_AGE] + 1 if code == ks[K_REGIME] else 1
    ks[K_REGIME] = code
    ks[K_REGIME_AGE] = age
    out[REGIME_CODE] = code
    out[REGIME_CONVICTION] = conviction
    out[REGIME_AGE] = age
    s1 = block_sum(bs, B_RET, 0, N_BLOCKS - 1)
    ss = centered_ss(s1, block_sum(bs, B_RET2, 0, N_BLOCKS - 1), LONG)
    if ss > 0:
        out[REGIME_TREND_Z] = s1 / (np.sqrt(ss / (LONG - 1)) * np.sqrt(LONG))
