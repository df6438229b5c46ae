"""Time of day (group `time`): where the tick falls in the instrument's session, and how fast ticks arrive.

Session bounds are the UTC open/close of the exchange-local session of the tick's trading day.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from feature_store.features.spec import TIME, FeatureDef, check_declarations
from feature_store.features.state import MASK, SHORT

minutes_since_open = FeatureDef(
    "minutes_since_open", TIME, "Minutes from the session open to the tick (negative before the open)."
)
session_frac_sin = FeatureDef(
    "session_frac_sin", TIME, "sin(2*pi*f), f = fraction of the session elapsed at the tick."
)
session_frac_cos = FeatureDef(
    "session_frac_cos", TIME, "cos(2*pi*f), f = fraction of the session elapsed at the tick."
)
minutes_to_close = FeatureDef(
    "minutes_to_close", TIME, "Minutes from the tick to the session close (negative after the close)."
)
session_frac = FeatureDef(
    "session_frac", TIME, "Fraction of the session elapsed at the tick (0 at the open, 1 at the close)."
)
tick_gap_s = FeatureDef("tick_gap_s", TIME, "Seconds since the previous tick of the session.", warmup=2)
tick_rate_30 = FeatureDef(
    "tick_rate_30",
    TIME,
    "Ticks (trades and quotes) per second over the last 30 ticks (time from the tick before them).",
    warmup=31,
)

FEATURES: tuple[FeatureDef, ...] = (
    minutes_since_open,
    session_frac_sin,
    session_frac_cos,
    minutes_to_close,
    session_frac,
    tick_gap_s,
    tick_rate_30,
)
check_declarations(globals(), FEATURES)

_SLOT = {f.name: i for i, f in enumerate(FEATURES)}
MINUTES_SINCE_OPEN = _SLOT["minutes_since_open"]
SESSION_FRAC_SIN = _SLOT["session_frac_sin"]
SESSION_FRAC_COS = _SLOT["session_frac_cos"]
MINUTES_TO_CLOSE = _SLOT["minutes_to_close"]
SESSION_FRAC = _SLOT["session_frac"]
TICK_GAP_S = _SLOT["tick_gap_s"]
TICK_RATE_30 = _SLOT["tick_rate_30"]

NS_PER_S = 1e9
NS_PER_MIN = 6e10
TWO_PI = 2.0 * np.pi
_JIT = {"cache": True, "nogil": True, "error_model": "numpy"}


@njit(**_JIT)
def compute(ts_ring, n, ts, open_ns, close_ns, out):
    """Write the time features of the tick just folded in (the n-th of the session) into `out`."""
    since_open_ns = ts - open_ns
    out[MINUTES_SINCE_OPEN] = since_open_ns / NS_PER_MIN
    frac = since_open_ns / (close_ns - open_ns)
    out[SESSION_FRAC_SIN] = np.sin(TWO_PI * frac)
    out[SESSION_FRAC_COS] = np.cos(TWO_PI * frac)
    out[SESSION_FRAC] = frac
    out[MINUTES_TO_CLOSE] = (close_ns - ts) / NS_PER_MIN
    if n > 1:
        out[TICK_GAP_S] = (ts - ts_ring[(n - 2) & MASK]) / NS_PER_S
    if n > SHORT:
        span_ns = ts - ts_ring[(n - 1 - SHORT) & MASK]
        if span_ns > 0:
            out[TICK_RATE_30] = SHORT / (span_ns / NS_PER_S)
