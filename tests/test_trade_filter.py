"""The trade filter, one rule per test, on NIFTY (Asia/Kolkata) ticks."""

from __future__ import annotations

import pandas as pd
import pytest

from feature_store.instruments import get_instrument
from pipelines.trade_filter import TradeFilter, TradeFilterConfig

NIFTY = get_instrument("NIFTY")


def at(clock: str, day: str = "2025-01-06") -> pd.Timestamp:
    """A UTC timestamp for an exchange-local (Asia/Kolkata) wall time."""
    return pd.Timestamp(f"{day} {clock}", tz=NIFTY.timezone).tz_convert("UTC")


def make_filter(**overrides: object) -> TradeFilter:
    return TradeFilter(TradeFilterConfig(**overrides), NIFTY)  # type: ignore[arg-type]


def long_at(f: TradeFilter, clock: str, price: float = 24000.0) -> None:
    assert f.decide(at(clock), price, "UP", 0.8, True).action == "BUY"


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"min_confidence": 1.5}, "min_confidence"),
        ({"cooldown": pd.Timedelta(seconds=-1)}, "cooldown"),
        ({"max_trades_per_day": 0}, "max_trades_per_day"),
        ({"stop_loss_points": 0.0}, "stop_loss_points"),
        ({"no_trade_windows": (("13:30", "12:30"),)}, "no_trade_windows"),
        ({"no_trade_windows": (("lunch", "13:30"),)}, "no_trade_windows"),
    ],
)
def test_config_rejects_invalid_values_naming_the_field(overrides: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        TradeFilterConfig(**overrides)


def test_config_for_instrument_takes_the_instruments_stop() -> None:
    config = TradeFilterConfig.for_instrument(get_instrument("AMZN"))

    assert config.stop_loss_points == get_instrument("AMZN").labels.stop_15m


def test_confident_agreeing_up_signal_buys() -> None:
    f = make_filter()

    decision = f.decide(at("10:00"), 24000.0, "UP", 0.72, True)

    assert decision.action == "BUY"
    assert "0.72" in decision.reason


def test_confident_agreeing_down_signal_sells() -> None:
    f = make_filter()

    decision = f.decide(at("10:00"), 24000.0, "DOWN", 0.72, True)

    assert decision.action == "SELL"


def test_low_confidence_is_refused_with_both_numbers() -> None:
    f = make_filter()

    decision = f.decide(at("10:00"), 24000.0, "UP", 0.42, True)

    assert (decision.action, decision.reason) == ("NONE", "confidence 0.420 < 0.600")


def test_disagreeing_horizons_are_refused() -> None:
    f = make_filter()

    decision = f.decide(at("10:00"), 24000.0, "UP", 0.9, False)

    assert (decision.action, decision.reason) == ("NONE", "horizons disagree")


def test_disagreement_is_allowed_when_agreement_is_not_required() -> None:
    f = make_filter(require_agreement=False)

    decision = f.decide(at("10:00"), 24000.0, "UP", 0.9, False)

    assert decision.action == "BUY"


def test_flat_signal_never_trades() -> None:
    f = make_filter()

    decision = f.decide(at("10:00"), 24000.0, "FLAT", 0.9, True)

    assert (decision.action, decision.reason) == ("NONE", "signal FLAT")


def test_cold_features_are_refused_as_warming_up() -> None:
    f = make_filter()

    decision = f.decide(at("10:00"), 24000.0, "UP", 0.9, True, warm=False)

    assert (decision.action, decision.reason) == ("NONE", "warming up")


def test_lunch_window_blocks_entries() -> None:
    f = make_filter()

    decision = f.decide(at("12:45"), 24000.0, "UP", 0.9, True)

    assert (decision.action, decision.reason) == ("NONE", "no-trade window 12:30–13:30")


def test_window_end_is_exclusive() -> None:
    f = make_filter()

    decision = f.decide(at("13:30"), 24000.0, "UP", 0.9, True)

    assert decision.action == "BUY"


def test_cooldown_refuses_a_new_trade_and_says_how_long() -> None:
    f = make_filter()
    long_at(f, "10:00")

    decision = f.decide(at("10:01:48"), 24001.0, "DOWN", 0.9, True)

    assert (decision.action, decision.reason) == ("NONE", "cooldown: 3m12s left")


def test_opposite_signal_after_cooldown_reverses() -> None:
    f = make_filter()
    long_at(f, "10:00")

    decision = f.decide(at("10:05"), 24010.0, "DOWN", 0.9, True)

    assert decision.action == "SELL"
    assert decision.reason.startswith("reverse long")
    assert f.position is not None and f.position.side == -1


def test_same_direction_while_positioned_does_not_pyramid() -> None:
    f = make_filter()
    long_at(f, "10:00")

    decision = f.decide(at("10:30"), 24010.0, "UP", 0.9, True)

    assert (decision.action, decision.reason) == ("NONE", "already long")


def test_daily_cap_refuses_further_entries() -> None:
    f = make_filter(max_trades_per_day=2, cooldown=pd.Timedelta(0))
    long_at(f, "10:00")
    assert f.decide(at("10:01"), 24000.0, "DOWN", 0.9, True).action == "SELL"

    decision = f.decide(at("10:02"), 24000.0, "UP", 0.9, True)

    assert (decision.action, decision.reason) == ("NONE", "daily cap 2 reached")


def test_daily_cap_resets_on_a_new_trading_day() -> None:
    f = make_filter(max_trades_per_day=1)
    long_at(f, "10:00")
    f.decide(at("11:00"), 24000.0, "DOWN", 0.9, True)  # refused by the cap

    decision = f.decide(at("10:00", day="2025-01-07"), 24000.0, "DOWN", 0.9, True)

    assert decision.action == "SELL"


def test_long_exits_when_price_reaches_entry_minus_stop() -> None:
    f = make_filter()
    long_at(f, "10:00", price=24000.0)

    decision = f.decide(at("10:01"), 23975.0, "FLAT", 0.5, True)

    assert decision.action == "EXIT"
    assert decision.reason.startswith("stop loss hit")
    assert f.position is None


def test_long_holds_while_price_stays_above_the_stop() -> None:
    f = make_filter()
    long_at(f, "10:00", price=24000.0)

    decision = f.decide(at("10:01"), 23975.05, "FLAT", 0.5, True)

    assert decision.action == "NONE"
    assert f.position is not None


def test_short_exits_when_price_reaches_entry_plus_stop() -> None:
    f = make_filter()
    assert f.decide(at("10:00"), 24000.0, "DOWN", 0.9, True).action == "SELL"

    decision = f.decide(at("10:01"), 24025.0, "DOWN", 0.9, True)

    assert decision.action == "EXIT"


def test_stop_loss_applies_inside_a_no_trade_window_and_while_warming_up() -> None:
    f = make_filter()
    long_at(f, "12:20", price=24000.0)

    decision = f.decide(at("12:40"), 23900.0, "FLAT", 0.0, False, warm=False)

    assert decision.action == "EXIT"


def test_exit_starts_the_cooldown() -> None:
    f = make_filter()
    long_at(f, "10:00", price=24000.0)
    f.decide(at("10:06"), 23970.0, "FLAT", 0.5, True)  # stop loss

    decision = f.decide(at("10:07"), 23970.0, "DOWN", 0.9, True)

    assert (decision.action, decision.reason) == ("NONE", "cooldown: 4m00s left")


def test_epoch_nanoseconds_and_timestamps_decide_alike() -> None:
    by_timestamp, by_ns = make_filter(), make_filter()

    a = by_timestamp.decide(at("12:45"), 24000.0, "UP", 0.9, True)
    b = by_ns.decide(at("12:45").value, 24000.0, "UP", 0.9, True)

    assert a == b
