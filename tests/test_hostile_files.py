"""Hostile source files are refused whole, in one line naming the file and the reason, before anything is stored."""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from feature_store.store import open_store
from pipelines.sources import preflight, read_source
from pipelines.sources.csvfile import CsvFile
from pipelines.sources.lines import MAX_LINE_BYTES, line_chunks
from pipelines.sources.preflight import SourceFileError, check_file
from tests.data import B3_FILES, DATA, DHAN, KITE, LOBSTER

TICKML = str(Path(sys.executable).with_name("tickml"))
B3 = B3_FILES[0]


def _random_bytes(n: int, *, seed: int = 7) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def binary_without_newlines(tmp: Path) -> Path:
    """Binary bytes with carriage returns but no newline: the csv module's "new-line character seen"."""
    path = tmp / "blob.csv"
    path.write_bytes(_random_bytes(3 << 20).replace(b"\n", b"\r"))
    return path


def random_bytes(tmp: Path) -> Path:
    path = tmp / "noise.csv"
    path.write_bytes(_random_bytes(4096))
    return path


def gzip_with_a_long_first_line(tmp: Path) -> Path:
    path = tmp / "long.csv.gz"
    path.write_bytes(gzip.compress(b"x" * (5 << 20) + b"\n" + B3.read_bytes()))
    return path


def truncated_gzip(tmp: Path) -> Path:
    whole = gzip.compress(B3.read_bytes())
    path = tmp / "cut.csv.gz"
    path.write_bytes(whole[: len(whole) // 2])
    return path


def gzip_with_a_bad_crc(tmp: Path) -> Path:
    whole = bytearray(gzip.compress(B3.read_bytes()))
    whole[-8] ^= 1  # the CRC-32 of the trailer
    path = tmp / "crc.csv.gz"
    path.write_bytes(bytes(whole))
    return path


def gzip_of_binary(tmp: Path) -> Path:
    path = tmp / "noise.csv.gz"
    path.write_bytes(gzip.compress(_random_bytes(4096)))
    return path


def nul_bytes_after_text(tmp: Path) -> Path:
    """A text file whose end was zero-filled (a crash while writing it)."""
    path = tmp / "zeros.csv"
    path.write_bytes(B3.read_bytes() + bytes(4096))
    return path


def text_without_newlines(tmp: Path) -> Path:
    path = tmp / "one_line.csv"
    path.write_bytes(b"1," * (MAX_LINE_BYTES // 2 + 1))
    return path


def a_directory(tmp: Path) -> Path:
    path = tmp / "folder.csv"
    path.mkdir()
    return path


def empty(tmp: Path) -> Path:
    path = tmp / "empty.csv"
    path.touch()
    return path


def utf16(tmp: Path) -> Path:
    path = tmp / "utf16.csv"
    path.write_bytes(B3.read_text().encode("utf-16"))
    return path


def missing(tmp: Path) -> Path:
    return tmp / "nowhere.csv"


HOSTILE = [
    (binary_without_newlines, "binary content (control byte"),
    (random_bytes, "binary content ("),
    (gzip_with_a_long_first_line, f"line 1 is longer than {MAX_LINE_BYTES:,} bytes"),
    (truncated_gzip, "cannot be decompressed to its end (Compressed file ended"),
    (gzip_with_a_bad_crc, "cannot be decompressed to its end (CRC check failed"),
    (gzip_of_binary, "of the decompressed data)"),
    (nul_bytes_after_text, f"NUL byte at offset {B3.stat().st_size:,})"),
    (text_without_newlines, "line 1 is longer than"),
    (a_directory, "is a directory"),
    (empty, "empty, but a b3 file begins with a header line"),
    (utf16, "UTF-16 text"),
    (missing, "no such file"),
]


@pytest.mark.parametrize(("make", "reason"), HOSTILE, ids=[make.__name__ for make, _ in HOSTILE])
def test_check_file_refuses_a_hostile_file_in_one_line_naming_it(tmp_path, make, reason):
    path = make(tmp_path)

    with pytest.raises(SourceFileError) as refused:
        check_file(path, "b3")

    message = str(refused.value)
    assert message.startswith(f"{path}: ") and reason in message and "\n" not in message


def test_check_file_refuses_a_file_it_may_not_read(tmp_path, monkeypatch):
    def denied(path):  # tests run as root, who may read any file: the refusal of the OS is simulated
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(preflight, "open_binary", denied)

    with pytest.raises(SourceFileError, match=rf"{B3.name}: cannot be read \(permission denied\)$"):
        check_file(B3, "b3")


def test_check_file_refuses_a_lobster_file_whose_orderbook_is_hostile(tmp_path):
    message = tmp_path / LOBSTER.name
    message.write_bytes(LOBSTER.read_bytes())
    preflight.orderbook_beside(message).write_bytes(_random_bytes(4096))

    with pytest.raises(SourceFileError, match="_orderbook_1.csv: binary content"):
        check_file(message, "lobster")


@pytest.mark.parametrize(
    ("fmt", "path"),
    [
        ("b3", B3),
        ("lobster", LOBSTER),
        ("dhan", DHAN),
        ("kite", KITE),
        ("binance", DATA / "binance" / "btcusdt_20240808.gz"),
        ("lobster", None),  # an empty LOBSTER file: it has no header to miss
    ],
)
def test_check_file_passes_real_files(tmp_path, fmt, path):
    if path is None:
        path = tmp_path / LOBSTER.name
        path.touch()
        preflight.orderbook_beside(path).touch()

    check_file(path, fmt)


def test_check_file_passes_a_parquet_file_of_the_mapped_format(tmp_path):
    path = tmp_path / "ticks.parquet"
    pq.write_table(pa.table({"ts": [1, 2], "price": [1.0, 2.0]}), path)

    check_file(path, "mapped")


def test_a_gzip_compressed_csv_gives_the_ticks_of_the_plain_file(tmp_path):
    packed = tmp_path / f"{B3.name}.gz"
    packed.write_bytes(gzip.compress(B3.read_bytes()))

    plain, unpacked = read_source(B3, "b3"), read_source(packed, "b3")

    pd.testing.assert_frame_equal(unpacked.ticks, plain.ticks)
    assert unpacked.rows_read == plain.rows_read and len(unpacked.quarantine) == len(plain.quarantine)


def test_line_chunks_refuses_a_line_without_end_in_bounded_memory(tmp_path):
    path = tmp_path / "endless.csv"
    path.write_bytes(b"x" * (64 << 20))

    tracemalloc.start()
    try:
        with (
            open(path, "rb") as handle,
            pytest.raises(SourceFileError, match="endless.csv: data row 0 is longer"),
        ):
            next(line_chunks(handle, chunk_rows=1000))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20  # one read block and the buffer, not the 64 MiB file


def test_line_chunks_refuses_a_long_line_between_short_ones():
    data = b"a,b\n" * 10 + b"c" * (MAX_LINE_BYTES + 1) + b"\n" + b"a,b\n" * 10

    with pytest.raises(SourceFileError, match="data row 10 is longer"):
        list(line_chunks(io.BytesIO(data), chunk_rows=4))


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (b"symbol\rrpt_seq,x\n", "the header line is not CSV"),
        (b"y" * (5 << 20) + b"\n", "header line is longer"),
    ],
)
def test_a_header_that_is_no_csv_header_is_refused_without_preflight(tmp_path, header, reason):
    path = tmp_path / "odd.csv"
    path.write_bytes(header + b"1,2\n")

    with pytest.raises(SourceFileError, match=reason):
        CsvFile(path, required=("symbol",))


def _ingest(*paths: Path, home: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [TICKML, "ingest", *map(str, paths), "--format", "b3"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TICKML_HOME": str(home)},
    )


CLI_HOSTILE = [
    pytest.param(binary_without_newlines, "binary content", [], id="binary_without_newlines-alone"),
    *(
        pytest.param(make, reason, [B3], id=f"{make.__name__}-after_a_good_file")
        for make, reason in [
            (binary_without_newlines, "binary content"),
            (gzip_with_a_long_first_line, "is longer than"),
            (a_directory, "is a directory"),
            (truncated_gzip, "cannot be decompressed to its end"),
            (random_bytes, "binary content"),
        ]
    ),
]


@pytest.mark.parametrize(("make", "reason", "before"), CLI_HOSTILE)
def test_ingest_refuses_a_hostile_file_in_one_line_and_stores_nothing(tmp_path, make, reason, before):
    bad, home = make(tmp_path), tmp_path / "home"

    result = _ingest(*before, bad, home=home)

    assert result.returncode == 2, result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith(f"tickml ingest: refused {bad}: ") and reason in line, line
    store = open_store(home=home)
    assert store.stats() == [] and len(store.read_quarantine()) == 0
