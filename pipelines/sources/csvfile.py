"""A CSV file (plain or gzip) opened for chunked reading: its column names (from the header, or given) and its
line chunks."""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from pathlib import Path

from pipelines.sources.lines import LineChunk, SourceFileError, line_chunks, open_binary, read_header


class CsvFile:
    """Opens `path` (gunzipped when it is gzip), reads the header unless `names` are given, and checks the
    `required` columns are there; a file that fails raises SourceFileError.

    A trailing delimiter on the header (an unnamed last column) is ignored, as it is on data rows.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        required: Sequence[str] = (),
        names: Sequence[str] | None = None,
        delimiter=",",
    ) -> None:
        self.path = Path(path).resolve()
        self.delimiter = delimiter
        self._handle = open_binary(self.path)  # closed when `chunks` is exhausted or on error
        try:
            if names is None:
                names = _header_names(self.path, read_header(self._handle), delimiter)
            missing = [c for c in required if c not in names]
            if missing:
                raise SourceFileError(
                    f"{self.path}: the header lacks column(s) {missing}; it has {list(names)}"
                )
        except BaseException:
            self._handle.close()
            raise
        self.names = list(names)

    def chunks(self, chunk_rows: int) -> Iterator[LineChunk]:
        """Chunks of `chunk_rows` lines (see `lines.line_chunks`); the file is closed at the end."""
        try:
            yield from line_chunks(self._handle, chunk_rows)
        finally:
            self._handle.close()


def _header_names(path: Path, header: bytes | None, delimiter: str) -> list[str]:
    if header is None:
        raise SourceFileError(f"{path}: empty, it has no header line")
    try:
        names = next(csv.reader([header.decode("utf-8", errors="replace")], delimiter=delimiter), [])
    except csv.Error as exc:  # e.g. a carriage return inside the line: not a CSV header
        raise SourceFileError(f"{path}: the header line is not CSV ({exc})") from None
    while names and names[-1] == "":
        names.pop()
    return names
