"""Any other CSV or Parquet file of ticks, read through a column-mapping file (mapping.py) -> tick candidates."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from pipelines.sources.chunk import Candidates, Rules, Source
from pipelines.sources.csvfile import CsvFile
from pipelines.sources.mapping import Mapping, MappingError
from pipelines.sources.rows import ArrowRows, CsvRows, Rows, per_value

PARQUET_SUFFIXES = (".parquet", ".pq")
PRICES = ("price", "bid", "ask")


def open_mapped(
    path: str | Path, mapping: Mapping | str | Path, *, symbol: str | None = None, chunk_rows: int = 500_000
) -> Source:
    """Tick candidates from a CSV or Parquet file whose columns `mapping` names (docs/ingest.md).

    Derivations where the mapping leaves a field out: size is the increase of a cumulative volume
    (without `size`), volume the running sum of size over the session (without `volume`), side the tick
    rule (without `side`, or where its value maps to tick_rule), seq the row number (without `seq`).
    Blank bid/ask/oi cells repeat the last kept value; a quote row without a price carries the last
    traded price. `symbol` replaces the mapped symbol for every row.
    """
    spec = mapping if isinstance(mapping, Mapping) else Mapping.load(mapping)
    path = Path(path).resolve()
    has_size, has_volume = "size" in spec.columns, "volume" in spec.columns
    rules = Rules(
        size_from_volume=has_volume and not has_size,
        cumulative_volume=has_size and not has_volume,
        explicit_seq="seq" in spec.columns,
        exchange_seq="seq" in spec.columns,  # a mapped seq is the source's event number within the day
    )
    fmt = spec.format or ("parquet" if path.suffix.lower() in PARQUET_SUFFIXES else "csv")
    needed = spec.source_columns()
    if fmt == "parquet":
        chunks = _parquet_chunks(path, spec, needed, symbol, chunk_rows)
    else:
        try:
            file = CsvFile(
                path, required=needed, names=None if spec.header else spec.names, delimiter=spec.delimiter
            )
        except ValueError as exc:
            raise MappingError(f"{spec.origin}: {exc}") from exc
        chunks = (
            _candidates(CsvRows(lines, file.names, needed, spec.delimiter), spec, symbol)
            for lines in file.chunks(chunk_rows)
        )
    return Source(path, spec.venue, rules, chunks)


def _parquet_chunks(path: Path, spec: Mapping, needed: list[str], symbol: str | None, chunk_rows: int):
    parquet = pq.ParquetFile(path)
    missing = [c for c in needed if c not in parquet.schema_arrow.names]
    if missing:
        raise MappingError(
            f"{spec.origin}: {path} lacks column(s) {missing}; it has {parquet.schema_arrow.names}"
        )

    def chunks() -> Iterator[Candidates]:
        first = 0
        for batch in parquet.iter_batches(batch_size=chunk_rows, columns=needed):
            yield _candidates(ArrowRows(batch, first), spec, symbol)
            first += batch.num_rows

    return chunks()


def _candidates(rows: Rows, spec: Mapping, symbol: str | None) -> Candidates:
    columns = spec.columns
    ts = rows.timestamp(columns["ts"], fmt=spec.ts_format, unit=spec.ts_unit, tz=spec.timezone)
    if symbol or spec.symbol_value:
        symbols = np.full(len(rows), symbol or spec.symbol_value, dtype=object)
    else:
        symbols = per_value(rows.text(columns["symbol"]).str.strip())
    values = {}
    for name in ("price", "size", "volume", "bid", "ask", "bid_size", "ask_size", "oi"):
        if name in columns:
            number = rows.number(columns[name])
            values[name] = number / spec.price_scale if name in PRICES else number
    if "side" in columns:
        values["side"] = _sides(rows, columns["side"], spec.side_values)
    seq = None
    if "seq" in columns:
        numbers = rows.number(columns["seq"], required=True)
        rows.bad(
            rows.problems.ok & ((numbers < 0) | (numbers != np.floor(numbers))),
            lambda w: [
                f"{columns['seq']}={numbers[i]!r} is not a sequence number (an integer >= 0)" for i in w
            ],
        )
        seq = np.where(rows.problems.ok, numbers, -1).astype(np.int64)
    return Candidates(rows.rows, rows.raw, rows.problems, symbols, ts, seq, values)


def _sides(rows: Rows, column: str, values: dict[str, float] | None) -> np.ndarray:
    """+1/-1/0 from the side column (NaN: the tick rule decides); a value the mapping does not know is
    unparseable, a blank cell leaves the side to the tick rule."""
    text = rows.text(column).str.strip()
    if values is None:
        values = {"1": 1.0, "-1": -1.0, "0": 0.0, "1.0": 1.0, "-1.0": -1.0, "0.0": 0.0}
    side = per_value(text, lambda v: values.get(v, np.nan), dtype=np.float64)
    unknown = rows.problems.ok & (text != "").to_numpy() & ~text.isin(list(values)).to_numpy()
    known = list(values)
    rows.bad(
        unknown, lambda w: [f"{column}={text.iloc[i]!r} is not a side the mapping knows ({known})" for i in w]
    )
    return side
