"""The one implementation of the catalogue: a numba kernel `step` that folds one tick into state.

`step` writes the tick into the ring, computes the shared window statistics once, then calls each
group's `compute` on that group's slice of the output. The batch engine loops `step` over days inside
numba (`run`); the online engine calls it per tick — one code path, so parity holds by construction.
"""

from __future__ import annotations

import sys
import zlib
from pathlib import Path

import numpy as np
from numba import njit
from numba.core.dispatcher import Dispatcher

from feature_store.features import state as state_module
from feature_store.features import window as window_module
from feature_store.features.definitions import FEATURE_NAMES, FEATURES
from feature_store.features.groups import (
    GROUP_MODULES,
    blocks,
    book,
    clock,
    indicators,
    market_maker,
    order_flow,
    price,
    regime,
    session,
    smart_money,
    volatility,
)
from feature_store.features.state import (
    C_ABS_DP,
    C_ASK,
    C_ASK_SIZE,
    C_BID,
    C_BID_SIZE,
    C_BUY,
    C_BUY_SIZE,
    C_DEPTH,
    C_FLICKER,
    C_L1,
    C_MICRO,
    C_PRICE,
    C_RET,
    C_SELL,
    C_SELL_SIZE,
    C_SIGNED,
    C_SIZE,
    C_SPREAD,
    C_TRADE,
    C_WIDEN,
    CAP,
    K_LAST_TS,
    K_N,
    LONG,
    MASK,
    N_BLOCKS,
    N_STATS,
    SHORT,
)
from feature_store.features.state import (
    new_state as _new_state,
)
from feature_store.features.state import reset as _reset_session
from feature_store.features.window import N_WINDOW_SUMS, starter_sums
from feature_store.features.window import blocks as block_stats

N_FEATURES = len(FEATURE_NAMES)
if max(f.warmup for f in FEATURES) > CAP:
    raise ValueError("a feature needs more history than the kernel's ring buffers keep")


def _offsets() -> dict[str, tuple[int, int]]:
    """[start, end) of each group module's slice of the feature vector, in `GROUP_MODULES` order."""
    spans, start = {}, 0
    for module in GROUP_MODULES:
        spans[module.__name__] = (start, start + len(module.FEATURES))
        start += len(module.FEATURES)
    return spans


_SPAN = _offsets()
PRICE_0, PRICE_1 = _SPAN[price.__name__]
VOLATILITY_0, VOLATILITY_1 = _SPAN[volatility.__name__]
ORDER_FLOW_0, ORDER_FLOW_1 = _SPAN[order_flow.__name__]
BOOK_0, BOOK_1 = _SPAN[book.__name__]
SESSION_0, SESSION_1 = _SPAN[session.__name__]
TIME_0, TIME_1 = _SPAN[clock.__name__]
BLOCK_0, BLOCK_1 = _SPAN[blocks.__name__]
SMART_0, SMART_1 = _SPAN[smart_money.__name__]
MM_0, MM_1 = _SPAN[market_maker.__name__]
INDICATOR_0, INDICATOR_1 = _SPAN[indicators.__name__]
REGIME_0, REGIME_1 = _SPAN[regime.__name__]
# `step` calls these, in this order; a group added to GROUP_MODULES but not here would never be computed.
_CALLED = (
    price,
    volatility,
    order_flow,
    book,
    session,
    clock,
    blocks,
    smart_money,
    market_maker,
    indicators,
    regime,
)
if _CALLED != GROUP_MODULES or REGIME_1 != N_FEATURES:
    raise ValueError("step() must call every module of GROUP_MODULES, in order; update kernel.py with it")


def _kernel_modules() -> tuple:
    return (state_module, window_module, *GROUP_MODULES, sys.modules[__name__])


def kernel_source_files() -> list[str]:
    """The source files whose numba functions are compiled into `step` (what the fingerprint hashes)."""
    return sorted(str(m.__file__) for m in _kernel_modules())


def _fingerprint() -> int:
    """CRC of the feature order and of every source file compiled into `step`.

    numba's cache re-checks only the file that defines a function, so an edit to a group module
    would leave `step`/`run` (cached with the old group code inlined) stale; this makes it visible.
    """
    crc = zlib.crc32(",".join(FEATURE_NAMES).encode())
    for path in kernel_source_files():
        crc = zlib.crc32(Path(path).read_bytes(), crc)
    return crc


LAYOUT_ID = _fingerprint()

NAN = np.nan
BPS = 1e4
_JIT = {"cache": True, "nogil": True, "error_model": "numpy"}


@njit(**_JIT)
def compiled_layout_id() -> int:
    return LAYOUT_ID


def new_state() -> tuple[np.ndarray, ...]:
    """Fresh, reset kernel state of one symbol: (ring, ts_ring, fs, ks, sizes, profile, bs, ws).

    `bs` (block statistics) and `ws` (window sums) are scratch recomputed every tick; they live with the
    state so neither engine allocates per tick.
    """
    return (
        *_new_state(),
        np.full((N_BLOCKS, N_STATS), np.nan),
        np.full((2, N_WINDOW_SUMS), np.nan),
    )


@njit(**_JIT)
def reset(ring, ts_ring, fs, ks, sizes, profile, bs, ws):
    """Forget everything: the next tick starts a session (windows and session features restart)."""
    _reset_session(ring, ts_ring, fs, ks, sizes, profile)


@njit(**_JIT)
def _ingest(ring, ts_ring, ks, sizes, tick_size, ts, price, size, side, bid, ask, bid_size, ask_size, out):
    """Write the tick into the ring (every channel, every tick: rows are reused) and count it."""
    n = ks[K_N]
    row = ring[n & MASK]
    ret = NAN
    abs_dp = NAN
    if n > 0:
        prev = ring[(n - 1) & MASK]
        ret = np.log(price / prev[C_PRICE]) * BPS
        abs_dp = abs(price - prev[C_PRICE])
    depth = bid_size + ask_size
    l1 = NAN
    micro = NAN
    if depth > 0:  # False for NaN sizes too
        l1 = (bid_size - ask_size) / depth
        mid = (bid + ask) / 2.0
        microprice = (bid * ask_size + ask * bid_size) / depth
        micro = (microprice - mid) / tick_size
    spread = (ask - bid) / tick_size
    traded = size > 0
    row[C_PRICE] = price
    row[C_RET] = ret
    row[C_ABS_DP] = abs_dp
    row[C_SIGNED] = side * size
    row[C_SIZE] = size
    row[C_TRADE] = 1.0 if traded else 0.0
    row[C_L1] = l1
    row[C_BUY] = 1.0 if traded and side > 0 else 0.0
    row[C_SELL] = 1.0 if traded and side < 0 else 0.0
    row[C_BUY_SIZE] = size if traded and side > 0 else 0.0
    row[C_SELL_SIZE] = size if traded and side < 0 else 0.0
    row[C_BID] = bid
    row[C_ASK] = ask
    row[C_BID_SIZE] = bid_size
    row[C_ASK_SIZE] = ask_size
    row[C_DEPTH] = depth
    row[C_SPREAD] = spread
    row[C_MICRO] = micro
    widen = NAN
    flicker = NAN
    if n > 0:
        prev = ring[(n - 1) & MASK]
        if not (np.isnan(spread) or np.isnan(prev[C_SPREAD])):
            widen = 1.0 if spread > prev[C_SPREAD] else 0.0
        if not (np.isnan(bid) or np.isnan(ask) or np.isnan(prev[C_BID]) or np.isnan(prev[C_ASK])):
            moved = bid != prev[C_BID] or ask != prev[C_ASK]
            flicker = 1.0 if moved and not traded else 0.0
    row[C_WIDEN] = widen
    row[C_FLICKER] = flicker
    smart_money.classify(ring, sizes, ks, n, size, side, row, out)
    ts_ring[n & MASK] = ts
    ks[K_N] = n + 1
    ks[K_LAST_TS] = ts
    return n + 1


@njit(**_JIT)
def step(
    ring,
    ts_ring,
    fs,
    ks,
    sizes,
    profile,
    bs,
    ws,
    tick_size,
    open_ns,
    close_ns,
    ts,
    price_,
    size,
    volume,
    side,
    bid,
    ask,
    bid_size,
    ask_size,
    out,
):
    """Fold one tick into the state and write all features of that tick into `out` (NaN = no value).

    `ts`, `open_ns`, `close_ns` are UTC epoch nanoseconds; `open_ns`/`close_ns` bound the tick's session.
    (`price_` is the tick's price: `price` is the price group module.)
    Only this tick and earlier ticks of the same session are read.
    """
    out[:] = NAN
    n = _ingest(
        ring, ts_ring, ks, sizes, tick_size, ts, price_, size, side, bid, ask, bid_size, ask_size,
        out[SMART_0:SMART_1],
    )  # fmt: skip
    w30 = ws[0]
    w180 = ws[1]
    if n >= SHORT:
        starter_sums(ring, n, SHORT, price_, w30)
    if n >= LONG:
        block_stats(ring, ts_ring, n, price_, ts, bs, w180)
    price.compute(ring, ks, n, price_, tick_size, w180, bs, out[PRICE_0:PRICE_1])
    volatility.compute(ring, n, price_, w30, w180, bs, out[VOLATILITY_0:VOLATILITY_1])
    order_flow.compute(ring, ts_ring, fs, ks, n, ts, w30, w180, bs, out[ORDER_FLOW_0:ORDER_FLOW_1])
    book.compute(ring, n, price_, tick_size, bid, ask, w30, bs, out[BOOK_0:BOOK_1])
    session.compute(fs, ks, profile, n, ts, price_, size, volume, side, tick_size, out[SESSION_0:SESSION_1])
    clock.compute(ts_ring, n, ts, open_ns, close_ns, out[TIME_0:TIME_1])
    blocks.compute(n, price_, tick_size, bs, out[BLOCK_0:BLOCK_1])
    smart_money.compute(n, bs, out[SMART_0:SMART_1])
    market_maker.compute(n, bs, out[MM_0:MM_1])
    indicators.compute(ring, fs, ks, n, price_, tick_size, out[INDICATOR_0:INDICATOR_1])
    regime.compute(ks, n, bs, out[REGIME_0:REGIME_1])


@njit(**_JIT)
def run(
    ring,
    ts_ring,
    fs,
    ks,
    sizes,
    profile,
    bs,
    ws,
    tick_size,
    new_day,
    open_ns,
    close_ns,
    ts,
    price_,
    size,
    volume,
    side,
    bid,
    ask,
    bid_size,
    ask_size,
    out,
):
    """`step` over ticks in time order, resetting the state where `new_day` is True; fills out (n, F)."""
    for i in range(ts.shape[0]):
        if new_day[i]:
            _reset_session(ring, ts_ring, fs, ks, sizes, profile)
        step(
            ring,
            ts_ring,
            fs,
            ks,
            sizes,
            profile,
            bs,
            ws,
            tick_size,
            open_ns[i],
            close_ns[i],
            ts[i],
            price_[i],
            size[i],
            volume[i],
            side[i],
            bid[i],
            ask[i],
            bid_size[i],
            ask_size[i],
            out[i],
        )


def _flush_stale_cache() -> None:
    """Drop numba's on-disk cache of every kernel function and recompile the layout probe.

    Uses numba's private `_cache.flush()`: there is no public call for it, and the alternative is
    asking every engineer who edits a group module to delete __pycache__ by hand.
    """
    for module in _kernel_modules():
        for value in vars(module).values():
            if isinstance(value, Dispatcher) and value.py_func.__module__ == module.__name__:
                value._cache.flush()
    compiled_layout_id.recompile()


if compiled_layout_id() != LAYOUT_ID:
    _flush_stale_cache()
    if compiled_layout_id() != LAYOUT_ID:
        raise ImportError(
            "numba's cache of feature_store/features was built from other kernel sources; delete "
            "feature_store/features/__pycache__ and feature_store/features/groups/__pycache__ and import again"
        )
