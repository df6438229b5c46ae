"""Instruments as configuration: shipped venue defaults, the user's overlay file, and declaring symbols."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
import yaml

from feature_store.instruments import declare_symbol, get_instrument, instrument_for, load_instruments


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.delenv("TICKML_INSTRUMENTS", raising=False)
    monkeypatch.setenv("TICKML_HOME", str(tmp_path))
    return tmp_path


@pytest.mark.parametrize(
    ("symbol", "venue", "open_utc", "close_utc"),
    [
        ("NIFTY", "NSE", "2026-11-20 03:45", "2026-11-20 10:00"),
        ("AMZN", "NASDAQ", "2026-11-20 14:30", "2026-11-20 21:00"),
        ("PETR4", "B3", "2026-11-20 13:00", "2026-11-20 21:00"),
        ("BTCUSDT", "CRYPTO", "2026-11-20 00:00", "2026-11-21 00:00"),
    ],
)
def test_shipped_defaults_give_each_venue_its_session_in_utc(symbol, venue, open_utc, close_utc):
    instrument = get_instrument(symbol)

    assert instrument.venue == venue
    assert instrument.session_bounds(dt.date(2026, 11, 20)) == (
        pd.Timestamp(open_utc, tz="UTC"),
        pd.Timestamp(close_utc, tz="UTC"),
    )


def test_unknown_symbol_error_says_how_to_declare_it(home):
    with pytest.raises(KeyError, match=r"declare it with its venue under 'symbols:'.*instruments.yaml"):
        get_instrument("AAPL")


def test_a_venue_known_to_the_caller_gives_its_defaults_without_writing_the_users_file(home):
    instrument = instrument_for("AAPL", "NASDAQ")

    assert instrument.venue == "NASDAQ" and instrument.timezone == "America/New_York"
    assert not (home / "instruments.yaml").exists()
    with pytest.raises(KeyError):
        get_instrument("AAPL")


def test_declaring_a_symbol_writes_it_into_the_users_file(home):
    instrument = declare_symbol("AAPL", "NASDAQ")

    assert yaml.safe_load((home / "instruments.yaml").read_text())["symbols"]["AAPL"] == {"venue": "NASDAQ"}
    assert get_instrument("AAPL") == instrument == instrument_for("AAPL", "NASDAQ")


def test_users_file_overrides_a_symbols_thresholds_and_keeps_the_venue_session(home):
    (home / "instruments.yaml").write_text(
        yaml.safe_dump({"symbols": {"NIFTY": {"labels": {"target_15m": 40}}}})
    )

    nifty = get_instrument("NIFTY")

    assert nifty.labels.target_15m == 40.0 and nifty.labels.target_30m == 50.0
    assert nifty.timezone == "Asia/Kolkata"


def test_users_file_overrides_a_venue_for_all_its_symbols(home):
    (home / "instruments.yaml").write_text(
        yaml.safe_dump({"venues": {"B3": {"session": {"open": "10:15", "close": "17:55"}}}})
    )

    assert get_instrument("PETR4").open == dt.time(10, 15)


def test_declaring_on_an_unknown_venue_is_refused(home):
    with pytest.raises(KeyError, match="unknown venue 'LSE'"):
        declare_symbol("VOD", "LSE")


def test_changes_to_the_users_file_are_picked_up_without_restart(home):
    before = set(load_instruments())
    declare_symbol("MSFT", "NASDAQ")

    assert set(load_instruments()) == before | {"MSFT"}
