"""Checks a source file as a whole before anything of it is stored, so a hostile file is refused cleanly."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from pipelines.sources.lines import BLOCK_BYTES, MAX_LINE_BYTES, NEWLINE, SourceFileError, open_binary

__all__ = ["MAX_LINE_BYTES", "SourceFileError", "check_file", "orderbook_beside"]

HEADER_FORMATS = ("b3", "dhan", "kite")  # their files begin with a header line naming the columns
PARQUET_MAGIC = b"PAR1"  # a `mapped` file may be Parquet: binary by design, pyarrow checks it
UTF16_MARKS = (b"\xff\xfe", b"\xfe\xff")
TAB, CR = 9, 13  # the control bytes text holds are 9..13: tab, newline, vertical tab, form feed, return


def check_file(path: str | Path, fmt: str) -> None:
    """Raise SourceFileError ("<path>: <reason>", one line) when `path` cannot be read as a file of `fmt`.

    The whole file is read in blocks (gzip decompressed to its end): it must be a readable regular file,
    not empty where `fmt` needs a header, text (no NUL or other control byte but whitespace) and have no
    line longer than MAX_LINE_BYTES. Text that is not UTF-8 passes: its rows are read with U+FFFD.
    A LOBSTER message file's orderbook file is checked too.
    """
    path = Path(path)
    _check_one(path, fmt)
    if fmt == "lobster":
        book = orderbook_beside(path)
        if book == path or not book.exists():
            raise SourceFileError(f"{path}: no orderbook file beside it (expected {book.name})")
        _check_one(book, fmt)


def orderbook_beside(message_path: Path) -> Path:
    """The LOBSTER orderbook file named like `message_path` (`_message_` -> `_orderbook_`)."""
    return message_path.with_name(message_path.name.replace("_message_", "_orderbook_"))


def _check_one(path: Path, fmt: str) -> None:
    if not path.exists():
        raise SourceFileError(f"{path}: no such file")
    if path.is_dir():
        raise SourceFileError(f"{path}: is a directory, not a {fmt} file")
    if not path.is_file():
        raise SourceFileError(f"{path}: not a regular file")
    try:
        with open_binary(path) as handle:
            _check_content(handle, path, fmt)
    except PermissionError:
        raise SourceFileError(f"{path}: cannot be read (permission denied)") from None
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise SourceFileError(f"{path}: gzip data that cannot be decompressed to its end ({exc})") from None
    except OSError as exc:
        raise SourceFileError(f"{path}: cannot be read ({exc.strerror or exc})") from None


def _check_content(handle: BinaryIO, path: Path, fmt: str) -> None:
    """Stream `handle` in blocks: one pass finds control bytes and line ends, never holding the file."""
    where = " of the decompressed data" if isinstance(handle, gzip.GzipFile) else ""
    block = handle.read(BLOCK_BYTES)
    if not block and fmt in HEADER_FORMATS:
        raise SourceFileError(f"{path}: empty, but a {fmt} file begins with a header line")
    if fmt == "mapped" and block.startswith(PARQUET_MAGIC):
        return
    if block[:2] in UTF16_MARKS:
        raise SourceFileError(f"{path}: UTF-16 text; save it as UTF-8")
    offset, line_start, lines = 0, 0, 0  # bytes before this block, where the open line starts, lines ended
    while block:
        view = np.frombuffer(block, dtype=np.uint8)
        low = np.flatnonzero(view < 32)  # newlines and any other control byte: few per block in text
        kinds = view[low]
        odd = low[(kinds < TAB) | (kinds > CR)]
        if len(odd):
            byte = int(view[odd[0]])
            what = "NUL byte" if byte == 0 else f"control byte 0x{byte:02x}"
            raise SourceFileError(
                f"{path}: binary content ({what} at offset {offset + int(odd[0]):,}{where})"
            )
        ends = low[kinds == NEWLINE] + offset
        gaps = np.diff(np.concatenate([[line_start - 1], ends, [offset + len(block)]]))  # line lengths + 1
        longest = int(np.argmax(gaps))
        if gaps[longest] - 1 > MAX_LINE_BYTES:
            raise SourceFileError(
                f"{path}: line {lines + longest + 1:,} is longer than {MAX_LINE_BYTES:,} bytes"
            )
        if len(ends):
            line_start = int(ends[-1]) + 1
        lines += len(ends)
        offset += len(block)
        block = handle.read(BLOCK_BYTES)
