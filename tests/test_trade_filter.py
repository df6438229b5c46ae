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
    return TradeFilter(TradeFilterConfig.for_instrument(NIFTY, **overrides), NIFTY)


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
        ({"take_profit_points": -1.0}, "take_profit_points"),
        ({"max_holding": pd.Timedelta(0)}, "max_holding"),
        ({"flatten_minutes_before_close": -5}, "flatten_minutes_before_close"),
    ],
)
def test_config_rejects_invalid_values_naming_the_field(overrides: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        TradeFilterConfig(**overrides)


def test_config_for_instrument_takes_the_instruments_stop_target_and_horizon() -> None:
    amzn = get_instrument("AMZN")

    config = TradeFilterConfig.for_instrument(amzn)

    assert (config.stop_loss_points, config.take_profit_points, config.max_holding) == (
        amzn.labels.stop_15m,
        amzn.labels.target_15m,
        amzn.labels.horizon_15m,
    )


def test_the_lunch_break_is_nses_only() -> None:
    assert TradeFilterConfig.for_instrument(NIFTY).no_trade_windows == (("12:30", "13:30"),)
    for symbol in ("AMZN", "PETR4", "BTCUSDT"):
        assert TradeFilterConfig.for_instrument(get_instrument(symbol)).no_trade_windows == ()


def test_an_amzn_signal_at_new_york_lunch_time_trades() -> None:
    amzn = get_instrument("AMZN")
    f = TradeFilter(TradeFilterConfig.for_instrument(amzn), amzn)
    noon = pd.Timestamp("2025-01-06 12:45", tz=amzn.timezone).tz_convert("UTC")

    assert f.decide(noon, 220.0, "UP", 0.9, True).action == "BUY"


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

    decision = f.decide(at("10:10"), 24010.0, "UP", 0.9, True)

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


def test_long_exits_at_its_target() -> None:
    f = make_filter()
    long_at(f, "10:00", price=24000.0)

    decision = f.decide(at("10:02"), 24025.0, "UP", 0.9, True)

    assert decision.action == "EXIT"
    assert decision.reason.startswith("target hit: long from 24000")


def test_a_target_of_a_few_ticks_is_hit_despite_float_rounding() -> None:
    petr4 = get_instrument("PETR4")
    f = TradeFilter(TradeFilterConfig.for_instrument(petr4, take_profit_points=0.1), petr4)
    start = pd.Timestamp("2025-03-10 11:00", tz=petr4.timezone).tz_convert("UTC")
    assert f.decide(start, 36.0, "UP", 0.9, True).action == "BUY"

    decision = f.decide(start + pd.Timedelta(seconds=5), 36.1, "UP", 0.9, True)  # 36.1 - 36.0 < 0.1 in floats

    assert decision.reason.startswith("target hit")


def test_short_exits_at_its_target() -> None:
    f = make_filter()
    assert f.decide(at("10:00"), 24000.0, "DOWN", 0.9, True).action == "SELL"

    decision = f.decide(at("10:02"), 23975.0, "DOWN", 0.9, True)

    assert decision.reason.startswith("target hit: short")


def test_position_exits_at_the_horizon_and_not_before() -> None:
    f = make_filter()
    long_at(f, "10:00", price=24000.0)

    before = f.decide(at("10:14:59"), 24005.0, "UP", 0.9, True)
    at_horizon = f.decide(at("10:15"), 24005.0, "UP", 0.9, True)

    assert before.action == "NONE"
    assert (at_horizon.action, at_horizon.reason) == (
        "EXIT",
        "horizon 15m00s reached: long from 24000, now 24005",
    )


def test_no_target_and_no_horizon_keep_the_position_until_the_stop() -> None:
    f = make_filter(take_profit_points=None, max_holding=None)
    long_at(f, "10:00", price=24000.0)

    decision = f.decide(at("11:00"), 24200.0, "FLAT", 0.5, True)

    assert decision.action == "NONE"
    assert f.position is not None


def test_session_end_flattens_and_refuses_entries() -> None:
    f = make_filter(max_holding=None)
    long_at(f, "15:10", price=24000.0)

    flattened = f.decide(at("15:20"), 24001.0, "UP", 0.9, True)
    later = f.decide(at("15:25"), 24001.0, "UP", 0.9, True)

    assert (flattened.action, flattened.reason) == ("EXIT", "session end: long from 24000 flattened at 24001")
    assert (later.action, later.reason) == ("NONE", "session end: no new entries")


def test_a_venue_without_flattening_carries_the_position_to_the_next_day() -> None:
    f = make_filter(max_holding=None, flatten_minutes_before_close=None)
    long_at(f, "15:10", price=24000.0)

    decision = f.decide(at("09:20", day="2025-01-07"), 24001.0, "UP", 0.9, True)

    assert (decision.action, decision.reason) == ("NONE", "already long")


def test_the_instruments_file_sets_a_symbols_thresholds(tmp_path, monkeypatch) -> None:
    overlay = tmp_path / "instruments.yaml"
    overlay.write_text(
        "symbols:\n  NIFTY: {trading: {min_confidence: 0.4, cooldown_minutes: 1, max_trades_per_day: 3}}\n"
    )
    monkeypatch.setenv("TICKML_INSTRUMENTS", str(overlay))

    config = TradeFilterConfig.for_instrument(get_instrument("NIFTY"))

    assert (config.min_confidence, config.cooldown, config.max_trades_per_day) == (
        0.4,
        pd.Timedelta(minutes=1),
        3,
    )
    assert config.no_trade_windows == (("12:30", "13:30"),)  # the venue's lunch break stays


def test_a_misspelt_trading_key_is_an_error_naming_it(tmp_path, monkeypatch) -> None:
    overlay = tmp_path / "instruments.yaml"
    overlay.write_text("symbols:\n  NIFTY: {trading: {min_confidance: 0.4}}\n")
    monkeypatch.setenv("TICKML_INSTRUMENTS", str(overlay))

    with pytest.raises(ValueError, match="NIFTY.*min_confidance"):
        get_instrument("NIFTY")
