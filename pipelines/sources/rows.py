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
    """Fields of a chunk's rows, aligned by position: `column` is null where the row is already bad."""

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
        if self.cut and len(mask) and mask[-1]:
            last = np.zeros(len(mask), dtype=bool)
            last[-1] = True
            self.problems.flag(last, "truncated", lambda w: [f"file ends inside this row ({detail(w)[0]})"])
            mask = mask & ~last
        self.problems.flag(mask, "unparseable", detail)

    def text(self, name: str) -> pd.Series:
        """The field as text ("" where missing or the row is bad), indexed by position."""
        values = self.column(name)
        if not pa.types.is_string(values.type) and not pa.types.is_large_string(values.type):
            values = pc.cast(values, pa.string())
        return pd.Series(values.fill_null("").to_numpy(zero_copy_only=False), dtype=str)

    def number(self, name: str, *, required: bool = False) -> np.ndarray:
        """The field as float64: NaN where blank (or the row is bad); text that is no number is unparseable."""
        values = self.column(name)
        if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
            blank = pc.fill_null(pc.equal(pc.utf8_trim_whitespace(values), ""), True)
            text = pc.if_else(blank, pa.scalar(None, values.type), values)
            try:
                out = pc.cast(text, pa.float64()).to_numpy(zero_copy_only=False).copy()
            except pa.ArrowInvalid:
                series = pd.Series(text.to_numpy(zero_copy_only=False), dtype=object)
                out = pd.to_numeric(series.str.strip(), errors="coerce").to_numpy(np.float64, copy=True)
                given = ~np.asarray(blank.to_numpy(zero_copy_only=False), dtype=bool)
                wrong = given & np.isnan(out) & ~series.str.strip().str.lower().isin(["nan"]).to_numpy()
                self.bad(wrong, lambda w: [f"{name}={series.iloc[i]!r} is not a number" for i in w])
                out[wrong] = np.nan
        else:
            out = pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False).copy()
        if required:
            self.bad(self.problems.ok & np.isnan(out), lambda w: [f"{name} is missing"] * len(w))
        return out

    def timestamp(self, name: str, *, fmt: str = "ISO8601", unit: str | None = None, tz: str = "UTC") -> np.ndarray:
        """The field as epoch nanoseconds UTC (NAT where bad); blank or unparseable values quarantine the row.

        `fmt` is "ISO8601", "epoch" (numbers in `unit`) or a strftime pattern. Timestamps without a zone are
        wall times in `tz`; one that does not exist or is ambiguous there (a DST change) is unparseable.
        """
        values = self.column(name)
        if pa.types.is_timestamp(values.type):
            ns = self._from_arrow_timestamps(values, tz)
        elif fmt == "epoch" or pa.types.is_integer(values.type) or pa.types.is_floating(values.type):
            ns = self._from_epoch(name, values, unit or "s")
        else:
            ns = self._from_text(name, values, fmt, tz)
        known = ns != NAT
        text = self.text(name)
        self.bad(
            self.problems.ok & ~known,
            lambda w: [
                f"{name} is missing" if text.iloc[i] == "" else f"{name}={text.iloc[i]!r} is not a {fmt} time"
                for i in w
            ],
        )
        return ns

    def _from_arrow_timestamps(self, values: pa.Array, tz: str) -> np.ndarray:
        index = pd.DatetimeIndex(values.to_pandas())
        if index.tz is None:
            index = index.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
        return _ns(index)

    def _from_epoch(self, name: str, values: pa.Array, unit: str) -> np.ndarray:
        scale = EPOCH_UNITS[unit]
        if pa.types.is_integer(values.type):
            ints = pc.cast(values, pa.int64()).to_numpy(zero_copy_only=False)
            nulls = values.is_null().to_numpy(zero_copy_only=False)
            out = np.where(nulls, NAT, np.nan_to_num(ints, nan=0).astype(np.int64) * scale)
            return out.astype(np.int64)
        if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
            try:  # integers keep every nanosecond; a float64 would not
                ints = pc.cast(pc.if_else(pc.equal(values, ""), pa.scalar(None, values.type), values), pa.int64())
                return self._from_epoch(name, ints, unit)
            except pa.ArrowInvalid:
                pass
        seconds = self.number(name) if not pa.types.is_floating(values.type) else _floats(values)
        out = np.full(len(seconds), NAT, dtype=np.int64)
        finite = np.isfinite(seconds)
        out[finite] = np.rint(seconds[finite] * scale).astype(np.int64)
        return out

    def _from_text(self, name: str, values: pa.Array, fmt: str, tz: str) -> np.ndarray:
        text = pd.Series(values.fill_null("").to_numpy(zero_copy_only=False), dtype=str)
        parsed = pd.to_datetime(text, format=fmt, utc=True, errors="coerce")
        index = pd.DatetimeIndex(parsed).as_unit("ns")
        ns = _ns(index)
        if tz != "UTC":  # naive text was read as UTC wall time: re-read it as wall time in `tz`
            naive = ~text.str.contains(_AWARE, regex=True).to_numpy() & (ns != NAT)
            if fmt not in ("ISO8601",) and "%z" not in fmt and "%Z" not in fmt:
                naive = ns != NAT
            if naive.any():
                wall = index[naive].tz_localize(None).tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
                ns[naive] = _ns(wall)
        return ns


def _ns(index: pd.DatetimeIndex) -> np.ndarray:
    """Epoch nanoseconds UTC of a tz-aware index, NAT for NaT."""
    utc = index.tz_convert("UTC").as_unit("ns")
    return np.asarray(utc.asi8, dtype=np.int64).copy()


def _floats(values: pa.Array) -> np.ndarray:
    return pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False).copy()


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
        self.problems.flag(empty & ~(lines.cut & (np.arange(len(lines)) == len(lines) - 1)), "unparseable", "empty line")
        self.bad(~whole & ~empty, lambda w: [f"{counts[i]} fields, expected {len(names)}" for i in w])

        plain = whole & ~split_by_csv
        table = _parse_plain(lines, plain, trailing.astype(np.int64), names, usecols, delimiter)
        if quoted_fields:
            keep = [names.index(c) for c in usecols]
            extra = pa.table({c: [f[k] for f in quoted_fields] for c, k in zip(usecols, keep, strict=True)})
            table = pa.concat_tables([table, extra.cast(table.schema)])
        index = np.full(len(lines), -1, dtype=np.int64)
        index[np.flatnonzero(plain)] = np.arange(int(plain.sum()))
        index[np.flatnonzero(split_by_csv)] = np.arange(int(plain.sum()), int(plain.sum() + split_by_csv.sum()))
        self._table = table
        self._index = pa.array(index, mask=index < 0)

    def column(self, name: str) -> pa.Array:
        if name not in self._table.column_names:
            raise KeyError(f"column {name!r} was not read; read columns: {self._table.column_names}")
        values = pc.take(self._table[name], self._index).combine_chunks()
        ok = pa.array(self.problems.ok)
        return pc.if_else(ok, values, pa.scalar(None, values.type))

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
    table = pacsv.read_csv(
        io.BytesIO(payload),
        read_options=pacsv.ReadOptions(column_names=names, block_size=max(1 << 20, len(payload) + 1)),
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
        super().__init__(np.arange(first_row, first_row + batch.num_rows, dtype=np.int64), Problems(batch.num_rows))
        self.batch = batch

    def column(self, name: str) -> pa.Array:
        values = self.batch.column(name)
        return pc.if_else(pa.array(self.problems.ok), values, pa.scalar(None, values.type))

    def raw(self, positions: np.ndarray) -> list[str]:
        rows = self.batch.take(pa.array(positions, type=pa.int64())).to_pylist()
        return [json.dumps(r, default=str) for r in rows]
