"""Instruments as configuration: exchange time zone, session hours, tick size and label thresholds."""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

DEFAULT_CONFIG = Path(__file__).with_name("instruments.yaml")


@dataclass(frozen=True)
class LabelThresholds:
    """Label parameters in price points: targets, the 15-minute stop, trap fraction and flat range."""

    target_15m: float
    stop_15m: float
    target_30m: float
    flat_range: float
    trap_fraction: float = 0.6
    horizon_15m: pd.Timedelta = pd.Timedelta(minutes=15)
    horizon_30m: pd.Timedelta = pd.Timedelta(minutes=30)

    def __post_init__(self) -> None:
        for name in ("target_15m", "stop_15m", "target_30m", "flat_range"):
            if not getattr(self, name) > 0:
                raise ValueError(f"label threshold {name} must be > 0, got {getattr(self, name)!r}")
        if not 0 < self.trap_fraction < 1:
            raise ValueError(f"trap_fraction must be in (0, 1), got {self.trap_fraction!r}")


class Trading(BaseModel):
    """How a venue (or a symbol) trades, for the trade filter and the backtest: the filter's thresholds,
    windows without entries, session-end flattening, and costs. Times are exchange-local 'HH:MM'; points
    are price points."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # the trade filter's thresholds where this venue or symbol departs from the reference design's
    min_confidence: float | None = Field(default=None, ge=0, le=1)
    require_agreement: bool | None = None
    cooldown_minutes: float | None = Field(default=None, ge=0)
    max_trades_per_day: int | None = Field(default=None, ge=1)
    no_trade_windows: tuple[tuple[str, str], ...] = ()  # e.g. NSE's lunch break (("12:30", "13:30"),)
    flatten_minutes_before_close: float | None = Field(default=None, ge=0)  # None: positions may be carried
    commission_bps: float = Field(default=0.0, ge=0)  # per order, of the order's notional
    fee_per_order: float = Field(default=0.0, ge=0)  # fixed, in `currency`
    slippage_ticks: float = Field(default=1.0, ge=0)  # fill away from the price when a tick has no book
    point_value: float = Field(
        default=1.0, gt=0
    )  # currency per price point of one position (lot x multiplier)
    currency: str = "USD"

    @field_validator("no_trade_windows")
    @classmethod
    def _windows(cls, windows: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
        for start, end in windows:
            if not dt.time.fromisoformat(start) < dt.time.fromisoformat(end):
                raise ValueError(f"no_trade_windows: start must be before end, got {(start, end)!r}")
        return windows


@dataclass(frozen=True)
class Instrument:
    """A tradable symbol with its venue's session; `open`/`close` are exchange-local wall times."""

    symbol: str
    venue: str
    timezone: str
    open: dt.time
    close: dt.time  # dt.time.max stands for a session ending at midnight (24:00)
    labels: LabelThresholds
    tick_size: float
    weekdays: tuple[int, ...] = (0, 1, 2, 3, 4)
    breaks: tuple[tuple[dt.time, dt.time], ...] = ()
    reference_price: float = 100.0
    calendar: str | None = None  # exchange_calendars name of the venue (holidays, sessions), if it has one
    partitions_start: dt.date | None = None  # first Dagster day partition even before any tick is stored
    trading: Trading = field(default_factory=Trading)
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        ZoneInfo(self.timezone)  # raises on an unknown zone
        if self.close <= self.open:
            raise ValueError(f"{self.symbol}: session close {self.close} must be after open {self.open}")
        if self.tick_size <= 0:
            raise ValueError(f"{self.symbol}: tick_size must be > 0")

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def is_trading_day(self, day: dt.date) -> bool:
        """Whether the venue has a session on `day` (exchange-local): its exchange calendar where one is
        configured and covers the day (holidays left out), else the instrument's weekdays."""
        if self.calendar:
            first, last, sessions = _calendar_sessions(self.calendar)
            if first <= day <= last:
                return day in sessions
        return day.weekday() in self.weekdays

    def trading_days_between(self, first: dt.date, last: dt.date) -> list[dt.date]:
        """Trading days from `first` to `last`, both included (see `is_trading_day`)."""
        count = (last - first).days + 1
        return [d for d in (first + dt.timedelta(days=k) for k in range(count)) if self.is_trading_day(d)]

    def session_bounds(self, day: dt.date) -> tuple[pd.Timestamp, pd.Timestamp]:
        """Session open and close of `day` (exchange-local date) as UTC timestamps."""
        start = pd.Timestamp(dt.datetime.combine(day, self.open), tz=self.tz)
        if self.close == dt.time.max:
            end = pd.Timestamp(dt.datetime.combine(day + dt.timedelta(days=1), dt.time()), tz=self.tz)
        else:
            end = pd.Timestamp(dt.datetime.combine(day, self.close), tz=self.tz)
        return start.tz_convert("UTC"), end.tz_convert("UTC")

    def sessions_per_year(self) -> int:
        """Sessions in a year of the venue: its exchange calendar's last complete year, else its weekdays
        over 365 days (365 for a venue that trades every day). Annualises per-session statistics."""
        if self.calendar:
            first, last, sessions = _calendar_sessions(self.calendar)
            year = last.year - 1
            if first.year < year:
                return sum(1 for day in sessions if day.year == year)
        return round(365 * len(self.weekdays) / 7)

    def trading_day(self, ts: pd.Series | pd.DatetimeIndex) -> pd.Series:
        """Exchange-local trading date of each UTC timestamp."""
        local = pd.Series(pd.DatetimeIndex(ts).tz_convert(self.tz))
        return local.dt.date

    def trading_days(self, start: dt.date, count: int) -> list[dt.date]:
        """The first `count` trading days on or after `start`."""
        days, day = [], start
        while len(days) < count:
            if self.is_trading_day(day):
                days.append(day)
            day += dt.timedelta(days=1)
        return days


@cache
def _calendar_sessions(name: str) -> tuple[dt.date, dt.date, frozenset[dt.date]]:
    """(first, last, every session) of exchange calendar `name` over the span the library knows."""
    import exchange_calendars  # a heavy import, paid only when a calendar is asked for

    sessions = exchange_calendars.get_calendar(name).sessions.date
    return sessions[0], sessions[-1], frozenset(sessions)


DEFAULT_UNIVERSE = "default"
UNIVERSE_ENV = "TICKML_UNIVERSE"  # the universe a scoring service serves (set by `tickml serve --universe`)
_UNIVERSE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,40}")


@dataclass(frozen=True)
class Universe:
    """A named set of symbols that one pair of models is trained on (pooled) and registered under.

    The default universe owns `direction-15m` and `direction-30m`; another universe owns
    `direction-15m-<name>` and `direction-30m-<name>`, so training it never moves another's champion.
    """

    name: str
    symbols: tuple[str, ...]

    def __post_init__(self) -> None:
        if not _UNIVERSE_NAME.fullmatch(self.name):
            raise ValueError(
                f"universe name {self.name!r} must be letters, digits, '_' or '-' (at most 41, starting "
                "with a letter or digit)"
            )
        if not self.symbols:
            raise ValueError(f"universe {self.name!r} has no symbols")
        if len(set(self.symbols)) != len(self.symbols):
            raise ValueError(f"universe {self.name!r} lists a symbol twice: {list(self.symbols)}")

    def model_name(self, base: str) -> str:
        """The registered model name of `base` (e.g. 'direction-15m') in this universe."""
        return base if self.name == DEFAULT_UNIVERSE else f"{base}-{self.name.lower()}"


def _parse_time(text: str) -> dt.time:
    return dt.time.max if text == "24:00" else dt.time.fromisoformat(text)


def _build(symbol: str, spec: dict, venues: dict) -> Instrument:
    venue_name = spec.get("venue")
    if venue_name not in venues:
        raise KeyError(f"instrument {symbol!r} names unknown venue {venue_name!r}")
    merged = {**venues[venue_name], **{k: v for k, v in spec.items() if k != "venue"}}
    labels = {**venues[venue_name].get("labels", {}), **spec.get("labels", {})}
    trading = {**(venues[venue_name].get("trading") or {}), **(spec.get("trading") or {})}
    return Instrument(
        symbol=symbol,
        venue=venue_name,
        timezone=merged["timezone"],
        open=_parse_time(merged["session"]["open"]),
        close=_parse_time(merged["session"]["close"]),
        breaks=tuple((_parse_time(a), _parse_time(b)) for a, b in merged.get("breaks", [])),
        weekdays=tuple(merged.get("weekdays", (0, 1, 2, 3, 4))),
        tick_size=float(merged["tick_size"]),
        labels=LabelThresholds(**{k: float(v) for k, v in labels.items()}),
        reference_price=float(merged.get("price", 100.0)),
        calendar=merged.get("calendar"),
        partitions_start=_date(merged.get("partitions_start")),
        trading=_trading(symbol, trading),
    )


def _trading(symbol: str, spec: dict) -> Trading:
    try:
        return Trading(**spec)
    except ValidationError as exc:
        problems = "; ".join(
            f"trading.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False)
        )
        raise ValueError(f"instrument {symbol!r}: {problems}") from None


def _date(value) -> dt.date | None:
    """A YAML date (parsed already, or YYYY-MM-DD text), or None."""
    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def overlay_path() -> Path:
    """The user's instruments file: $TICKML_INSTRUMENTS, else $TICKML_HOME/instruments.yaml (may not exist)."""
    explicit = os.environ.get("TICKML_INSTRUMENTS")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("TICKML_HOME") or ".tickml") / "instruments.yaml"


def _merge(base: dict, overlay: dict) -> dict:
    """Venues and symbols of `overlay` override those of `base`, key by key within each entry."""
    merged = {}
    for section in ("venues", "symbols", "universes"):
        entries = {k: dict(v) for k, v in (base.get(section) or {}).items()}
        for name, spec in (overlay.get(section) or {}).items():
            entries[name] = {**entries.get(name, {}), **(spec or {})}
        merged[section] = entries
    return merged


@cache
def _load(overlay: str, stamp: float) -> dict[str, Instrument]:
    config = yaml.safe_load(DEFAULT_CONFIG.read_text())
    if stamp:  # the overlay exists
        config = _merge(config, yaml.safe_load(Path(overlay).read_text()) or {})
    venues = config.get("venues", {})
    return {sym: _build(sym, spec, venues) for sym, spec in config.get("symbols", {}).items()}


def load_instruments(path: str | Path | None = None) -> dict[str, Instrument]:
    """The shipped defaults overridden by the user's file (`path`, else `overlay_path()`), by symbol."""
    overlay = Path(path) if path else overlay_path()
    stamp = overlay.stat().st_mtime_ns if overlay.exists() else 0.0  # re-read when the file changes
    return _load(str(overlay), stamp)


def _config() -> dict:
    """The shipped defaults merged with the user's file, as parsed YAML."""
    config = yaml.safe_load(DEFAULT_CONFIG.read_text())
    overlay = overlay_path()
    if overlay.exists():
        config = _merge(config, yaml.safe_load(overlay.read_text()) or {})
    return config


def venue_names() -> list[str]:
    """Venues known to the shipped defaults and the user's file."""
    return sorted(_config()["venues"])


def get_instrument(symbol: str) -> Instrument:
    """The configured instrument for `symbol`; raises KeyError saying how to declare an unknown one."""
    instruments = load_instruments()
    if symbol not in instruments:
        raise KeyError(
            f"unknown symbol {symbol!r}: declare it with its venue under 'symbols:' in {overlay_path()} "
            f"(e.g. `{symbol}: {{venue: NASDAQ}}`; venues: {venue_names()}), or ingest it with an adapter "
            f"that knows its venue; known symbols: {sorted(instruments)}"
        )
    return instruments[symbol]


def declare_symbol(symbol: str, venue: str) -> Instrument:
    """Add `symbol` on `venue` (with the venue's session and thresholds) to the user's instruments file."""
    if venue not in venue_names():
        raise KeyError(f"unknown venue {venue!r}; known: {venue_names()}")

    def add(config: dict) -> None:
        symbols = config.setdefault("symbols", {}) or {}
        symbols[symbol] = {**(symbols.get(symbol) or {}), "venue": venue}
        config["symbols"] = symbols

    _update_overlay(add)
    return get_instrument(symbol)


def _update_overlay(change) -> None:
    """Apply `change(config)` to the user's instruments file and replace it atomically."""
    path = overlay_path()
    config = (yaml.safe_load(path.read_text()) if path.exists() else None) or {}
    change(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(config, sort_keys=True))
    os.replace(tmp, path)


def is_declared(symbol: str) -> bool:
    """Whether `symbol` is configured (shipped defaults or the user's file)."""
    return symbol in load_instruments()


def instrument_for(symbol: str, venue: str | None = None) -> Instrument:
    """`symbol`'s instrument; an unknown symbol of a known `venue` gets the venue's defaults in memory.

    Nothing is written: reading a file never changes the user's instruments file. Ingest declares the
    symbols it stored (`declare_symbol`) once their ticks are in the store.
    """
    try:
        return get_instrument(symbol)
    except KeyError:
        if venue is None:
            raise
        config = _config()
        if venue not in config["venues"]:
            raise KeyError(f"unknown venue {venue!r}; known: {sorted(config['venues'])}") from None
        return _build(symbol, {"venue": venue}, config["venues"])


def load_universes() -> dict[str, Universe]:
    """Universes of the shipped defaults and the user's file, by name; each symbol must be configured."""
    instruments = load_instruments()
    universes = {}
    for name, spec in (_config().get("universes") or {}).items():
        universe = Universe(str(name), tuple(str(s) for s in (spec or {}).get("symbols", [])))
        unknown = [s for s in universe.symbols if s not in instruments]
        if unknown:
            raise KeyError(f"universe {name!r} names unconfigured symbols {unknown}; declare them first")
        universes[universe.name] = universe
    return universes


def get_universe(name: str = DEFAULT_UNIVERSE) -> Universe:
    """The configured universe `name`; KeyError naming the known ones and how to add one."""
    universes = load_universes()
    if name not in universes:
        raise KeyError(
            f"unknown universe {name!r}: add it under 'universes:' in {overlay_path()} "
            f"(e.g. `{name}: {{symbols: [PETR4]}}`), or train with `tickml train --symbols ...`; "
            f"known universes: {sorted(universes)}"
        )
    return universes[name]


def declare_universe(name: str, symbols: list[str]) -> Universe:
    """Add (or replace) universe `name` with `symbols` in the user's instruments file."""
    universe = Universe(name, tuple(symbols))
    for symbol in universe.symbols:
        get_instrument(symbol)  # every symbol must be configured (ingest declares the ones it stores)
    if name == DEFAULT_UNIVERSE and name in load_universes():
        current = load_universes()[name].symbols
        if current != universe.symbols:
            raise ValueError(f"the default universe is {list(current)}; change it in {overlay_path()}")
    _update_overlay(
        lambda config: config.setdefault("universes", {}).update({name: {"symbols": list(symbols)}})
    )
    return get_universe(name)


def universe_of(symbols: list[str]) -> Universe:
    """The configured universe with exactly these symbols, else a new one named after them (not saved)."""
    wanted = tuple(symbols)
    for universe in load_universes().values():
        if sorted(universe.symbols) == sorted(wanted):
            return universe
    return Universe(
        "_".join(wanted) if len(wanted) <= 3 else f"{wanted[0]}_and_{len(wanted) - 1}_more", wanted
    )
