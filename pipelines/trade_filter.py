"""The reference design's trade filter: frozen configuration plus per-symbol state, one tick at a time.

Shared by the live service and the backtest, so a decision depends only on the ticks it has seen
(their exchange timestamps, UTC), never on the wall clock: replaying a session gives the same decisions.
An EXIT closes the open position; BUY / SELL open one (or reverse it).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from feature_store.instruments import Instrument

Action = Literal["BUY", "SELL", "EXIT", "NONE"]
_NS_PER_S = 1_000_000_000


def _parse_hhmm(text: str, what: str) -> dt.time:
    try:
        return dt.time.fromisoformat(text)
    except (TypeError, ValueError):
        raise ValueError(f"{what}: expected an exchange-local time 'HH:MM', got {text!r}") from None


@dataclass(frozen=True)
class TradeFilterConfig:
    """When a signal may become a trade and when a position closes. Windows are exchange-local wall times
    ('HH:MM', start < end); points are price points.

    Defaults are the reference design's for the NSE index future: confidence at least 0.6, both horizons
    agreeing, 5 minutes between trades, at most 10 entries a day, a 25-point stop loss; a position closes
    at its stop, its target (`take_profit_points`) or after `max_holding` (the 15-minute horizon),
    whichever comes first. `for_instrument` takes the stop and target from the instrument's 15-minute
    labels, and the no-trade windows, session-end flattening and any threshold set there from its venue's
    (or its own) `trading:` block.
    """

    min_confidence: float = 0.6
    require_agreement: bool = True
    cooldown: pd.Timedelta = pd.Timedelta(minutes=5)
    max_trades_per_day: int = 10
    no_trade_windows: tuple[tuple[str, str], ...] = ()
    stop_loss_points: float = 25.0
    take_profit_points: float | None = 25.0
    max_holding: pd.Timedelta | None = pd.Timedelta(minutes=15)
    flatten_minutes_before_close: float | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be in [0, 1], got {self.min_confidence!r}")
        if not isinstance(self.cooldown, pd.Timedelta) or self.cooldown < pd.Timedelta(0):
            raise ValueError(f"cooldown must be a non-negative pd.Timedelta, got {self.cooldown!r}")
        if (
            isinstance(self.max_trades_per_day, bool)
            or not isinstance(self.max_trades_per_day, int)
            or self.max_trades_per_day < 1
        ):
            raise ValueError(f"max_trades_per_day must be an int >= 1, got {self.max_trades_per_day!r}")
        if not self.stop_loss_points > 0:
            raise ValueError(f"stop_loss_points must be > 0 (price points), got {self.stop_loss_points!r}")
        if self.take_profit_points is not None and not self.take_profit_points > 0:
            raise ValueError(f"take_profit_points must be > 0 or None, got {self.take_profit_points!r}")
        if self.max_holding is not None and (
            not isinstance(self.max_holding, pd.Timedelta) or self.max_holding <= pd.Timedelta(0)
        ):
            raise ValueError(f"max_holding must be a positive pd.Timedelta or None, got {self.max_holding!r}")
        if self.flatten_minutes_before_close is not None and not self.flatten_minutes_before_close >= 0:
            raise ValueError(
                f"flatten_minutes_before_close must be >= 0 or None, got {self.flatten_minutes_before_close!r}"
            )
        for window in self.no_trade_windows:
            if len(window) != 2:
                raise ValueError(f"no_trade_windows: each window is ('HH:MM', 'HH:MM'), got {window!r}")
            start, end = (_parse_hhmm(t, "no_trade_windows") for t in window)
            if not start < end:
                raise ValueError(f"no_trade_windows: start must be before end, got {window!r}")

    @classmethod
    def for_instrument(cls, instrument: Instrument, **overrides: object) -> TradeFilterConfig:
        """Defaults in the instrument's own points (its 15-minute label stop, target and horizon) with its
        `trading:` configuration (windows, flattening, thresholds); `overrides` win."""
        values: dict[str, object] = {
            "stop_loss_points": instrument.labels.stop_15m,
            "take_profit_points": instrument.labels.target_15m,
            "max_holding": instrument.labels.horizon_15m,
            "no_trade_windows": instrument.trading.no_trade_windows,
            "flatten_minutes_before_close": instrument.trading.flatten_minutes_before_close,
        }
        trading = instrument.trading
        for name in ("min_confidence", "require_agreement", "max_trades_per_day"):
            if getattr(trading, name) is not None:
                values[name] = getattr(trading, name)
        if trading.cooldown_minutes is not None:
            values["cooldown"] = pd.Timedelta(minutes=trading.cooldown_minutes)
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Decision:
    """What to do on this tick and why, in a few words a trader can read."""

    action: Action
    reason: str


@dataclass
class Position:
    """The open position the stop loss watches: +1 long or -1 short, entered at `entry_price`."""

    side: int
    entry_price: float
    entry_ts_ns: int


def _duration(ns: int) -> str:
    seconds = -(-ns // _NS_PER_S)  # round up so "0s left" is never shown while still cooling down
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


@dataclass
class TradeFilter:
    """The trade filter of one symbol: decides BUY / SELL / EXIT / NONE tick by tick.

    Rules, first match wins:
    1. an open position whose stop is crossed (long: price <= entry - stop; short: price >= entry + stop)
       → EXIT "stop loss hit"; whose target is reached (long: price >= entry + target) → EXIT "target hit";
       held for `max_holding` → EXIT "horizon … reached"; inside the last `flatten_minutes_before_close`
       of the session → EXIT "session end" (exits apply in every window and while warming up: risk first);
    2. features still warming up → NONE;
    3. inside a no-trade window, or the session-end window → NONE;
    4. `require_agreement` and the horizons disagree → NONE;
    5. signal FLAT → NONE;
    6. confidence below `min_confidence` → NONE;
    7. already positioned in the signal's direction → NONE (no pyramiding);
    8. within `cooldown` of the last BUY / SELL / EXIT → NONE;
    9. `max_trades_per_day` entries already taken this exchange-local trading day → NONE;
    otherwise BUY (UP) or SELL (DOWN). An entry against an open position reverses it and counts as one
    trade. The daily count resets on the first tick of a new trading day; without session-end flattening
    positions are carried.
    """

    config: TradeFilterConfig
    instrument: Instrument
    position: Position | None = None
    trades_today: int = 0
    last_trade_ts_ns: int | None = None
    _day: dt.date | None = field(default=None, init=False, repr=False)
    _flatten_from_ns: int | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self._tz = self.instrument.tz
        self._windows = tuple(
            (_parse_hhmm(a, "no_trade_windows"), _parse_hhmm(b, "no_trade_windows"), f"{a}–{b}")
            for a, b in self.config.no_trade_windows
        )
        self._cooldown_ns = int(self.config.cooldown.value)
        holding = self.config.max_holding
        self._holding_ns = None if holding is None else int(holding.value)
        self._holding_label = None if holding is None else _duration(self._holding_ns)
        self._eps = self.instrument.tick_size * 1e-6  # prices are floats: a stop at exactly 0.10 is hit

    def reset(self) -> None:
        """Forget the position, the daily count and the cooldown (e.g. before a new backtest)."""
        self.position, self.trades_today, self.last_trade_ts_ns, self._day = None, 0, None, None
        self._flatten_from_ns = None

    def _new_day(self, day: dt.date) -> None:
        self._day, self.trades_today = day, 0
        minutes = self.config.flatten_minutes_before_close
        if minutes is None:
            self._flatten_from_ns = None
        else:
            close = self.instrument.session_bounds(day)[1]
            self._flatten_from_ns = int(close.value) - int(minutes * 60 * _NS_PER_S)

    def _exit_reason(self, pos: Position, ts_ns: int, price: float) -> str | None:
        cfg, side = self.config, "long" if pos.side > 0 else "short"
        move = (price - pos.entry_price) * pos.side  # points in the position's favour
        if move <= -cfg.stop_loss_points + self._eps:
            return f"stop loss hit: {side} from {pos.entry_price:g}, now {price:g}"
        if cfg.take_profit_points is not None and move >= cfg.take_profit_points - self._eps:
            return f"target hit: {side} from {pos.entry_price:g}, now {price:g}"
        if self._holding_ns is not None and ts_ns - pos.entry_ts_ns >= self._holding_ns:
            return f"horizon {self._holding_label} reached: {side} from {pos.entry_price:g}, now {price:g}"
        if self._flatten_from_ns is not None and ts_ns >= self._flatten_from_ns:
            return f"session end: {side} from {pos.entry_price:g} flattened at {price:g}"
        return None

    def decide(
        self,
        ts: pd.Timestamp | int,
        price: float,
        signal: str,
        confidence: float,
        agree: bool,
        warm: bool = True,
    ) -> Decision:
        """Decide on one tick at `ts` (UTC timestamp or epoch ns) with last price `price`, and update state.

        `signal` is UP / DOWN / FLAT from `pipelines.signals.combine`, `confidence` its mass in [0, 1],
        `agree` whether both horizons lean the same way, `warm` whether the features are initialised.
        Ticks must come in time order.
        """
        ts_ns = int(ts) if isinstance(ts, (int, np.integer)) else int(pd.Timestamp(ts).value)
        # Whole seconds suffice for the trading day and the windows, and floor keeps boundaries exact.
        local = dt.datetime.fromtimestamp(ts_ns // _NS_PER_S, self._tz)
        if local.date() != self._day:
            self._new_day(local.date())

        cfg, pos = self.config, self.position
        if pos is not None:
            reason = self._exit_reason(pos, ts_ns, price)
            if reason is not None:
                self.position, self.last_trade_ts_ns = None, ts_ns
                return Decision("EXIT", reason)
        if not warm:
            return Decision("NONE", "warming up")
        clock = local.time()
        for start, end, label in self._windows:
            if start <= clock < end:
                return Decision("NONE", f"no-trade window {label}")
        if self._flatten_from_ns is not None and ts_ns >= self._flatten_from_ns:
            return Decision("NONE", "session end: no new entries")
        if cfg.require_agreement and not agree:
            return Decision("NONE", "horizons disagree")
        if signal not in ("UP", "DOWN"):
            return Decision("NONE", f"signal {signal}")
        if confidence < cfg.min_confidence:
            return Decision("NONE", f"confidence {confidence:.3f} < {cfg.min_confidence:.3f}")
        side = 1 if signal == "UP" else -1
        if pos is not None and pos.side == side:
            return Decision("NONE", f"already {'long' if side > 0 else 'short'}")
        if self.last_trade_ts_ns is not None and ts_ns - self.last_trade_ts_ns < self._cooldown_ns:
            left = self._cooldown_ns - (ts_ns - self.last_trade_ts_ns)
            return Decision("NONE", f"cooldown: {_duration(left)} left")
        if self.trades_today >= cfg.max_trades_per_day:
            return Decision("NONE", f"daily cap {cfg.max_trades_per_day} reached")

        self.position = Position(side, float(price), ts_ns)
        self.trades_today += 1
        self.last_trade_ts_ns = ts_ns
        what = f"reverse {'short' if side > 0 else 'long'}: {signal}" if pos is not None else signal
        return Decision("BUY" if side > 0 else "SELL", f"{what} {confidence:.2f} >= {cfg.min_confidence:.2f}")
