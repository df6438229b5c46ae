"""Typed access to the fields of one chunk of source rows; a value that does not parse quarantines its row."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from pipelines.sources.chunk import NAT, Problems
from pipelines.sources.lines import LineChunk

# Text that ends in a UTC offset or Z carries its own zone; other timestamps are naive.
_AWARE = r"(?:Z|[+-]\d\d:?\d\d)$"
EPOCH_UNITS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}


class Rows:
    """Fields of a chunk's rows, aligned by position (null where a CSV line could not be split)."""

    def __init__(self, rows: np.ndarray, problems: Problems, cut: bool = False) -> None:
        self.rows = rows
        self.problems = problems
        self.cut = cut  # the last row ends the file without a line terminator

    def __len__(self) -> int:
        return len(self.rows)

    def column(self, name: str) -> pa.Array:
        raise NotImplementedError

    def raw(self, positions: np.ndarray) -> list[str]:
        raise NotImplementedError

    def bad(self, mask: np.ndarray, detail) -> None:
        """Quarantine rows whose field does not parse: `truncated` for a last line the file cuts short."""
        mask = np.asarray(mask, dtype=bool)
        if self.cut and len(mask) and mask[-1] and self.problems.ok[-1]:
            last = np.zeros(len(mask), dtype=bool)
            last[-1] = True
            self.problems.flag(last, "truncated", lambda w: [f"file ends inside this row ({detail(w)[0]})"])
            mask = mask & ~last
        self.problems.flag(mask, "unparseable", detail)

    def text(self, name: str) -> pd.Series:
        """The field as text ("" where missing), indexed by position; Arrow-backed, no Python strings."""
        values = self.column(name)
        if not _is_text(values.type):
            values = pc.cast(values, pa.string())
        return values.fill_null("").to_pandas()

    def number(self, name: str, *, required: bool = False) -> np.ndarray:
        """The field as float64: NaN where blank; text that is no number makes the row unparseable."""
        values = self.column(name)
        if _is_text(values.type):
            values = _blank_to_null(values)
            try:
                out = _floats(values)
            except pa.ArrowInvalid:  # some value is no number: find which, the slow way
                text = values.to_pandas().str.strip()
                out = pd.to_numeric(text, errors="coerce").to_numpy(np.float64, na_value=np.nan, copy=True)
                wrong = (text.notna() & (text.str.lower() != "nan")).to_numpy(
                    bool, na_value=False
                ) & np.isnan(out)
                self.bad(wrong, lambda w: [f"{name}={t!r} is not a number" for t in _texts(values, w)])
                out[wrong] = np.nan
        else:
            out = _floats(values)
        if required:
            self.bad(self.problems.ok & np.isnan(out), lambda w: [f"{name} is missing"] * len(w))
        return out

    def timestamp(
        self, name: str, *, fmt: str = "ISO8601", unit: str | None = None, tz: str = "UTC"
    ) -> np.ndarray:
        """The field as epoch nanoseconds UTC (NAT where bad); blank or unparseable values quarantine the row.

        `fmt` is "ISO8601", "epoch" (numbers in `unit`) or a strftime pattern. Timestamps without a zone are
        wall times in `tz`; one that does not exist or is ambiguous there (a DST change) is unparseable.
        """
        values = self.column(name)
        if pa.types.is_timestamp(values.type):
            ns = _from_timestamps(values, tz)
        elif fmt == "epoch" or pa.types.is_integer(values.type) or pa.types.is_floating(values.type):
            ns = self._from_epoch(name, values, unit or "s")
        else:
            ns = _from_text(values, fmt, tz)

        def detail(where: np.ndarray) -> list[str]:
            return [
                f"{name} is missing" if not t else f"{name}={t!r} does not parse as {fmt}"
                for t in _texts(values, where)
            ]

        self.bad(self.problems.ok & (ns == NAT), detail)
        return ns

    def _from_epoch(self, name: str, values: pa.Array, unit: str) -> np.ndarray:
        scale = EPOCH_UNITS[unit]
        if _is_text(values.type):
            try:  # integers keep every nanosecond; a float64 would not
                values = pc.cast(_blank_to_null(values), pa.int64())
            except pa.ArrowInvalid:
                pass
        if pa.types.is_integer(values.type):
            ints = pc.cast(values, pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
            nulls = values.is_null().to_numpy(zero_copy_only=False)
            return np.where(nulls, NAT, ints * scale).astype(np.int64)
        seconds = self.number(name) if _is_text(values.type) else _floats(values)
        out = np.full(len(seconds), NAT, dtype=np.int64)
        finite = np.isfinite(seconds)
        out[finite] = np.rint(seconds[finite] * scale).astype(np.int64)
        return out


def per_value(text: pd.Series, convert=None, dtype=object) -> np.ndarray:
    """`convert` applied once per distinct value of `text` (identity when None), spread back to every row:
    a chunk holds few distinct symbols or codes, so this is as fast as a lookup and shares the objects."""
    codes, uniques = pd.factorize(text)
    mapped = [u if convert is None else convert(u) for u in uniques]
    return np.asarray([*mapped, "" if dtype is object else np.nan], dtype=dtype)[codes]


def _is_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def _blank_to_null(values: pa.Array) -> pa.Array:
    return pc.if_else(pc.equal(pc.utf8_trim_whitespace(values), ""), pa.scalar(None, values.type), values)


def _floats(values: pa.Array) -> np.ndarray:
    return np.array(pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)


def _texts(values: pa.Array, where: np.ndarray) -> list[str]:
    """The values at positions `where` as text ("" for null), for quarantine details."""
    return ["" if v is None else str(v) for v in values.take(pa.array(where, type=pa.int64())).to_pylist()]


def _epoch_ns(values: pa.Array) -> np.ndarray:
    """Epoch nanoseconds of an Arrow timestamp array (UTC when it has a zone), NAT for null."""
    ns = pc.cast(values, pa.timestamp("ns", tz=values.type.tz)).cast(pa.int64())
    return np.array(ns.fill_null(NAT).to_numpy(zero_copy_only=False), dtype=np.int64)


def _localize(ns: np.ndarray, tz: str) -> np.ndarray:
    """Naive wall-time epoch ns in `tz` -> UTC epoch ns; NAT where the wall time does not exist or is ambiguous."""
    if tz == "UTC":
        return ns
    wall = pd.DatetimeIndex(pd.to_datetime(ns, unit="ns"))  # NAT is pandas' NaT
    return _ns(wall.tz_localize(tz, ambiguous="NaT", nonexistent="NaT"))


def _from_timestamps(values: pa.Array, tz: str) -> np.ndarray:
    ns = _epoch_ns(values)
    return ns if values.type.tz is not None else _localize(ns, tz)


def _from_text(values: pa.Array, fmt: str, tz: str) -> np.ndarray:
    """Parse timestamps: Arrow's ISO-8601 cast when every value is aware, or every one naive; else pandas."""
    values = _blank_to_null(values)
    if fmt == "ISO8601":
        for kind in (pa.timestamp("ns", tz="UTC"), pa.timestamp("ns")):
            try:
                return _from_timestamps(pc.cast(values, kind), tz)
            except pa.ArrowInvalid:
                continue
    text = values.to_pandas()
    index = pd.DatetimeIndex(pd.to_datetime(text, format=fmt, utc=True, errors="coerce")).as_unit("ns")
    ns = _ns(index)
    if tz != "UTC":  # naive text was read as UTC wall time: read it again as wall time in `tz`
        if fmt == "ISO8601":
            naive = ~text.str.contains(_AWARE, regex=True).to_numpy(bool, na_value=True)
        else:
            naive = np.full(len(ns), "%z" not in fmt and "%Z" not in fmt)
        naive &= ns != NAT
        if naive.any():
            ns[naive] = _localize(_ns(index[naive].tz_convert("UTC")), tz)
    return ns


def _ns(index: pd.DatetimeIndex) -> np.ndarray:
    """Epoch nanoseconds UTC of a tz-aware index, NAT for NaT."""
    utc = index.tz_convert("UTC").as_unit("ns")
    return np.array(utc.asi8, dtype=np.int64)


class CsvRows(Rows):
    """One chunk of CSV lines split into fields; a line with the wrong number of fields is unparseable.

    A trailing delimiter (one empty extra field) is accepted. Lines with a double quote are split by
    Python's csv module (quoted fields may hold the delimiter, not newlines); others by pyarrow.
    """

    def __init__(
        self, lines: LineChunk, names: list[str], usecols: list[str], delimiter: str = ",", problems=None
    ) -> None:
        super().__init__(lines.rows, problems or Problems(len(lines)), cut=lines.cut)
        self.lines = lines
        self.names = names
        delim = ord(delimiter)
        counts, quoted = _field_counts(lines, delim)
        trailing = (counts == len(names) + 1) & _ends_with(lines, delim)
        whole = (counts == len(names)) | trailing
        empty = lines.stops == lines.starts
        split_by_csv = quoted & whole
        quoted_fields: list[list[str]] = []
        for i in np.flatnonzero(quoted):
            try:
                fields = next(csv.reader([lines.text(i)], delimiter=delimiter), [])
            except csv.Error as exc:
                fields = [f"<{exc}>"]
            fields = fields[:-1] if len(fields) == len(names) + 1 and fields[-1] == "" else fields
            if len(fields) == len(names):
                quoted_fields.append(fields)
            whole[i] = len(fields) == len(names)
            counts[i] = len(fields)
        split_by_csv &= whole
        self.problems.flag(empty, "unparseable", "empty line")
        self.bad(~whole & ~empty, lambda w: [f"{counts[i]} fields, expected {len(names)}" for i in w])

        plain = whole & ~split_by_csv
        table = _parse_plain(lines, plain, trailing.astype(np.int64), names, usecols, delimiter)
        if quoted_fields:
            keep = [names.index(c) for c in usecols]
            extra = pa.table({c: [f[k] for f in quoted_fields] for c, k in zip(usecols, keep, strict=True)})
            table = pa.concat_tables([table, extra.cast(table.schema)])
        index = np.full(len(lines), -1, dtype=np.int64)
        index[np.flatnonzero(plain)] = np.arange(int(plain.sum()))
        index[np.flatnonzero(split_by_csv)] = np.arange(
            int(plain.sum()), int(plain.sum() + split_by_csv.sum())
        )
        self._table = table
        self._index = pa.array(index, mask=index < 0)

    def column(self, name: str) -> pa.Array:
        if name not in self._table.column_names:
            raise KeyError(f"column {name!r} was not read; read columns: {self._table.column_names}")
        return pc.take(self._table[name], self._index).combine_chunks()

    def raw(self, positions: np.ndarray) -> list[str]:
        return [self.lines.text(int(i)) for i in positions]


def _field_counts(lines: LineChunk, delimiter: int) -> tuple[np.ndarray, np.ndarray]:
    """Fields per line (delimiters + 1) and whether the line holds a double quote, without a Python loop."""
    view = np.frombuffer(lines.data, dtype=np.uint8)

    def per_line(positions: np.ndarray) -> np.ndarray:
        return np.searchsorted(positions, lines.stops) - np.searchsorted(positions, lines.starts)

    counts = per_line(np.flatnonzero(view == delimiter)) + 1
    quoted = per_line(np.flatnonzero(view == ord('"'))) > 0
    return counts.astype(np.int64), quoted


def _ends_with(lines: LineChunk, byte: int) -> np.ndarray:
    view = np.frombuffer(lines.data, dtype=np.uint8)
    nonempty = lines.stops > lines.starts
    last = np.where(nonempty, lines.stops - 1, 0)
    return nonempty & (view[last] == byte) if len(view) else nonempty


def _parse_plain(
    lines: LineChunk, keep: np.ndarray, trim: np.ndarray, names: list[str], usecols: list[str], delimiter: str
) -> pa.Table:
    """Parse the kept lines (no quotes, the right field count) with pyarrow, every used column as text."""
    schema = pa.schema([(c, pa.string()) for c in usecols])
    if not keep.any():
        return schema.empty_table()
    payload = lines.joined(keep, trim if trim.any() else None)
    longest = int((lines.stops - lines.starts).max())
    try:
        return _read_text_columns(payload, names, usecols, delimiter, longest)
    except pa.ArrowInvalid:  # bytes that are not UTF-8: read them as U+FFFD; the row splits the same way
        payload = payload.decode("utf-8", errors="replace").encode()
        return _read_text_columns(payload, names, usecols, delimiter, longest)


def _read_text_columns(
    payload: bytes, names: list[str], usecols: list[str], delimiter: str, longest: int
) -> pa.Table:
    """The `usecols` of CSV `payload` as text columns (no quoting: quoted lines are split elsewhere)."""
    table = pacsv.read_csv(
        io.BytesIO(payload),
        # one thread: as fast here (two shared cores), no per-thread buffers; a block must hold the longest
        # line, which U+FFFD replacement can make up to three times longer
        read_options=pacsv.ReadOptions(
            column_names=names, block_size=max(8 << 20, 3 * longest + 1), use_threads=False
        ),
        parse_options=pacsv.ParseOptions(delimiter=delimiter, quote_char=False, ignore_empty_lines=False),
        convert_options=pacsv.ConvertOptions(
            include_columns=usecols,
            column_types={c: pa.string() for c in usecols},
            strings_can_be_null=False,
        ),
    )
    return table.select(usecols)


class ArrowRows(Rows):
    """Rows of an Arrow record batch (a Parquet file read in batches); `raw` renders the read columns as JSON."""

    def __init__(self, batch: pa.RecordBatch, first_row: int) -> None:
        super().__init__(
            np.arange(first_row, first_row + batch.num_rows, dtype=np.int64), Problems(batch.num_rows)
        )
        self.batch = batch

    def column(self, name: str) -> pa.Array:
        return self.batch.column(name)

    def raw(self, positions: np.ndarray) -> list[str]:
        rows = self.batch.take(pa.array(positions, type=pa.int64())).to_pylist()
        return [json.dumps(r, default=str) for r in rows]
