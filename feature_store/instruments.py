"""Instruments as configuration: exchange time zone, session hours, tick size and label thresholds."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import yaml

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
        return day.weekday() in self.weekdays

    def session_bounds(self, day: dt.date) -> tuple[pd.Timestamp, pd.Timestamp]:
        """Session open and close of `day` (exchange-local date) as UTC timestamps."""
        start = pd.Timestamp(dt.datetime.combine(day, self.open), tz=self.tz)
        if self.close == dt.time.max:
            end = pd.Timestamp(dt.datetime.combine(day + dt.timedelta(days=1), dt.time()), tz=self.tz)
        else:
            end = pd.Timestamp(dt.datetime.combine(day, self.close), tz=self.tz)
        return start.tz_convert("UTC"), end.tz_convert("UTC")

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


def _parse_time(text: str) -> dt.time:
    return dt.time.max if text == "24:00" else dt.time.fromisoformat(text)


def _build(symbol: str, spec: dict, venues: dict) -> Instrument:
    venue_name = spec.get("venue")
    if venue_name not in venues:
        raise KeyError(f"instrument {symbol!r} names unknown venue {venue_name!r}")
    merged = {**venues[venue_name], **{k: v for k, v in spec.items() if k != "venue"}}
    labels = {**venues[venue_name].get("labels", {}), **spec.get("labels", {})}
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
    )


def overlay_path() -> Path:
    """The user's instruments file: $TICKML_INSTRUMENTS, else $TICKML_HOME/instruments.yaml (may not exist)."""
    explicit = os.environ.get("TICKML_INSTRUMENTS")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("TICKML_HOME") or ".tickml") / "instruments.yaml"


def _merge(base: dict, overlay: dict) -> dict:
    """Venues and symbols of `overlay` override those of `base`, key by key within each entry."""
    merged = {}
    for section in ("venues", "symbols"):
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
    path = overlay_path()
    config = yaml.safe_load(path.read_text()) if path.exists() else None
    config = config or {}
    config.setdefault("symbols", {})[symbol] = {
        **(config.get("symbols") or {}).get(symbol, {}),
        "venue": venue,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(config, sort_keys=True))
    os.replace(tmp, path)
    return get_instrument(symbol)


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
