"""Read a text file as chunks of whole lines with bounded memory, keeping each line's text for quarantine."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

NEWLINE, CR = 10, 13
BLOCK_BYTES = 4 << 20
GZIP_MAGIC = b"\x1f\x8b"
# Real tick rows are under 1 KB and a Binance depth snapshot under 300 KB; a longer "line" is not a row but
# a file without line ends (binary, or not text), and every reader holds a whole line in memory.
MAX_LINE_BYTES = 1 << 20


class SourceFileError(ValueError):
    """A file that cannot be ingested at all; the message is one line naming the file and the reason."""


def open_binary(path: str | Path) -> BinaryIO:
    """`path` opened for binary reading, decompressed on the fly when it is gzip (by its magic bytes)."""
    handle = open(path, "rb")  # noqa: SIM115 - the caller closes it
    if handle.read(2) == GZIP_MAGIC:
        handle.close()
        return gzip.open(path, "rb")
    handle.seek(0)
    return handle


@dataclass(frozen=True)
class LineChunk:
    """Consecutive lines of a file: `data[starts[i]:stops[i]]` is line i without its line terminator.

    `first_row` is the 0-based data row (header excluded) of line 0. `cut` is True when the last line
    ends the file without a line terminator: the file may have been cut off inside it.
    """

    first_row: int
    data: bytes
    starts: np.ndarray
    stops: np.ndarray
    cut: bool = False

    def __len__(self) -> int:
        return len(self.starts)

    @property
    def rows(self) -> np.ndarray:
        """0-based data row number of every line."""
        return np.arange(self.first_row, self.first_row + len(self), dtype=np.int64)

    def line(self, i: int) -> bytes:
        return self.data[self.starts[i] : self.stops[i]]

    def text(self, i: int) -> str:
        return self.line(i).decode("utf-8", errors="replace")

    def joined(self, keep: np.ndarray, trim: np.ndarray | None = None) -> bytes:
        """The kept lines joined by newlines (`trim[i]` bytes cut off the end of line i), for a CSV parser."""
        stops = self.stops if trim is None else self.stops - trim
        if trim is None and keep.all() and self._plain():
            return self.data  # the common case: no copy
        return b"\n".join(self.data[a:b] for a, b in zip(self.starts[keep], stops[keep], strict=True))

    def _plain(self) -> bool:
        """True when the data is exactly the lines, each ended by a bare newline (no CR), but the last."""
        ends = self.stops[:-1]
        return bool(len(ends) == 0 or (np.all(self.starts[1:] == ends + 1)))


def read_header(handle: BinaryIO) -> bytes | None:
    """The first line of `handle` without its terminator and a UTF-8 byte-order mark; None if the file is empty."""
    line = handle.readline(MAX_LINE_BYTES + 1)
    if not line:
        return None
    if len(line) > MAX_LINE_BYTES:
        raise SourceFileError(f"{_name(handle)}: the header line is longer than {MAX_LINE_BYTES:,} bytes")
    return line.rstrip(b"\r\n").removeprefix(b"\xef\xbb\xbf")


def line_chunks(handle: BinaryIO, chunk_rows: int, first_row: int = 0) -> Iterator[LineChunk]:
    """Chunks of `chunk_rows` whole lines read from `handle` (the last chunk may be shorter).

    Memory holds one chunk plus one read block: the incomplete line at the end of a block is carried into
    the next chunk, and only a line that ends the file without a newline is yielded unterminated. A line
    longer than MAX_LINE_BYTES raises SourceFileError as soon as it is seen, so one without an end is never
    read on.
    """
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    buffer = bytearray()
    ends = np.empty(0, dtype=np.int64)  # newline offsets in `buffer`
    eof = False
    row = first_row
    while True:
        while len(ends) < chunk_rows and not eof:
            block = handle.read(BLOCK_BYTES)
            if not block:
                eof = True
                break
            found = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == NEWLINE) + len(buffer)
            _check_lengths(handle, ends, found, len(buffer) + len(block), row)
            buffer.extend(block)
            ends = np.concatenate([ends, found])
        if len(ends) >= chunk_rows:
            size, stops = int(ends[chunk_rows - 1]) + 1, ends[:chunk_rows]
            cut = False
        elif buffer:  # end of file: the remaining lines, the last one perhaps unterminated
            size = len(buffer)
            cut = not len(ends) or int(ends[-1]) + 1 < size
            stops = np.append(ends, size) if cut else ends
        else:
            return
        data = bytes(buffer[:size])
        del buffer[:size]  # before the yield: memory holds the chunk once, not twice
        starts = np.concatenate([[0], stops[:-1] + 1]).astype(np.int64)
        chunk = LineChunk(row, data, starts, _strip_cr(data, starts, stops), cut)
        if eof and len(ends) < chunk_rows:
            yield chunk
            return
        row += len(stops)
        ends = ends[chunk_rows:] - size
        yield chunk
        del chunk, data


def _check_lengths(handle: BinaryIO, ends: np.ndarray, found: np.ndarray, size: int, row: int) -> None:
    """Raise SourceFileError when a line ended by `found`, or the unfinished line at `size`, is too long.

    `ends` are the newlines already in the buffer (which starts at a line start, data row `row`).
    """
    start = int(ends[-1]) + 1 if len(ends) else 0  # where the line still unfinished before this block starts
    gaps = np.diff(np.concatenate([[start - 1], found, [size]]))  # line lengths + 1, the last one unfinished
    longest = int(np.argmax(gaps))
    if gaps[longest] - 1 > MAX_LINE_BYTES:
        raise SourceFileError(
            f"{_name(handle)}: data row {row + len(ends) + longest:,} is longer than {MAX_LINE_BYTES:,} bytes"
        )


def _name(handle: BinaryIO) -> str:
    return str(getattr(handle, "name", "<stream>"))


def _strip_cr(data: bytes, starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """Line stops with a trailing carriage return (CRLF files) excluded."""
    if not len(stops):
        return stops
    view = np.frombuffer(data, dtype=np.uint8)
    last = np.clip(stops - 1, 0, None)
    has_cr = (stops > starts) & (view[last] == CR)
    return stops - has_cr.astype(np.int64)
