"""Format adapters: every source row becomes a canonical tick or a quarantine row with a reason.
`open_source` streams a file as candidate chunks, `read_source`/`read_<format>` read one whole (docs/ingest.md)."""

from pipelines.sources.mapping import Mapping, MappingError
from pipelines.sources.registry import (
    FORMATS,
    AdapterResult,
    open_source,
    read_b3,
    read_dhan,
    read_kite,
    read_lobster,
    read_source,
)

__all__ = [
    "FORMATS",
    "AdapterResult",
    "Mapping",
    "MappingError",
    "open_source",
    "read_b3",
    "read_dhan",
    "read_kite",
    "read_lobster",
    "read_source",
]
