"""Validation shared by every adapter: each source row becomes a canonical tick or a quarantine row."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from feature_store.instruments import Instrument, get_instrument, instrument_for
from feature_store.schema import QUARANTINE_COLUMNS, coerce_quarantine, coerce_ticks, empty_ticks
from pipelines.sources import kernel
from pipelines.sources.chunk import EMPTY, NAT, VALUE_FIELDS, Candidates, Problems, Rules
from pipelines.sources.session import day_text, local_day_and_time, outside_session, session_detail

VERDICT_REASONS = {
    kernel.OUT_OF_ORDER: "out_of_order",
    kernel.DUPLICATE: "duplicate",
    kernel.BAD_PRICE: "bad_price",
    kernel.NEGATIVE_SIZE: "negative_size",
    kernel.CROSSED_BOOK: "crossed_book",
}
# Float artefacts are within 1% of a tick (float64 sums) or two float32 ulps (feeds sending float32);
# a real off-grid price (a midpoint execution) is further away and kept as it is.
SNAP_TICKS = 0.01
SNAP_RELATIVE = 2.0**-22


def identity(rules: Rules) -> int:
    """How a format's rows are told apart from the ticks kept before them (kernel.BY_*)."""
    if rules.exchange_seq:
        return kernel.BY_EXCHANGE_SEQ
    if rules.explicit_seq:
        return kernel.BY_TS_SEQ
    return kernel.BY_CONTENT if rules.repeat_is_duplicate else kernel.BY_NOTHING


class KeptEvents:
    """The exchange sequence numbers kept so far on each symbol's current trading day, so that a row
    repeating a kept event is a duplicate whichever chunk kept it (8 bytes per kept tick of the day).

    Each chunk's kept seqs are one sorted run; only a row at or below the highest kept seq of its
    symbol-day is looked up, so a feed in sequence order never searches.
    """

    def __init__(self) -> None:
        self._day = np.empty(0, np.int64)  # by symbol code: the day the runs are of
        self._max = np.empty(0, np.int64)  # by symbol code: the highest seq kept that day
        self._runs: dict[int, list[np.ndarray]] = {}

    def lookup(
        self, codes: np.ndarray, day: np.ndarray, seq: np.ndarray, ok: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """For the `ok` rows of a chunk: whether an earlier chunk kept their (symbol, day, seq), and the
        previous row of this chunk with the same (symbol, day, seq) (-1: none)."""
        seen = np.zeros(len(codes), dtype=bool)
        known = ok & (codes >= 0) & (codes < len(self._day))
        c = np.where(known, codes, 0)
        if len(self._day):
            suspect = known & (day == self._day[c]) & (seq <= self._max[c])
            for code in np.unique(codes[suspect]):
                rows = np.flatnonzero(suspect & (codes == code))
                for run in self._runs[int(code)]:
                    at = np.minimum(np.searchsorted(run, seq[rows]), len(run) - 1)
                    seen[rows] |= run[at] == seq[rows]
        return seen, _previous_same_key(codes, day, seq, ok)

    def add(self, codes: np.ndarray, day: np.ndarray, seq: np.ndarray) -> None:
        """Remember kept ticks (a symbol's kept days never go back: an earlier ts is out of order)."""
        if not len(codes):
            return
        grow = int(codes.max()) + 1 - len(self._day)
        if grow > 0:
            self._day = np.concatenate([self._day, np.full(grow, kernel.NO_DAY)])
            self._max = np.concatenate([self._max, np.full(grow, -1)])
        for code, rows in pd.Series(codes).groupby(codes, sort=False).indices.items():
            last_day = day[rows[-1]]
            rows = rows[day[rows] == last_day]
            if last_day != self._day[code]:
                self._day[code], self._max[code], self._runs[int(code)] = last_day, -1, []
            run = np.sort(seq[rows])
            self._runs[int(code)].append(run)
            self._max[code] = max(self._max[code], run[-1])


def _previous_same_key(codes: np.ndarray, day: np.ndarray, seq: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """For each `ok` row, the previous `ok` row with the same (code, day, seq); -1 for none."""
    previous = np.full(len(codes), -1, dtype=np.int64)
    pos = np.flatnonzero(ok)
    if len(pos) < 2 or (np.diff(seq[pos]) > 0).all():  # a feed in sequence order: nothing repeats
        return previous
    order = pos[np.lexsort((pos, seq[pos], day[pos], codes[pos]))]
    same = (np.diff(codes[order]) == 0) & (np.diff(day[order]) == 0) & (np.diff(seq[order]) == 0)
    previous[order[1:][same]] = order[:-1][same]
    return previous


class Checked(NamedTuple):
    """One validated chunk: its ticks (source order), its quarantine rows, and for each tick its
    exchange-local trading day (days since 1970-01-01) and the fields its source row stated (NaN: not
    stated; -inf bid/ask: stated empty; columns in `VALUE_FIELDS` order): what identifies it by content."""

    ticks: pd.DataFrame
    quarantine: pd.DataFrame
    day: np.ndarray
    stated: np.ndarray


class Validator:
    """Validates the candidate chunks of one source in order, carrying per-symbol state across chunks.

    Checks run in this order and the first that fails names the row's reason (QUARANTINE_REASONS):
    1. what the adapter found: `unparseable`, `truncated` (and format-specific rows, e.g. LOBSTER halts);
    2. `unknown_symbol`: no instrument configured and the source does not know the venue;
    3. the row's own values: `bad_price` (price <= 0, a negative bid/ask), `negative_size` (size, volume,
       bid/ask size or open interest < 0), `crossed_book` (stated bid > stated ask);
    4. `outside_session`: the instrument's session, breaks and weekdays, in exchange-local time;
    5. against the ticks kept before it from this source: `out_of_order` (an earlier ts than the symbol's
       last kept tick), then `duplicate`: the same event as a kept tick (see `identity`);
    6. the derived fields (kernel.py): `bad_price` (a trade without a price, a quote with no price to
       carry), `negative_size` (a cumulative volume that went back), `crossed_book` (a carried side crosses).
    Timestamps are UTC epoch nanoseconds; sessions are checked in the instrument's local time.
    """

    def __init__(self, source: str, venue: str | None, rules: Rules) -> None:
        self.source = source
        self.venue = venue
        self.rules = rules
        self.identity = identity(rules)
        self._codes: dict[str, int] = {}
        self._instruments: list[Instrument] = []
        self._unknown: dict[str, str] = {}  # symbol -> why it has no instrument
        self._state_i, self._state_f = kernel.new_state(0)
        # kept ticks at each symbol's last ts, (codes, ts, seq, stated values): the next chunk may repeat them
        self._context = (
            np.empty(0, np.int64),
            np.empty(0, np.int64),
            np.empty(0, np.int64),
            np.empty((0, kernel.N_VALUES)),
        )
        self._events = KeptEvents()

    def validate(self, chunk: Candidates) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(ticks, quarantine) of one chunk: canonical ticks in source order and QUARANTINE_COLUMNS rows."""
        checked = self.check(chunk)
        return checked.ticks, checked.quarantine

    def check(self, chunk: Candidates) -> Checked:
        """Validate one chunk: its ticks and quarantine rows, with each tick's day and stated fields."""
        n = len(chunk)
        problems = chunk.problems
        # one matrix for the kernel; `values` are views of its columns, so the checks edit it in place
        stated = np.column_stack([chunk.values[name] for name in VALUE_FIELDS]).astype(np.float64, copy=False)
        values = {name: stated[:, k] for k, name in enumerate(VALUE_FIELDS)}
        seq = (chunk.rows if chunk.seq is None else chunk.seq).astype(np.int64, copy=False)
        codes = self._symbol_codes(chunk.symbol, problems)
        if self.rules.snap_to_tick:
            self._snap(codes, values, problems)
        _check_values(values, problems)
        day = self._check_session(codes, chunk.ts, problems)
        skip = ~problems.ok
        seen, same_key = np.zeros(n, dtype=bool), np.full(n, -1, dtype=np.int64)
        if self.identity == kernel.BY_EXCHANGE_SEQ:
            seen, same_key = self._events.lookup(codes, day, seq, problems.ok)

        ctx_sym, ctx_ts, ctx_seq, ctx_values = self._context
        m = len(ctx_sym)
        out = np.full((m + n, kernel.N_OUT), np.nan)
        verdict = np.zeros(m + n, dtype=np.int8)
        note = np.zeros(m + n, dtype=np.int8)
        aux = np.zeros(m + n, dtype=np.int64)
        aux_f = np.zeros(m + n)
        kernel.fold_rows(
            _after(ctx_sym, np.where(skip, 0, codes)),
            _after(np.zeros(m, np.int64), day),
            _after(ctx_ts, chunk.ts),
            _after(ctx_seq, seq),
            _after(np.zeros(m, bool), skip),
            _after(np.zeros(m, bool), seen),
            _after(np.full(m, -1, np.int64), np.where(same_key >= 0, same_key + m, -1)),
            m,
            _after(ctx_values, stated),
            np.array([self.rules.size_from_volume, self.rules.cumulative_volume, self.identity]),
            self._state_i,
            self._state_f,
            out,
            verdict,
            note,
            aux,
            aux_f,
        )
        out, verdict, note, aux, aux_f = out[m:], verdict[m:], note[m:], aux[m:], aux_f[m:]
        self._flag_verdicts(chunk, day, seq, verdict, note, aux, aux_f, out, problems)
        kept = problems.ok
        if self.identity == kernel.BY_EXCHANGE_SEQ:
            self._events.add(codes[kept], day[kept], seq[kept])
        elif self.identity != kernel.BY_NOTHING:
            self._keep_context(codes[kept], chunk.ts[kept], seq[kept], stated[kept])
        ticks = self._ticks(chunk, codes, seq, out, kept)
        return Checked(ticks, self._quarantine(chunk, codes, day, problems), day[kept], stated[kept])

    # symbols -------------------------------------------------------------------------------------------

    def _symbol_codes(self, symbol: np.ndarray, problems: Problems) -> np.ndarray:
        """State index of each row's symbol (-1 when unknown, the row quarantined as unknown_symbol)."""
        # only rows that parsed: a garbled row must not declare its garbage as a symbol of the venue
        labels, uniques = pd.factorize(pd.Series(np.where(problems.ok, symbol, ""), dtype=object))
        lookup = np.array([self._code(str(s)) for s in uniques] + [-1], dtype=np.int64)
        codes = lookup[labels]
        unknown = codes < 0
        problems.flag(unknown & (symbol == ""), "unparseable", "symbol is empty")
        problems.flag(unknown, "unknown_symbol", lambda w: [self._unknown.get(str(symbol[i]), "") for i in w])
        return codes

    def _code(self, symbol: str) -> int:
        if symbol in self._codes:
            return self._codes[symbol]
        if not symbol or symbol in self._unknown:
            return -1
        try:
            instrument = instrument_for(symbol, self.venue) if self.venue else get_instrument(symbol)
        except KeyError as exc:
            self._unknown[symbol] = str(exc.args[0])
            return -1
        self._codes[symbol] = len(self._instruments)
        self._instruments.append(instrument)
        state_i, state_f = kernel.new_state(1)
        self._state_i = np.vstack([self._state_i, state_i])
        self._state_f = np.vstack([self._state_f, state_f])
        return self._codes[symbol]

    def _symbols(self, codes: np.ndarray) -> dict[int, tuple[Instrument, np.ndarray]]:
        """Instrument and row positions of each known symbol code (one pass, however many symbols)."""
        groups = pd.Series(codes).groupby(codes, sort=False).indices
        return {int(c): (self._instruments[c], rows) for c, rows in groups.items() if c >= 0}

    # row checks ----------------------------------------------------------------------------------------

    def _snap(self, codes: np.ndarray, values: dict[str, np.ndarray], problems: Problems) -> None:
        """Snap float artefacts (33.980000000000004, float32 25974.900390625) to the instrument's tick grid."""
        for instrument, rows in self._symbols(np.where(problems.ok, codes, -1)).values():
            for name in ("price", "bid", "ask"):
                values[name][rows] = snap_to_tick(values[name][rows], instrument.tick_size)

    def _check_session(self, codes: np.ndarray, ts: np.ndarray, problems: Problems) -> np.ndarray:
        """Exchange-local day number of every row (0 when unknown); quarantines rows outside the session."""
        day = np.zeros(len(codes), dtype=np.int64)
        for instrument, rows in self._symbols(np.where(ts != NAT, codes, -1)).values():
            d, tod = local_day_and_time(instrument, ts[rows])
            day[rows] = d
            outside = np.zeros(len(codes), dtype=bool)
            outside[rows] = outside_session(instrument, d, tod)

            def detail(w, rows=rows, d=d, tod=tod, instrument=instrument):
                at = np.searchsorted(rows, w)
                return [session_detail(instrument, d[k], tod[k]) for k in at]

            problems.flag(outside, "outside_session", detail)
        return day

    # state ---------------------------------------------------------------------------------------------

    def _keep_context(self, codes: np.ndarray, ts: np.ndarray, seq: np.ndarray, stated: np.ndarray) -> None:
        """Remember the kept ticks at each symbol's last timestamp: the next chunk may repeat them."""
        ctx_sym, ctx_ts, ctx_seq, ctx_values = self._context
        codes = np.concatenate([ctx_sym, codes])
        ts = np.concatenate([ctx_ts, ts])
        seq = np.concatenate([ctx_seq, seq])
        stated = np.concatenate([ctx_values, stated])
        at_last = ts == self._state_i[codes, kernel.I_TS] if len(codes) else np.zeros(0, bool)
        self._context = (codes[at_last], ts[at_last], seq[at_last].astype(np.int64), stated[at_last])

    # output --------------------------------------------------------------------------------------------

    def _flag_verdicts(self, chunk, day, seq, verdict, note, aux, aux_f, out, problems) -> None:
        def detail(where: np.ndarray) -> list[str]:
            return [_verdict_detail(chunk, day, seq, verdict, note, aux, aux_f, out, i) for i in where]

        for code, reason in VERDICT_REASONS.items():
            problems.flag(verdict == code, reason, detail)

    def _ticks(self, chunk, codes, seq, out, kept) -> pd.DataFrame:
        if not kept.any():
            return empty_ticks()
        names = np.array(list(self._codes), dtype=object)  # code -> symbol
        fields = out[kept, : kernel.N_VALUES].T.copy()  # one contiguous row per field
        frame = pd.DataFrame(
            {
                "ts": chunk.ts[kept],
                "symbol": names[codes[kept]],
                "seq": seq[kept].astype(np.int64),
                **dict(zip(VALUE_FIELDS, fields, strict=True)),
            }
        )
        return coerce_ticks(frame)

    def _quarantine(self, chunk, codes, day, problems) -> pd.DataFrame:
        bad = np.flatnonzero(~problems.ok)
        if not len(bad):
            return coerce_quarantine(pd.DataFrame({c: [] for c in QUARANTINE_COLUMNS}))
        ts = chunk.ts[bad]
        known = (ts != NAT) & (codes[bad] >= 0)
        days = np.full(len(bad), "", dtype=object)
        days[known] = day_text(day[bad][known])
        frame = pd.DataFrame(
            {
                "source": self.source,
                "row": chunk.rows[bad],
                "symbol": chunk.symbol[bad],
                "day": days,
                "ts": pd.to_datetime(np.where(ts == NAT, NAT, ts), unit="ns", utc=True),
                "reason": problems.reason[bad],
                "detail": problems.detail[bad],
                "raw": chunk.raw(bad),
                "quarantined_at": pd.Timestamp.now(tz="UTC"),
            }
        )
        return coerce_quarantine(frame)


def _after(context: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """`rows` preceded by the context rows (no copy when there are none)."""
    return np.concatenate([context, rows]) if len(context) else rows


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b):
        return True
    return bool(a == b)


def _check_values(values: dict[str, np.ndarray], problems: Problems) -> None:
    """Quarantine rows whose stated values break the tick contract (NaN means not stated)."""
    price, bid, ask = values["price"], values["bid"], values["ask"]
    # +-inf is never a price or a size (a scale overflow, 1e400 in a file); only EMPTY marks an empty side
    problems.flag((price <= 0) | np.isinf(price), "bad_price", lambda w: [f"price={price[i]}" for i in w])
    for name in ("bid", "ask"):
        col = values[name]
        problems.flag(
            ((col < 0) | np.isinf(col)) & (col != EMPTY),
            "bad_price",
            lambda w, c=col, n=name: [f"{n}={c[i]}" for i in w],
        )
        col[col == 0] = EMPTY  # a zero price is how feeds say a book side is empty
    for name in ("size", "volume", "bid_size", "ask_size", "oi"):
        col = values[name]
        problems.flag(
            (col < 0) | np.isinf(col), "negative_size", lambda w, c=col, n=name: [f"{n}={c[i]}" for i in w]
        )
    crossed = (bid > ask) & (bid != EMPTY) & (ask != EMPTY)
    problems.flag(crossed, "crossed_book", lambda w: [f"bid={bid[i]} > ask={ask[i]}" for i in w])


def snap_to_tick(prices: np.ndarray, tick_size: float) -> np.ndarray:
    """Prices within float-artefact distance of the tick grid moved onto it; others, NaN and EMPTY kept."""
    out = np.array(prices, dtype=np.float64, copy=True)
    finite = np.isfinite(out) & (out > 0)
    ticks = out[finite] / tick_size
    nearest = np.round(ticks)
    tolerance = np.maximum(SNAP_TICKS, SNAP_RELATIVE * ticks)
    close = np.abs(ticks - nearest) < tolerance
    decimals = max(0, int(np.ceil(-np.log10(tick_size))) + 1)
    # the second rounding turns k * tick (3416 * 0.01 = 34.160000000000004) into the nearest double
    snapped = np.where(close, np.round(nearest * tick_size, decimals), out[finite])
    out[finite] = snapped
    return out


def _iso(ns: int) -> str:
    return pd.Timestamp(int(ns), tz="UTC").isoformat()


def _verdict_detail(chunk, day, seq, verdict, note, aux, aux_f, out, i) -> str:
    """What the kernel found wrong with row i, with the values involved."""
    v, k = verdict[i], note[i]
    if v == kernel.OUT_OF_ORDER:
        return f"ts {_iso(chunk.ts[i])} is before {_iso(aux[i])}, the last kept tick of {chunk.symbol[i]}"
    if k == kernel.NOTE_SAME_KEY:
        return (
            f"(symbol, ts, seq) = ({chunk.symbol[i]}, {_iso(chunk.ts[i])}, {chunk.seq[i]}) was kept already"
        )
    if k == kernel.NOTE_SAME_EVENT:
        return f"(symbol, day, seq) = ({chunk.symbol[i]}, {day_text(day[i : i + 1])[0]}, {seq[i]}) was kept already"
    if k == kernel.NOTE_REPEAT:
        return f"repeats row {aux[i]} field for field at ts {_iso(chunk.ts[i])}"
    if k == kernel.NOTE_TRADE_WITHOUT_PRICE:
        return f"trade of size {out[i, kernel.V_SIZE]} without a price"
    if k == kernel.NOTE_NO_PRICE:
        return "quote before the day's first trade without a two-sided book to take the mid of"
    if k == kernel.NOTE_VOLUME_BACK:
        return f"cumulative volume {out[i, kernel.V_VOLUME]} is below the previous tick's {aux_f[i]}"
    return (
        f"bid={out[i, kernel.V_BID]} > ask={out[i, kernel.V_ASK]} with a side carried from an earlier quote"
    )
