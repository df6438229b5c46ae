"""The column-mapping file of the `mapped` format: which source column is which tick field (YAML).
Documented with a worked example in docs/ingest.md; every error names the bad key."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from feature_store.instruments import venue_names

TOP_KEYS = ("venue", "timezone", "price_scale", "file", "columns")
FILE_KEYS = ("format", "delimiter", "header", "names")
FIELDS = (
    "ts",
    "symbol",
    "price",
    "size",
    "volume",
    "side",
    "bid",
    "ask",
    "bid_size",
    "ask_size",
    "oi",
    "seq",
)
NUMERIC_FIELDS = ("price", "size", "volume", "bid", "ask", "bid_size", "ask_size", "oi", "seq")
FIELD_KEYS = {"ts": ("column", "format", "unit"), "symbol": ("column", "value"), "side": ("column", "values")}
UNITS = ("s", "ms", "us", "ns")
SIDES = {1: 1.0, -1: -1.0, 0: 0.0, "tick_rule": float("nan")}


class MappingError(ValueError):
    """A mapping file that cannot be used; the message names the file and the bad key."""


@dataclass(frozen=True)
class Mapping:
    """A validated column mapping: canonical field -> source column, and how to read the values.

    `ts_format` is "ISO8601", "epoch" (with `ts_unit`) or a strftime pattern; naive timestamps are wall
    times in `timezone`. `price_scale` divides price, bid and ask. `side_values` maps source text to
    +1/-1/0 (NaN: tick rule). Without `seq` the row number is the seq.
    """

    columns: dict[str, str]
    ts_format: str = "ISO8601"
    ts_unit: str | None = None
    symbol_value: str | None = None
    side_values: dict[str, float] | None = None
    venue: str | None = None
    timezone: str = "UTC"
    price_scale: float = 1.0
    format: str | None = None
    delimiter: str = ","
    header: bool = True
    names: tuple[str, ...] | None = None
    origin: str = field(default="mapping", compare=False)

    @classmethod
    def load(cls, path: str | Path) -> Mapping:
        """Read and validate a mapping file; raises MappingError naming the bad key."""
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise MappingError(f"{path}: not valid YAML: {exc}") from exc
        return cls.from_dict(data, origin=str(path))

    @classmethod
    def from_dict(cls, data: object, origin: str = "mapping") -> Mapping:
        """Validate a parsed mapping; raises MappingError naming the bad key."""

        def fail(key: str, problem: str) -> MappingError:
            return MappingError(f"{origin}: {key}: {problem}")

        if not isinstance(data, dict):
            raise fail("(top level)", "must be a mapping with a 'columns' key")
        _known_keys(data, TOP_KEYS, "", fail)
        options: dict = {"origin": origin}
        if data.get("venue") is not None:
            venue = str(data["venue"])
            if venue not in venue_names():
                raise fail("venue", f"{venue!r} is not a known venue; known: {venue_names()}")
            options["venue"] = venue
        if "timezone" in data:
            try:
                ZoneInfo(str(data["timezone"]))
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise fail("timezone", f"{data['timezone']!r} is not a known time zone") from exc
            options["timezone"] = str(data["timezone"])
        if "price_scale" in data:
            scale = data["price_scale"]
            if isinstance(scale, bool) or not isinstance(scale, int | float) or not scale > 0:
                raise fail("price_scale", f"must be a number > 0, got {scale!r}")
            options["price_scale"] = float(scale)
        options |= _file_options(data.get("file") or {}, fail)
        options |= _columns(data.get("columns"), fail)
        return cls(**options)

    def source_columns(self) -> list[str]:
        """The source columns the mapping reads, in field order, each once."""
        return list(dict.fromkeys(self.columns.values()))


def _known_keys(data: dict, allowed: tuple[str, ...], prefix: str, fail) -> None:
    for key in data:
        if key not in allowed:
            raise fail(f"{prefix}{key}", f"unknown key; expected one of {', '.join(allowed)}")


def _file_options(spec: object, fail) -> dict:
    if not isinstance(spec, dict):
        raise fail("file", "must be a mapping (format, delimiter, header, names)")
    _known_keys(spec, FILE_KEYS, "file.", fail)
    options: dict = {}
    if "format" in spec:
        if spec["format"] not in ("csv", "parquet"):
            raise fail("file.format", f"must be csv or parquet, got {spec['format']!r}")
        options["format"] = spec["format"]
    if "delimiter" in spec:
        if not isinstance(spec["delimiter"], str) or len(spec["delimiter"]) != 1:
            raise fail("file.delimiter", f"must be one character, got {spec['delimiter']!r}")
        options["delimiter"] = spec["delimiter"]
    if "header" in spec:
        if not isinstance(spec["header"], bool):
            raise fail("file.header", f"must be true or false, got {spec['header']!r}")
        options["header"] = spec["header"]
    if "names" in spec:
        names = spec["names"]
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
            raise fail("file.names", "must be a list of column names")
        options["names"] = tuple(names)
    if options.get("header") is False and "names" not in options:
        raise fail("file.names", "required when file.header is false")
    return options


def _columns(spec: object, fail) -> dict:
    if not isinstance(spec, dict) or not spec:
        raise fail("columns", "required: a mapping of tick field to source column")
    _known_keys(spec, FIELDS, "columns.", fail)
    for required in ("ts", "symbol", "price"):
        if required not in spec:
            raise fail(f"columns.{required}", "missing (required)")
    if "size" not in spec and "volume" not in spec:
        raise fail("columns.size", "missing: map size, volume (cumulative), or both")
    columns: dict[str, str] = {}
    options: dict = {}
    for name, value in spec.items():
        key = f"columns.{name}"
        if isinstance(value, str) and value:
            value = {"column": value}
        if not isinstance(value, dict):
            raise fail(key, f"must be a column name or a mapping, got {value!r}")
        _known_keys(value, FIELD_KEYS.get(name, ("column",)), f"{key}.", fail)
        if name == "symbol" and "value" in value:
            if "column" in value or not isinstance(value["value"], str) or not value["value"]:
                raise fail(key, "give either column (a source column) or value (one symbol for every row)")
            options["symbol_value"] = value["value"]
            continue
        column = value.get("column")
        if not isinstance(column, str) or not column:
            raise fail(f"{key}.column", f"must name a source column, got {column!r}")
        columns[name] = column
        if name == "ts":
            options |= _ts_options(value, key, fail)
        if name == "side" and "values" in value:
            options["side_values"] = _side_values(value["values"], f"{key}.values", fail)
    return {"columns": columns, **options}


def _ts_options(spec: dict, key: str, fail) -> dict:
    fmt = str(spec.get("format", "iso"))
    unit = spec.get("unit")
    if fmt == "epoch":
        if unit not in UNITS:
            raise fail(f"{key}.unit", f"must be one of {', '.join(UNITS)} for epoch timestamps, got {unit!r}")
        return {"ts_format": "epoch", "ts_unit": unit}
    if unit is not None:
        raise fail(f"{key}.unit", "only applies to format: epoch")
    if fmt == "iso":
        return {"ts_format": "ISO8601"}
    if "%" not in fmt:
        raise fail(
            f"{key}.format",
            f"must be iso, epoch or a strftime pattern such as %Y-%m-%d %H:%M:%S, got {fmt!r}",
        )
    return {"ts_format": fmt}


def _side_values(spec: object, key: str, fail) -> dict[str, float]:
    if not isinstance(spec, dict) or not spec:
        raise fail(key, "must map source values to 1 (buy), -1 (sell), 0 (none) or tick_rule")
    out = {}
    for source, side in spec.items():
        if isinstance(source, bool):  # YAML 1.1 reads unquoted y/n/yes/no/on/off as booleans
            raise fail(
                f"{key}.{source}", "quote source values such as 'Y' or 'N' (YAML reads them as true/false)"
            )
        if isinstance(side, bool) or side not in SIDES:
            raise fail(f"{key}.{source}", f"must be 1, -1, 0 or tick_rule, got {side!r}")
        out[str(source)] = SIDES[side]
    return out
