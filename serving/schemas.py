"""Request and response models of the scoring service: the canonical tick on the wire, and what comes back.

Validation lives here so a malformed request is refused before any state changes: every error names
its field as `ticks[3].price` in its message (and as `loc` ["ticks", 3, "price"]).
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    ValidationInfo,
    WrapValidator,
    field_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from feature_store.instruments import Instrument, load_instruments
from pipelines.sources.session import local_day_and_time, outside_session, session_detail

MAX_TICKS_PER_REQUEST = 10_000
# Epoch nanoseconds before 2000-01-01 are almost always seconds or milliseconds sent by mistake.
MIN_TS_NS = 946_684_800 * 1_000_000_000
# Epoch nanoseconds are int64 and end in April 2262; a tick's whole trading day (session open and close,
# in any exchange's time zone) must fit too, so the last accepted instant is the end of 2261 (UTC).
MAX_TS_NS = 9_214_646_400 * 1_000_000_000 - 1
_MIN_TS, _MAX_TS = pd.Timestamp(MIN_TS_NS, tz="UTC"), pd.Timestamp(MAX_TS_NS, tz="UTC")


def _epoch_ns(value: object) -> int:
    """`ts` on the wire: integer epoch nanoseconds (UTC) or an ISO-8601 string with an offset."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise PydanticCustomError("ts_type", "expected integer epoch nanoseconds or an ISO-8601 string")
    if isinstance(value, str):
        try:
            stamp = pd.Timestamp(value)
        except ValueError:
            raise PydanticCustomError(
                "ts_parse", "cannot parse '{value}' as ISO-8601", {"value": value}
            ) from None
        if stamp is pd.NaT or stamp.tzinfo is None:
            # A naive wall time could be exchange-local or UTC; guessing would shift every feature.
            raise PydanticCustomError(
                "ts_naive", "'{value}' has no UTC offset; add 'Z' or '+05:30'", {"value": value}
            )
        # Compared as timestamps first: pandas parses far dates at a coarser unit, with no nanoseconds
        if not _MIN_TS <= stamp <= _MAX_TS:
            raise _out_of_range(value)
        value = int(stamp.as_unit("ns").value)
    if not MIN_TS_NS <= value <= MAX_TS_NS:
        raise _out_of_range(value)
    return value


def _out_of_range(value: int | str) -> PydanticCustomError:
    if isinstance(value, int) and value < MIN_TS_NS:
        return PydanticCustomError(
            "ts_range",
            "{value} is before 2000-01-01 in epoch nanoseconds (seconds or ms sent?)",
            {"value": value},
        )
    return PydanticCustomError(
        "ts_range",
        "{value} is outside 2000-01-01 to 2261-12-31 UTC (epoch nanoseconds are int64)",
        {"value": value},
    )


# Strict: a number in quotes is a client bug to report, not to coerce; JSON integers are still accepted.
Price = Annotated[float, Field(gt=0, allow_inf_nan=False, strict=True)]
# Large enough for any session volume in shares or contracts, small enough that sums of a session stay finite
MAX_QUANTITY = 1e15
Quantity = Annotated[float, Field(ge=0, le=MAX_QUANTITY, allow_inf_nan=False, strict=True)]
INT64_MAX = 2**63 - 1
# A price is sane for its instrument between one tick and a billion ticks (e.g. NIFTY 0.05 to 5e7): a price
# of 1e308 would leave the session's sums non-finite for the rest of the day.
PRICE_BAND_TICKS = 1e9


def _instruments(info: ValidationInfo) -> dict[str, Instrument]:
    """The instruments of this validation: `context={"instruments": ...}`, read once per request by
    `parse_request` (a file check per field costs more than the rest of a tick's validation)."""
    context = info.context or {}
    return context["instruments"] if "instruments" in context else load_instruments()


class Tick(BaseModel):
    """One canonical tick (see `feature_store.schema`): ts as epoch ns (UTC) once validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ts: Annotated[int, BeforeValidator(_epoch_ns)] = Field(
        description="exchange event time: integer epoch nanoseconds (UTC) or ISO-8601 with offset"
    )
    symbol: str = Field(description="instrument id, declared in instruments.yaml")
    seq: StrictInt = Field(ge=0, le=INT64_MAX, description="order of the event within (symbol, trading day)")
    price: Price = Field(description="last traded price")
    size: Quantity = Field(description="quantity traded by this event (0 for a quote)")
    volume: Quantity = Field(description="cumulative traded quantity of the session")
    side: StrictInt = Field(ge=-1, le=1, description="aggressor: +1 buy, -1 sell, 0 none/unknown")
    bid: Price | None = None
    ask: Price | None = None
    bid_size: Quantity | None = None
    ask_size: Quantity | None = None
    oi: Quantity | None = None

    @field_validator("symbol")
    @classmethod
    def _known_symbol(cls, symbol: str, info: ValidationInfo) -> str:
        known = _instruments(info)
        if symbol not in known:
            raise PydanticCustomError(
                "unknown_symbol",
                "unknown symbol '{symbol}'; known: {known}",
                {"symbol": symbol, "known": sorted(known)},
            )
        return symbol

    @field_validator("ask")
    @classmethod
    def _book_not_crossed(cls, ask: float | None, info: ValidationInfo) -> float | None:
        bid = info.data.get("bid")
        if ask is not None and bid is not None and bid > ask:
            raise PydanticCustomError(
                "crossed_book", "crossed book: bid {bid} > ask {ask}", {"bid": bid, "ask": ask}
            )
        return ask

    @field_validator("price", "bid", "ask")
    @classmethod
    def _price_in_band(cls, value: float | None, info: ValidationInfo) -> float | None:
        instrument = _instruments(info).get(info.data.get("symbol", ""))
        if value is None or instrument is None:  # an unknown symbol is reported on its own field
            return value
        low, high = instrument.tick_size, instrument.tick_size * PRICE_BAND_TICKS
        if not low <= value <= high:
            raise PydanticCustomError(
                "price_band",
                "{value} is outside {symbol}'s sane band {low} to {high} (one tick to {ticks:.0e} ticks)",
                {
                    "value": value,
                    "symbol": instrument.symbol,
                    "low": low,
                    "high": high,
                    "ticks": PRICE_BAND_TICKS,
                },
            )
        return value

    @property
    def key(self) -> tuple[int, int]:
        """(ts_ns, seq): the tick's position in its symbol's stream."""
        return (self.ts, self.seq)


def _ordered_per_symbol(ticks: list[Tick]) -> list[Tick]:
    """Within one request, each symbol's ticks must be strictly increasing in (ts, seq)."""
    last: dict[str, tuple[int, tuple[int, int]]] = {}
    for i, tick in enumerate(ticks):
        previous = last.get(tick.symbol)
        if previous is not None and tick.key <= previous[1]:
            what = "repeats" if tick.key == previous[1] else "is before"
            raise ValidationError.from_exception_data(
                "Tick",
                [
                    InitErrorDetails(
                        type=PydanticCustomError(
                            "tick_order",
                            "{symbol} (ts, seq) {what} ticks[{j}]; send a symbol's ticks in (ts, seq) order",
                            {"symbol": tick.symbol, "what": what, "j": previous[0]},
                        ),
                        loc=(i, "seq" if tick.ts == previous[1][0] else "ts"),
                        input=tick.model_dump(),
                    )
                ],
            )
        last[tick.symbol] = (i, tick.key)
    return ticks


def _path(loc: tuple[int | str, ...]) -> str:
    out = "ticks"
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _name_fields(value: Any, handler: Any) -> list[Tick]:
    """Prefix every error message with its field path, e.g. `ticks[3].price: ...`."""
    try:
        return handler(value)
    except ValidationError as exc:
        errors = [
            InitErrorDetails(
                type=PydanticCustomError(
                    e["type"], "{field}: {msg}", {"field": _path(e["loc"]), "msg": e["msg"]}
                ),
                loc=e["loc"],
                input=e.get("input"),
            )
            for e in exc.errors()
        ]
        raise ValidationError.from_exception_data(exc.title, errors) from None


Ticks = Annotated[
    list[Tick],
    Field(
        min_length=1,
        max_length=MAX_TICKS_PER_REQUEST,
        description="ticks of any symbols, each symbol in order",
    ),
    AfterValidator(_ordered_per_symbol),
    WrapValidator(_name_fields),
]


class ScoreRequest(BaseModel):
    """The body of POST /score."""

    model_config = ConfigDict(extra="forbid")

    ticks: Ticks


class ShadowPrediction(BaseModel):
    """What the latest candidates (not yet champions) say about the same tick; no trade is decided on it."""

    model_config = ConfigDict(frozen=True)

    p15: dict[str, float]
    p30: dict[str, float]
    signal: Literal["UP", "DOWN", "FLAT"]
    confidence: float
    models: dict[str, str] = Field(description="registered model name -> candidate version")


class Prediction(BaseModel):
    """The scores and the trade-filter decision for one tick."""

    model_config = ConfigDict(frozen=True)

    symbol: str
    ts: str = Field(description="the tick's exchange time, ISO-8601 UTC with nanoseconds")
    seq: int
    p15: dict[str, float] = Field(description="direction-15m class probabilities (LABELS_15M)")
    p30: dict[str, float] = Field(description="direction-30m class probabilities (LABELS_30M)")
    signal: Literal["UP", "DOWN", "FLAT"]
    confidence: float
    action: Literal["BUY", "SELL", "EXIT", "NONE"]
    reason: str
    warm: bool = Field(description="the symbol's feature window is initialised")
    history_complete: bool = Field(
        default=True,
        description="the symbol's state holds every stored tick of its session before this one; false when "
        "the tick store could not be read at the service's (re)start, and then no trade is allowed",
    )
    models: dict[str, str] = Field(description="registered model name -> version used")
    shadow: ShadowPrediction | None = Field(
        default=None, description="the latest candidates' scores, when the service scores them in shadow"
    )


class ScoreResponse(BaseModel):
    """One prediction per request tick, in request order."""

    predictions: list[Prediction]


class FeatureSetInfo(BaseModel):
    name: str
    version: int
    features: int = Field(description="number of features")


class ServedModel(BaseModel):
    """A champion model version held in memory by the service."""

    name: str
    version: str
    alias: str
    flavor: str
    classes: list[str]
    feature_set: FeatureSetInfo
    run_id: str
    loaded_at: dt.datetime


class ModelsResponse(BaseModel):
    """What GET /models answers: the served champions, and the last registry problem if any."""

    models: list[ServedModel]
    shadow: list[ServedModel] = Field(default_factory=list, description="candidates scored in shadow")
    ready: bool = Field(description="champions are loaded and /score answers")
    problem: str | None = Field(
        default=None, description="why nothing is served, or why the newest champion is not (still serving)"
    )
    shadow_problem: str | None = Field(
        default=None, description="why the latest candidates are not in shadow"
    )
    checked_at: dt.datetime | None = Field(default=None, description="last look at the registry (UTC)")


def iso_ns(ts_ns: int) -> str:
    """Epoch nanoseconds as ISO-8601 UTC with all nine fractional digits (no pandas: hot path)."""
    seconds, nanos = divmod(ts_ns, 1_000_000_000)
    return f"{_iso_seconds(seconds)}.{nanos:09d}Z"


@functools.lru_cache(maxsize=4096)  # a session's ticks share their seconds many times over
def _iso_seconds(seconds: int) -> str:
    return f"{dt.datetime.fromtimestamp(seconds, dt.UTC):%Y-%m-%dT%H:%M:%S}"


def parse_request(body: bytes) -> ScoreRequest:
    """POST /score's body validated (raises pydantic's ValidationError), the instruments file read once."""
    return ScoreRequest.model_validate_json(body, context={"instruments": load_instruments()})


@functools.lru_cache(maxsize=4096)
def _open_intervals(instrument: Instrument, day: int) -> tuple[tuple[int, int], ...]:
    """The session of local day number `day` (days since 1970-01-01) as UTC epoch-ns [start, end)
    intervals, breaks taken out; () for a day of the week the venue does not trade. The same rule as the
    ingest's `outside_session`, in a form a single tick is checked against in microseconds."""
    if outside_session(instrument, np.array([day]), np.array([instrument_open_ns(instrument)]))[0]:
        return ()
    local = dt.datetime(1970, 1, 1) + dt.timedelta(days=day)
    edges = [instrument.open, *(t for b in instrument.breaks for t in b), instrument.close]
    out = []
    for start, end in zip(edges[::2], edges[1::2], strict=True):
        bounds = []
        for t in (start, end):
            wall = local + (dt.timedelta(days=1) if t == dt.time.max else dt.timedelta(0))
            wall = dt.datetime.combine(wall.date(), dt.time() if t == dt.time.max else t, instrument.tz)
            bounds.append(int(wall.timestamp()) * 1_000_000_000 + wall.microsecond * 1000)
        out.append((bounds[0], bounds[1]))
    return tuple(out)


def instrument_open_ns(instrument: Instrument) -> int:
    """The session's opening time of day in nanoseconds."""
    t = instrument.open
    return ((t.hour * 60 + t.minute) * 60 + t.second) * 1_000_000_000 + t.microsecond * 1000


def in_session(instrument: Instrument, ts_ns: int) -> bool:
    """Whether UTC epoch-ns `ts_ns` lies in `instrument`'s session (the ingest's rule, one tick at a time)."""
    return _interval_of(instrument, ts_ns) is not None


def _interval_of(instrument: Instrument, ts_ns: int) -> tuple[int, int] | None:
    seconds = ts_ns // 1_000_000_000
    offset = dt.datetime.fromtimestamp(seconds, instrument.tz).utcoffset()
    day = (seconds + int(offset.total_seconds())) // 86_400
    return next(((a, b) for a, b in _open_intervals(instrument, day) if a <= ts_ns < b), None)


def untimely(ticks: list[Tick], now_ns: int, max_ahead_ns: int) -> tuple[int, str] | None:
    """The first tick (index, why) outside its instrument's session or more than `max_ahead_ns` ahead of
    `now_ns` (UTC epoch ns), else None. Sessions are the ingest's (`pipelines.sources.session`)."""
    for i, tick in enumerate(ticks):
        if tick.ts > now_ns + max_ahead_ns:
            ahead = (tick.ts - now_ns) / 1e9
            return i, (
                f"ticks[{i}].ts: {iso_ns(tick.ts)} is {ahead:,.0f} s ahead of the service's clock "
                f"({iso_ns(now_ns)}; at most {max_ahead_ns / 1e9:g} s allowed)"
            )
    instruments = load_instruments()
    known: dict[str, tuple[int, int]] = {}  # symbol -> the open interval its last tick fell in
    for i, tick in enumerate(ticks):
        interval = known.get(tick.symbol)
        if interval is not None and interval[0] <= tick.ts < interval[1]:
            continue
        instrument = instruments[tick.symbol]
        interval = _interval_of(instrument, tick.ts)
        if interval is not None:
            known[tick.symbol] = interval
        else:
            day, tod = local_day_and_time(instrument, np.array([tick.ts], dtype=np.int64))
            return i, f"ticks[{i}].ts: {session_detail(instrument, int(day[0]), int(tod[0]))}"
    return None
