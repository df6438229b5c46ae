"""The sequential part of validation, compiled: each row checked and derived against the last kept tick
of its symbol, in per-symbol state that survives from one chunk to the next."""

from __future__ import annotations

import numpy as np
from numba import njit

# Kernel verdicts (0: keep); validate.py maps them to QUARANTINE_REASONS.
KEEP, OUT_OF_ORDER, DUPLICATE, BAD_PRICE, NEGATIVE_SIZE, CROSSED_BOOK = range(6)
# Which variant of a verdict, for the detail text.
NOTE_NONE, NOTE_SAME_KEY, NOTE_REPEAT, NOTE_TRADE_WITHOUT_PRICE, NOTE_NO_PRICE, NOTE_VOLUME_BACK = range(6)
NOTE_SAME_EVENT = 6
# How a row is told apart from the ticks kept before it (`rules[2]`): by the exchange's own event number
# within the trading day, by (ts, seq) where seq comes from the source but is not the exchange's, or by
# content (ts and every stated field) where seq is only the row number.
BY_CONTENT, BY_TS_SEQ, BY_EXCHANGE_SEQ, BY_NOTHING = range(4)

# Integer state per symbol: trading day (days since epoch, exchange-local), last kept ts, max seq kept at it.
I_DAY, I_TS, I_SEQMAX = range(3)
N_STATE_I = 3
# Float state per symbol, of the last kept tick of the current trading day.
F_PRICE, F_DIR, F_VOL, F_BID, F_ASK, F_BID_SIZE, F_ASK_SIZE, F_OI, F_LAST_PRICE = range(9)
N_STATE_F = 9
# Columns of the input and output value matrices (the order of chunk.VALUE_FIELDS).
V_PRICE, V_SIZE, V_VOLUME, V_SIDE, V_BID, V_ASK, V_BID_SIZE, V_ASK_SIZE, V_OI = range(9)
N_VALUES = 9
# `out` has two more columns, kept as state: the tick-rule direction after the row, and the price a later
# quote carries (a traded or stated price; NaN for a mid, which is never carried)
O_DIRECTION, O_LAST_PRICE = 9, 10
N_OUT = 11

NO_DAY = np.iinfo(np.int64).min
NO_TS = np.iinfo(np.int64).min

_JIT = {"cache": True, "nogil": True, "error_model": "numpy"}


def new_state(n_symbols: int) -> tuple[np.ndarray, np.ndarray]:
    """Empty per-symbol state: nothing kept yet."""
    state_i = np.empty((n_symbols, N_STATE_I), dtype=np.int64)
    state_i[:, I_DAY] = NO_DAY
    state_i[:, I_TS] = NO_TS
    state_i[:, I_SEQMAX] = -1
    state_f = np.full((n_symbols, N_STATE_F), np.nan)
    state_f[:, F_DIR] = 0.0
    return state_i, state_f


@njit(**_JIT)
def fold_rows(
    sym,
    day,
    ts,
    seq,
    skip,
    seen,
    same_key,
    n_context,
    values,
    rules,
    state_i,
    state_f,
    out,
    verdict,
    note,
    aux,
    aux_f,
):
    """Decide every row and derive its fields.

    `sym` codes index the state; rows `[0, n_context)` are ticks kept by earlier chunks at their symbol's
    last timestamp, with their stated values (only used to find duplicates). `skip` rows were quarantined
    before (their verdict stays KEEP here and is ignored). `rules` = (size_from_volume, cumulative_volume,
    identity: one of BY_*). For BY_EXCHANGE_SEQ, `seen` marks rows whose (symbol, day, seq) an earlier
    chunk kept and `same_key[i]` is the previous row of this call with the same (symbol, day, seq) (-1:
    none). `values` are the stated fields (NaN: not stated; -inf bid/ask: stated empty); `out` gets the
    derived fields, `verdict`/`note` the decision, `aux`/`aux_f` what a detail quotes (a ts, a row, a
    volume).
    """
    size_from_volume, cumulative_volume, identity = rules[0], rules[1], rules[2]
    n = len(sym)
    last = np.full(state_i.shape[0], -1, dtype=np.int64)  # last kept row of each symbol in this call
    prev = np.full(n, -1, dtype=np.int64)  # previous kept row of the same symbol
    for i in range(n):
        s = sym[i]
        if i < n_context:
            prev[i] = last[s]
            last[s] = i
            continue
        if skip[i]:
            continue
        v = KEEP
        if ts[i] < state_i[s, I_TS]:
            v = OUT_OF_ORDER
            aux[i] = state_i[s, I_TS]
        elif identity == BY_EXCHANGE_SEQ:
            if seen[i] or _kept_earlier(same_key, i, skip, verdict):
                v = DUPLICATE
                note[i] = NOTE_SAME_EVENT
        elif ts[i] == state_i[s, I_TS] and (identity == BY_CONTENT or seq[i] <= state_i[s, I_SEQMAX]):
            j = last[s]  # the kept ticks at this ts, newest first
            while j >= 0 and ts[j] == ts[i]:
                if identity == BY_TS_SEQ and seq[j] == seq[i]:
                    v = DUPLICATE
                    note[i] = NOTE_SAME_KEY
                    break
                if identity == BY_CONTENT and _same_values(values, i, j):
                    v = DUPLICATE
                    note[i] = NOTE_REPEAT
                    aux[i] = seq[j]
                    break
                j = prev[j]
        if v == KEEP:
            v = _derive(
                i, s, day, values, state_i, state_f, size_from_volume, cumulative_volume, out, note, aux_f
            )
        if v == KEEP:
            _commit(i, s, day, ts, seq, out, state_i, state_f)
            prev[i] = last[s]
            last[s] = i
        verdict[i] = v


@njit(**_JIT)
def _kept_earlier(same_key, i, skip, verdict):
    """Whether an earlier row of this call with row i's (symbol, day, seq) was kept."""
    j = same_key[i]
    while j >= 0:
        if not skip[j] and verdict[j] == KEEP:
            return True
        j = same_key[j]
    return False


@njit(**_JIT)
def _same_values(values, i, j):
    """Whether rows i and j state the same value (or nothing) for every field."""
    for k in range(values.shape[1]):
        a, b = values[i, k], values[j, k]
        if a != b and not (np.isnan(a) and np.isnan(b)):
            return False
    return True


@njit(**_JIT)
def _derive(i, s, day, values, state_i, state_f, size_from_volume, cumulative_volume, out, note, aux_f):
    """Fill `out[i]` from the stated fields and the session state; return the verdict of the derived checks."""
    fresh = day[i] != state_i[s, I_DAY]  # a new trading day starts with nothing carried
    p_price = np.nan if fresh else state_f[s, F_PRICE]
    p_last = np.nan if fresh else state_f[s, F_LAST_PRICE]
    p_vol = np.nan if fresh else state_f[s, F_VOL]

    bid, bid_size = values[i, V_BID], values[i, V_BID_SIZE]
    if np.isnan(bid):  # the row does not state this side: the last kept quote of it stands
        bid = np.nan if fresh else state_f[s, F_BID]
        bid_size = np.nan if fresh else state_f[s, F_BID_SIZE]
    elif bid == -np.inf:
        bid, bid_size = np.nan, np.nan
    ask, ask_size = values[i, V_ASK], values[i, V_ASK_SIZE]
    if np.isnan(ask):
        ask = np.nan if fresh else state_f[s, F_ASK]
        ask_size = np.nan if fresh else state_f[s, F_ASK_SIZE]
    elif ask == -np.inf:
        ask, ask_size = np.nan, np.nan
    oi = values[i, V_OI]
    if np.isnan(oi):
        oi = np.nan if fresh else state_f[s, F_OI]

    verdict = KEEP
    volume = values[i, V_VOLUME]
    if size_from_volume:
        if np.isnan(volume):  # nothing traded on this row (e.g. an open-interest update)
            size = 0.0
            volume = 0.0 if np.isnan(p_vol) else p_vol
        elif np.isnan(p_vol):
            size = 0.0  # the first volume of the day: nothing to compare it with
        else:
            size = volume - p_vol
            if size < 0:
                verdict = NEGATIVE_SIZE
                note[i] = NOTE_VOLUME_BACK
                aux_f[i] = p_vol
    else:
        size = values[i, V_SIZE]
        if np.isnan(size):
            size = 0.0
        base = 0.0 if np.isnan(p_vol) else p_vol
        if cumulative_volume:
            volume = base + size
        elif np.isnan(volume):
            volume = base

    price = values[i, V_PRICE]
    last_price = price
    bad_price = False
    if size > 0:
        if np.isnan(price):
            bad_price = True
            note[i] = NOTE_TRADE_WITHOUT_PRICE
    elif np.isnan(price):
        price = last_price = p_last  # a quote carries the last traded (or stated) price
        if np.isnan(price):
            if bid > 0 and ask > 0:
                price = (bid + ask) / 2  # before the first trade of the day: the mid
            else:
                bad_price = True
                note[i] = NOTE_NO_PRICE
    if bad_price:
        verdict = BAD_PRICE
    elif verdict == KEEP and bid > ask:
        verdict = CROSSED_BOOK

    out[i, V_PRICE] = price
    out[i, V_SIZE] = size
    out[i, V_VOLUME] = volume
    out[i, V_BID] = bid
    out[i, V_ASK] = ask
    out[i, V_BID_SIZE] = bid_size
    out[i, V_ASK_SIZE] = ask_size
    out[i, V_OI] = oi
    # Tick rule: the sign of the last non-zero price change of the day (0 before any); only trades have a side.
    direction = 0.0 if fresh else state_f[s, F_DIR]
    if not np.isnan(p_price):
        if price > p_price:
            direction = 1.0
        elif price < p_price:
            direction = -1.0
    side = 0.0
    if size > 0:
        side = values[i, V_SIDE]
        if np.isnan(side):
            side = direction
    out[i, V_SIDE] = side
    out[i, O_DIRECTION] = direction
    out[i, O_LAST_PRICE] = last_price
    return verdict


@njit(**_JIT)
def _commit(i, s, day, ts, seq, out, state_i, state_f):
    """Row i is kept: it becomes its symbol's last tick."""
    if ts[i] > state_i[s, I_TS]:
        state_i[s, I_SEQMAX] = seq[i]
    else:
        state_i[s, I_SEQMAX] = max(state_i[s, I_SEQMAX], seq[i])
    state_i[s, I_TS] = ts[i]
    state_i[s, I_DAY] = day[i]
    state_f[s, F_PRICE] = out[i, V_PRICE]
    state_f[s, F_DIR] = out[i, O_DIRECTION]
    state_f[s, F_VOL] = out[i, V_VOLUME]
    state_f[s, F_BID] = out[i, V_BID]
    state_f[s, F_ASK] = out[i, V_ASK]
    state_f[s, F_BID_SIZE] = out[i, V_BID_SIZE]
    state_f[s, F_ASK_SIZE] = out[i, V_ASK_SIZE]
    state_f[s, F_OI] = out[i, V_OI]
    state_f[s, F_LAST_PRICE] = out[i, O_LAST_PRICE]
