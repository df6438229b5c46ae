"""A CSV file opened for chunked reading: its column names (from the header, or given) and its line chunks."""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from pathlib import Path

from pipelines.sources.lines import LineChunk, line_chunks, read_header


class CsvFile:
    """Opens `path`, reads the header unless `names` are given, and checks the `required` columns are there.

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
        self._handle = open(self.path, "rb")  # noqa: SIM115 - closed when `chunks` is exhausted or on error
        try:
            if names is None:
                header = read_header(self._handle)
                if header is None:
                    raise ValueError(f"{self.path} is empty: it has no header line")
                names = next(csv.reader([header.decode("utf-8", errors="replace")], delimiter=delimiter))
                while names and names[-1] == "":
                    names.pop()
            missing = [c for c in required if c not in names]
            if missing:
                raise ValueError(f"{self.path}: the header lacks column(s) {missing}; it has {list(names)}")
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
