"""Every quarantine reason, each triggered by a small hand-made file; cut-off files keep what is whole."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from feature_store.schema import QUARANTINE_TEXT_BYTES
from pipelines.ingest import ingest_files
from pipelines.sources import Mapping, read_kite, read_lobster, read_source
from tests.data import DATA

LOBSTER = DATA / "lobster" / "AMZN_2012-06-21_34200000_57600000_message_1.csv"
LOBSTER_BOOK = LOBSTER.with_name(LOBSTER.name.replace("_message_", "_orderbook_"))
KITE = DATA / "nse" / "kiteconnect_nifty_futures_ticks.csv"

COLUMNS = {"ts": "time", "symbol": "sym", "price": "price", "size": "qty", "bid": "bid", "ask": "ask"}
NSE = {"venue": "NSE", "timezone": "Asia/Kolkata"}
HEADER = "time,sym,price,qty,bid,ask"
GOOD = "2025-12-29 10:00:00,NIFTY,26000,75,25999.95,26000.05"  # a Monday, inside 09:15-15:30 IST


@pytest.fixture(autouse=True)
def user_instruments(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "instruments.yaml"
    monkeypatch.setenv("TICKML_INSTRUMENTS", str(path))
    return path


def _read(
    tmp_path: Path, rows: list[str], mapping: dict | None = None, header: str = HEADER, end: str = "\n"
):
    path = tmp_path / "ticks.csv"
    path.write_text("\n".join([header, *rows]) + end)
    return read_source(path, "mapped", mapping=Mapping.from_dict(mapping or {**NSE, "columns": COLUMNS}))


# (rows, mapping, reason of the last row, a fragment of its detail)
CASES = [
    pytest.param(
        [GOOD, "2025-12-29 10:00:01,NIFTY,26x00,75,25999.95,26000.05"],
        None,
        "unparseable",
        "price='26x00' is not a number",
        id="unparseable-number",
    ),
    pytest.param(
        [GOOD, "29.12.2025 10:00:01,NIFTY,26000,75,25999.95,26000.05"],
        None,
        "unparseable",
        "time='29.12.2025 10:00:01' does not parse as ISO8601",
        id="unparseable-timestamp",
    ),
    pytest.param(
        [GOOD, "2025-12-29 10:00:01,NIFTY,26000,75"], None, "unparseable", "4 fields, expected 6", id="fields"
    ),
    pytest.param(
        [GOOD, "2025-12-29 10:00:01,ZZZ,26000,75,25999.95,26000.05"],
        {"columns": COLUMNS, "timezone": "Asia/Kolkata"},  # no venue: ZZZ cannot be declared
        "unknown_symbol",
        "unknown symbol 'ZZZ': declare it with its venue",
        id="unknown_symbol",
    ),
    pytest.param([GOOD.replace(",26000,", ",0,")], None, "bad_price", "price=0.0", id="bad_price-zero"),
    pytest.param([GOOD.replace(",26000,", ",-1,")], None, "bad_price", "price=-1.0", id="bad_price-negative"),
    pytest.param([GOOD.replace(",26000,", ",inf,")], None, "bad_price", "price=inf", id="bad_price-infinite"),
    pytest.param(
        [GOOD.replace(",26000,", ",1e400,")], None, "bad_price", "price=inf", id="bad_price-overflow"
    ),
    pytest.param([GOOD.replace(",75,", ",1e400,")], None, "negative_size", "size=inf", id="size-overflow"),
    pytest.param([GOOD.replace(",26000.05", ",inf")], None, "bad_price", "ask=inf", id="ask-infinite"),
    pytest.param(
        [GOOD.replace(",26000,", ",,")],
        None,
        "bad_price",
        "trade of size 75.0 without a price",
        id="bad_price-missing",
    ),
    pytest.param(
        ["2025-12-29 10:00:00,NIFTY,,0,25999.95,"],
        None,
        "bad_price",
        "quote before the day's first trade without a two-sided book",
        id="bad_price-nothing-to-carry",
    ),
    pytest.param([GOOD.replace(",75,", ",-75,")], None, "negative_size", "size=-75.0", id="negative_size"),
    pytest.param(
        ["2025-12-29 10:00:00,NIFTY,26000,3000", "2025-12-29 10:00:01,NIFTY,26000,2925"],
        {**NSE, "columns": {"ts": "time", "symbol": "sym", "price": "price", "volume": "cum"}},
        "negative_size",
        "cumulative volume 2925.0 is below the previous tick's 3000.0",
        id="negative_size-volume-went-back",
    ),
    pytest.param(
        [GOOD.replace("25999.95", "26000.10")],
        None,
        "crossed_book",
        "bid=26000.1 > ask=26000.05",
        id="crossed_book",
    ),
    pytest.param(
        [GOOD, "2025-12-29 10:00:01,NIFTY,26000,75,26000.10,"],  # the ask is carried from the row before
        None,
        "crossed_book",
        "bid=26000.1 > ask=26000.05 with a side carried",
        id="crossed_book-carried-side",
    ),
    pytest.param(
        [GOOD.replace("10:00:00", "09:14:59")],
        None,
        "outside_session",
        "2025-12-29T09:14:59 Asia/Kolkata is outside the NSE session 09:15-15:30",
        id="outside_session-before-open",
    ),
    pytest.param(
        [GOOD.replace("2025-12-29", "2025-12-27")],
        None,
        "outside_session",
        "is a Saturday: no NSE session",
        id="outside_session-saturday",
    ),
    pytest.param(
        [GOOD.replace("10:00:00", "10:00:01"), GOOD],
        None,
        "out_of_order",
        "ts 2025-12-29T04:30:00+00:00 is before 2025-12-29T04:30:01+00:00, the last kept tick of NIFTY",
        id="out_of_order",
    ),
    pytest.param(
        [GOOD, GOOD], None, "duplicate", "repeats row 0 field for field", id="duplicate-repeated-row"
    ),
    pytest.param(
        [f"{GOOD},5", f"{GOOD.replace(',75,', ',25,')},5"],
        {**NSE, "columns": {**COLUMNS, "seq": "n"}},
        "duplicate",
        "(symbol, day, seq) = (NIFTY, 2025-12-29, 5) was kept already",
        id="duplicate-same-event",
    ),
]


@pytest.mark.parametrize(("rows", "mapping", "reason", "detail"), CASES)
def test_each_reason_quarantines_the_row(tmp_path, rows, mapping, reason, detail):
    header = HEADER.replace("qty,bid,ask", "cum") if "volume" in str(mapping) else HEADER
    header += ",n" if "seq" in str(mapping) else ""

    result = _read(tmp_path, rows, mapping, header=header)

    last = result.quarantine.iloc[-1]
    assert (last["row"], last["reason"]) == (len(rows) - 1, reason)
    assert detail in last["detail"]
    assert len(result.ticks) + len(result.quarantine) == result.rows_read == len(rows)


def test_a_row_cut_off_by_the_end_of_the_file_is_truncated(tmp_path):
    result = _read(tmp_path, [GOOD, "2025-12-29 10:00:01,NIFTY,260"], end="")

    last = result.quarantine.iloc[-1]

    assert (len(result.ticks), last["row"], last["reason"]) == (1, 1, "truncated")
    assert last["detail"] == "file ends inside this row (3 fields, expected 6)"


def test_a_whole_last_row_without_a_final_newline_is_kept(tmp_path):
    result = _read(tmp_path, [GOOD, GOOD.replace("10:00:00", "10:00:01")], end="")

    assert (len(result.ticks), len(result.quarantine)) == (2, 0)


def test_an_empty_line_is_unparseable(tmp_path):
    result = _read(tmp_path, [GOOD, "", GOOD.replace("10:00:00", "10:00:01")])

    row = result.quarantine.iloc[0]

    assert (len(result.ticks), row["row"], row["reason"], row["detail"]) == (
        2,
        1,
        "unparseable",
        "empty line",
    )


def test_a_quarantine_row_says_where_it_came_from(tmp_path):
    result = _read(tmp_path, [GOOD, GOOD.replace("25999.95", "26000.10")])

    row = result.quarantine.iloc[0]

    assert row[["source", "row", "symbol", "day", "ts", "raw"]].tolist() == [
        str((tmp_path / "ticks.csv").resolve()),
        1,
        "NIFTY",
        "2025-12-29",
        pd.Timestamp("2025-12-29 04:30:00", tz="UTC"),
        "2025-12-29 10:00:00,NIFTY,26000,75,26000.10,26000.05",
    ]


def test_a_quoted_field_holding_the_delimiter_is_one_field(tmp_path):
    mapping = {**NSE, "columns": {**COLUMNS, "symbol": "sym"}}

    result = _read(tmp_path, ['2025-12-29 10:00:00,"NIFTY",26000,75,"25999.95","26000.05"'], mapping)

    assert (len(result.ticks), result.ticks["bid"].iloc[0]) == (1, 25999.95)


def test_kite_cut_mid_row_ingests_what_is_whole_and_quarantines_the_rest(tmp_path):
    lines = KITE.read_bytes().split(b"\n")
    cut = tmp_path / "kite_cut.csv"
    cut.write_bytes(
        b"\n".join(lines[:101]) + b"\n" + lines[101][:40]
    )  # header, 100 rows, 40 bytes of row 100

    result = read_source(cut, "kite")

    assert (result.rows_read, len(result.ticks), result.quarantine["reason"].tolist()) == (
        101,
        100,
        ["truncated"],
    )
    assert result.quarantine["raw"].iloc[0] == lines[101][:40].decode()
    pd.testing.assert_frame_equal(result.ticks, read_kite(KITE).iloc[:100])


def test_lobster_message_file_cut_mid_row_ingests_the_whole_events(tmp_path):
    messages = LOBSTER.read_bytes().split(b"\n")
    books = LOBSTER_BOOK.read_bytes().split(b"\n")
    cut = tmp_path / LOBSTER.name
    cut.write_bytes(b"\n".join(messages[:1000]) + b"\n" + messages[1000][:12])
    (tmp_path / LOBSTER_BOOK.name).write_bytes(b"\n".join(books[:1001]) + b"\n")

    result = read_source(cut, "lobster")

    assert (result.rows_read, len(result.ticks), result.quarantine["reason"].tolist()) == (
        1001,
        1000,
        ["truncated"],
    )
    pd.testing.assert_frame_equal(result.ticks, read_lobster(LOBSTER).iloc[:1000])


def test_lobster_events_missing_from_a_short_orderbook_are_truncated(tmp_path):
    messages = LOBSTER.read_bytes().split(b"\n")
    books = LOBSTER_BOOK.read_bytes().split(b"\n")
    message = tmp_path / LOBSTER.name
    message.write_bytes(b"\n".join(messages[:10]) + b"\n")
    (tmp_path / LOBSTER_BOOK.name).write_bytes(b"\n".join(books[:8]) + b"\n")

    result = read_source(message, "lobster")

    assert (len(result.ticks), result.quarantine["row"].tolist()) == (8, [8, 9])
    assert set(result.quarantine["detail"]) == {"the orderbook file ends before this event"}


def test_lobster_trading_halt_rows_are_outside_the_session(tmp_path):
    message = tmp_path / LOBSTER.name
    message.write_text("34200.1,1,11,100,2238100,1\n34200.2,7,0,0,-1,-1\n34200.3,4,11,50,2238100,1\n")
    (tmp_path / LOBSTER_BOOK.name).write_text("2239500,100,2238100,100\n" * 2 + "2239500,100,2238100,50\n")

    result = read_source(message, "lobster")

    assert result.ticks["seq"].tolist() == [0, 2]
    assert result.quarantine[["row", "reason", "detail"]].values.tolist() == [
        [1, "outside_session", "trading halt message: trading halted"]
    ]


def test_b3_unknown_event_type_is_unparseable(tmp_path):
    header, first, *_ = (DATA / "b3" / "PETR4_07032025.csv").read_text().splitlines()
    path = tmp_path / "PETR4_07032025.csv"
    path.write_text("\n".join([header, first.replace(",book,", ",auction,")]) + "\n")

    result = read_source(path, "b3")

    assert result.quarantine[["reason", "detail"]].values.tolist() == [
        ["unparseable", "event_type='auction' is neither book nor trade"]
    ]


def test_dhan_unknown_packet_type_is_unparseable(tmp_path):
    header, first, *_ = (DATA / "nse" / "dhan_nifty_futures_ticks.csv").read_text().splitlines()
    path = tmp_path / "dhan.csv"
    path.write_text("\n".join([header, first.replace(",full,", ",ticker,")]) + "\n")

    result = read_source(path, "dhan")

    assert result.quarantine["detail"].tolist() == [
        "type='ticker' is not a Dhan packet type handled (full, oi)"
    ]


def test_ingest_stores_quarantine_queryable_by_symbol_and_day(tmp_path, tick_store):
    path = tmp_path / "ticks.csv"
    rows = [
        GOOD,
        GOOD,
        GOOD.replace(",75,", ",-75,").replace("10:00:00", "10:00:01"),
        GOOD.replace("10:00", "08:00"),
    ]
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    mapping = Mapping.from_dict({**NSE, "columns": COLUMNS})

    ingest_files([path], "mapped", tick_store, mapping=mapping)

    stored = tick_store.read_quarantine(symbol="NIFTY", day=pd.Timestamp("2025-12-29").date())
    assert stored[["row", "reason"]].values.tolist() == [
        [1, "duplicate"],
        [2, "negative_size"],
        [3, "outside_session"],
    ]


def test_out_of_order_is_judged_per_symbol(tmp_path):
    other = GOOD.replace("NIFTY", "BANKNIFTY")
    rows = [GOOD.replace("10:00:00", "10:00:05"), other, GOOD.replace("10:00:00", "10:00:01")]

    result = _read(tmp_path, rows)

    assert (result.ticks["symbol"].tolist(), result.quarantine["reason"].tolist()) == (
        ["NIFTY", "BANKNIFTY"],
        ["out_of_order"],
    )


@pytest.mark.parametrize(
    ("rows", "mapping"),
    [
        pytest.param([GOOD, GOOD], None, id="repeated-row"),
        pytest.param([f"{GOOD},5", f"{GOOD},5"], {**NSE, "columns": {**COLUMNS, "seq": "n"}}, id="same-key"),
    ],
)
def test_a_duplicate_in_the_next_chunk_is_found(tmp_path, rows, mapping):
    path = tmp_path / "ticks.csv"
    path.write_text("\n".join([HEADER + (",n" if mapping else ""), *rows]) + "\n")

    result = read_source(
        path, "mapped", mapping=Mapping.from_dict(mapping or {**NSE, "columns": COLUMNS}), chunk_rows=1
    )

    assert result.quarantine[["row", "reason"]].values.tolist() == [[1, "duplicate"]]


def test_a_wall_time_skipped_by_a_dst_change_is_unparseable(tmp_path):
    mapping = {
        "venue": "NASDAQ",
        "timezone": "America/New_York",
        "columns": {**COLUMNS, "symbol": {"value": "AMZN"}},
    }
    row = "2025-03-09 02:30:00,AMZN,220,10,219.99,220.01"  # clocks jumped from 02:00 to 03:00

    result = _read(tmp_path, [row], mapping)

    assert result.quarantine[["reason", "detail"]].values.tolist() == [
        ["unparseable", "time='2025-03-09 02:30:00' does not parse as ISO8601"]
    ]


def test_a_megabyte_row_is_quarantined_cut_to_a_few_kib_saying_how_long_it_was(tmp_path, tick_store):
    path = tmp_path / "ticks.csv"
    huge = GOOD.replace(",26000,", f",{'9x' * 500_000},")  # a 1 MB price field
    path.write_text("\n".join([HEADER, GOOD, huge]) + "\n")

    ingest_files([path], "mapped", tick_store, mapping=Mapping.from_dict({**NSE, "columns": COLUMNS}))

    row = tick_store.read_quarantine().iloc[0]
    size = len(huge.encode())
    assert row["reason"] == "unparseable"
    for text in (row["raw"], row["detail"]):
        assert len(text.encode()) <= QUARANTINE_TEXT_BYTES
        assert text.startswith(("2025-12-29 10:00:00,NIFTY,9x9x", "price='9x9x"))
    assert row["raw"].endswith(f"…[cut: {size:,} bytes in all]")
