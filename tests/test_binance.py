"""Binance WebSocket captures: the spot BTCUSDT sample and coin-margined futures messages become ticks on the
24-hour CRYPTO venue, by the recorder's clock, with every tick-bearing line stored or quarantined."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from feature_store.features import parity_report
from feature_store.instruments import declare_symbol, instrument_for
from feature_store.store import ParquetTickStore
from pipelines.ingest import ingest_files
from pipelines.sources import open_source, read_source
from pipelines.sources.binance import AGG_TRADE, QUOTE, SEQ_KINDS, TRADE
from tests.data import DATA

SAMPLE = DATA / "binance" / "btcusdt_20240808.gz"
# Lines per message kind, counted off the file (PROVENANCE.md): 41,249 in all.
BOOK_TICKERS, TRADES, DEPTH_UPDATES, REST_SNAPSHOTS = 28_040, 9_757, 3_451, 1
TICK_LINES = BOOK_TICKERS + TRADES
RECEIVED = 1_723_161_254_087_891_268  # a receive time of the sample (ns, UTC), for the small files


@pytest.fixture(autouse=True)
def user_instruments(tmp_path, monkeypatch) -> Path:
    """The user's instruments overlay lives in the test's directory: declaring a symbol touches nothing else."""
    path = tmp_path / "instruments.yaml"
    monkeypatch.setenv("TICKML_INSTRUMENTS", str(path))
    return path


@pytest.fixture(scope="module")
def sample_messages() -> list[tuple[int, dict]]:
    """(receive ns, message) of every line of the sample, read with the plain json module."""
    with gzip.open(SAMPLE, "rt") as handle:
        return [(int(head), json.loads(body)) for head, body in (line.split(" ", 1) for line in handle)]


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    """The sample ingested twice into one Parquet store: (store, first report, second report)."""
    home = tmp_path_factory.mktemp("binance")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TICKML_INSTRUMENTS", str(home / "instruments.yaml"))
        store = ParquetTickStore(home / "store")
        first = ingest_files([SAMPLE], "binance", store)
        second = ingest_files([SAMPLE], "binance", store)
        yield store, first, second


@pytest.fixture(scope="module")
def stored(ingested) -> pd.DataFrame:
    return ingested[0].read_ticks("BTCUSDT")


def write_capture(path: Path, lines: list[str], *, gz: bool = True, final_newline: bool = True) -> Path:
    text = "\n".join(lines) + ("\n" if final_newline else "")
    if gz:
        with gzip.open(path, "wt") as handle:
            handle.write(text)
    else:
        path.write_text(text)
    return path


def line(ns: int, message: dict | str) -> str:
    return f"{ns} {message if isinstance(message, str) else json.dumps(message, separators=(',', ':'))}"


def spot_quote(u: int, bid: str = "61837.63", ask: str = "61837.64") -> dict:
    data = {"u": u, "s": "BTCUSDT", "b": bid, "B": "3.78826", "a": ask, "A": "1.54698"}
    return {"stream": "btcusdt@bookTicker", "data": data}


def spot_trade(t: int, price: str = "61837.63", maker: bool = True) -> dict:
    data = {"e": "trade", "E": 1723161255343, "s": "BTCUSDT", "t": t, "p": price, "q": "0.02"}
    return {"stream": "btcusdt@trade", "data": {**data, "T": 1723161255342, "m": maker, "M": True}}


# the sample ------------------------------------------------------------------------------------------


def test_sample_lines_are_counted_by_message_kind():
    source = open_source(SAMPLE, "binance")

    kinds = np.concatenate([chunk.seq % SEQ_KINDS for chunk in source.chunks])

    assert (int((kinds == QUOTE).sum()), int((kinds == TRADE).sum())) == (BOOK_TICKERS, TRADES)
    assert dict(source.not_ticks) == {"depth update": DEPTH_UPDATES, "REST snapshot": REST_SNAPSHOTS}
    assert len(kinds) + sum(source.not_ticks.values()) == 41_249


def test_every_tick_line_of_the_sample_is_stored_or_quarantined(ingested):
    store, first, _ = ingested

    assert first.accounted
    assert first.files[0].rows_read == TICK_LINES
    assert first.files[0].ticks_new + first.files[0].quarantined_total == TICK_LINES
    assert len(store.read_ticks("BTCUSDT")) + len(store.read_quarantine()) == TICK_LINES


def test_reingesting_the_sample_stores_nothing_new(ingested):
    _, first, second = ingested

    again = second.files[0]

    assert (again.ticks_new, again.quarantine_new) == (0, 0)
    assert again.ticks_already == first.files[0].ticks_new


def test_trade_sides_follow_the_buyer_maker_flag(sample_messages, stored):
    maker = {m["data"]["t"]: m["data"]["m"] for _, m in sample_messages if m.get("stream") == "btcusdt@trade"}
    trades = stored[stored["seq"] % SEQ_KINDS == TRADE]

    expected = [-1 if maker[t] else 1 for t in trades["seq"] // SEQ_KINDS]

    assert trades["side"].tolist() == expected
    assert len(trades) == TRADES


def test_a_trade_carries_the_last_book_ticker_and_a_quote_the_last_trade_price(sample_messages, stored):
    book, last_price, expected = (np.nan,) * 4, np.nan, []
    for _, message in sample_messages:
        data = message.get("data", {})
        if message.get("stream") == "btcusdt@bookTicker":
            book = tuple(float(data[k]) for k in ("b", "a", "B", "A"))
            mid = (book[0] + book[1]) / 2
            expected.append((mid if np.isnan(last_price) else last_price, *book))
        elif message.get("stream") == "btcusdt@trade":
            last_price = float(data["p"])
            expected.append((last_price, *book))

    actual = stored[["price", "bid", "ask", "bid_size", "ask_size"]].to_numpy()

    np.testing.assert_array_equal(actual, np.array(expected))


def test_ticks_are_on_the_utc_day_of_the_receive_clock(ingested, stored, sample_messages):
    store = ingested[0]
    received = [
        ns for ns, message in sample_messages if "stream" in message and "depth" not in message["stream"]
    ]

    assert store.days("BTCUSDT") == [dt.date(2024, 8, 8)]
    assert stored["ts"].array.asi8.tolist() == received
    assert instrument_for("BTCUSDT").venue == "CRYPTO"


def test_seq_is_the_exchange_id_with_the_message_kind_in_the_low_bits(sample_messages, stored):
    ids = [
        m["data"]["u"] * SEQ_KINDS + QUOTE
        if m["stream"].endswith("bookTicker")
        else m["data"]["t"] * SEQ_KINDS
        for _, m in sample_messages
        if "stream" in m and "depth" not in m["stream"]
    ]

    assert stored["seq"].tolist() == ids


def test_batch_and_online_features_agree_on_the_sample(stored):
    report = parity_report(stored, instrument_for("BTCUSDT"))

    assert report.ok, report.render()


# quirks ----------------------------------------------------------------------------------------------

BAD_LINES = [
    pytest.param(
        line(RECEIVED, '{"stream":"btcusdt@trade","data":{"e":"trade"'), "not JSON", id="broken-json"
    ),
    pytest.param(
        line(RECEIVED, spot_trade(3, price="61x37.63")), "trade p='61x37.63' is not a number", id="price"
    ),
    pytest.param(
        json.dumps(spot_trade(3)), "does not start with the recorder's receive time", id="no-prefix"
    ),
    pytest.param(
        line(RECEIVED, {"stream": "btcusdt@trade", "data": {"s": "BTCUSDT"}}), "lacks field", id="field"
    ),
    pytest.param(line(RECEIVED, "[1, 2]"), "a JSON list, not a stream message", id="not-an-object"),
]


@pytest.mark.parametrize(("bad", "detail"), BAD_LINES)
def test_a_bad_line_is_quarantined_unparseable_with_its_raw_text(tmp_path, bad, detail):
    lines = [
        line(RECEIVED - 2, spot_quote(10)),
        line(RECEIVED - 1, spot_trade(1)),
        bad,
        line(RECEIVED, spot_quote(11)),
    ]
    path = write_capture(tmp_path / "capture.gz", lines)

    result = read_source(path, "binance")

    row = result.quarantine.iloc[0]
    assert (len(result.quarantine), row["reason"], row["row"], row["raw"]) == (1, "unparseable", 2, bad)
    assert detail in row["detail"]
    assert (result.rows_read, len(result.ticks)) == (4, 3)


def test_quarantine_rows_are_line_numbers_whatever_the_chunk_size(tmp_path):
    depth = {"stream": "btcusdt@depth@100ms", "data": {"e": "depthUpdate", "U": 1, "u": 2, "b": [], "a": []}}
    lines = [line(RECEIVED + k, depth) for k in range(5)] + ["garbage", line(RECEIVED + 9, spot_quote(12))]
    path = write_capture(tmp_path / "capture.gz", lines)

    rows = [read_source(path, "binance", chunk_rows=n).quarantine["row"].tolist() for n in (2, 3, 100)]

    assert rows == [[5], [5], [5]]


def test_rest_snapshots_and_depth_updates_are_counted_as_not_ticks(tmp_path):
    snapshot = {"lastUpdateId": 50093239218, "bids": [["61837.63", "3.7"]], "asks": [["61837.64", "1.5"]]}
    depth = {"stream": "btcusdt@depth@100ms", "data": {"e": "depthUpdate", "U": 1, "u": 2, "b": [], "a": []}}
    lines = [line(RECEIVED, depth), line(RECEIVED + 1, snapshot), line(RECEIVED + 2, spot_quote(10))]
    source = open_source(write_capture(tmp_path / "capture.gz", lines), "binance")

    rows = sum(len(chunk) for chunk in source.chunks)

    assert (rows, dict(source.not_ticks)) == (1, {"depth update": 1, "REST snapshot": 1})


def test_a_last_line_the_file_cuts_short_is_truncated(tmp_path):
    lines = [line(RECEIVED, spot_quote(10)), line(RECEIVED + 1, spot_trade(1))[:-20]]
    path = write_capture(tmp_path / "capture.txt", lines, gz=False, final_newline=False)

    result = read_source(path, "binance")

    assert result.quarantine[["row", "reason"]].values.tolist() == [[1, "truncated"]]


def test_a_trade_and_a_quote_with_the_same_id_and_receive_time_are_both_kept(tmp_path):
    lines = [line(RECEIVED, spot_quote(7)), line(RECEIVED, spot_trade(7))]

    result = read_source(write_capture(tmp_path / "capture.gz", lines), "binance")

    assert result.ticks["seq"].tolist() == [7 * SEQ_KINDS + QUOTE, 7 * SEQ_KINDS + TRADE]


# coin-margined futures -------------------------------------------------------------------------------
# Message shapes of Binance's COIN-M futures WebSocket streams (developers.binance.com, "Individual Symbol
# Book Ticker Streams", "Aggregate Trade Streams", "Trade Streams"); sizes are contracts (100 USD for BTC).


def futures_quote(u: int, bid: str, ask: str, ms: int) -> dict:
    data = {"e": "bookTicker", "u": u, "s": "BTCUSD_PERP", "ps": "BTCUSD", "b": bid, "B": "52", "a": ask}
    return {"stream": "btcusd_perp@bookTicker", "data": {**data, "A": "11", "T": ms, "E": ms + 11}}


def futures_trade(kind: str, n: int, price: str, contracts: str, maker: bool, ms: int) -> dict:
    data = {"e": kind, "E": ms + 3, "s": "BTCUSD_PERP", "p": price, "q": contracts, "T": ms, "m": maker}
    ids = {"a": n, "f": 10 * n, "l": 10 * n + 2} if kind == "aggTrade" else {"t": n, "X": "MARKET"}
    return {"stream": f"btcusd_perp@{kind}", "data": {**data, **ids}}


def futures_capture(path: Path, kind: str) -> Path:
    ms = 1_723_161_000_000
    return write_capture(
        path,
        [
            line(RECEIVED, futures_quote(400900217, "61840.1", "61840.2", ms)),
            line(RECEIVED + 1_000, futures_trade(kind, 5933014, "61840.2", "12", False, ms + 1)),
            line(RECEIVED + 2_000, futures_quote(400900219, "61840.0", "61840.3", ms + 2)),
            line(RECEIVED + 3_000, futures_trade(kind, 5933015, "61840.0", "3", True, ms + 3)),
        ],
    )


@pytest.mark.parametrize("kind", ["aggTrade", "trade"])
def test_a_coin_margined_futures_capture_ingests(tmp_path, kind):
    declare_symbol("BTCUSD_PERP", "CRYPTO")  # the user's instruments file names the contract's venue
    store = ParquetTickStore(tmp_path / "store")

    report = ingest_files([futures_capture(tmp_path / "futures.gz", kind)], "binance", store)

    ticks = store.read_ticks("BTCUSD_PERP")
    code = AGG_TRADE if kind == "aggTrade" else TRADE
    assert report.accounted and report.files[0].ticks_new == 4
    assert ticks[["price", "size", "volume", "side", "bid", "ask"]].values.tolist() == [
        [(61840.1 + 61840.2) / 2, 0.0, 0.0, 0, 61840.1, 61840.2],  # before a trade: the mid
        [61840.2, 12.0, 12.0, 1, 61840.1, 61840.2],
        [61840.2, 0.0, 12.0, 0, 61840.0, 61840.3],
        [61840.0, 3.0, 15.0, -1, 61840.0, 61840.3],
    ]
    assert ticks["seq"].tolist() == [
        400900217 * SEQ_KINDS + QUOTE,
        5933014 * SEQ_KINDS + code,
        400900219 * SEQ_KINDS + QUOTE,
        5933015 * SEQ_KINDS + code,
    ]


def test_a_second_trade_stream_of_a_symbol_is_quarantined_as_duplicate(tmp_path):
    ms = 1_723_161_000_000
    lines = [
        line(RECEIVED, futures_trade("trade", 100, "61840.2", "12", False, ms)),
        line(RECEIVED + 1, futures_trade("aggTrade", 7, "61840.2", "12", False, ms)),
    ]

    result = read_source(write_capture(tmp_path / "both.gz", lines), "binance")

    assert result.quarantine[["row", "reason"]].values.tolist() == [[1, "duplicate"]]
    assert "repeats the trades of its trade stream" in result.quarantine["detail"].iloc[0]


def test_raw_single_stream_messages_read_like_combined_ones(tmp_path):
    lines = [line(RECEIVED, spot_quote(10)["data"]), line(RECEIVED + 1, spot_trade(1)["data"])]

    result = read_source(write_capture(tmp_path / "raw.gz", lines), "binance")

    assert result.ticks[["seq", "size", "side", "bid"]].values.tolist() == [
        [10 * SEQ_KINDS + QUOTE, 0.0, 0, 61837.63],
        [1 * SEQ_KINDS + TRADE, 0.02, -1, 61837.63],
    ]
