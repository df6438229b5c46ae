"""Readers that turn each real sample file format into canonical ticks, one module per format.

Each `read_<format>(path)` attaches a `ReadReport` (rows read, skipped by reason): `read_report(frame)`.
"""

from pipelines.sources.b3 import read_b3
from pipelines.sources.common import ReadReport, read_report
from pipelines.sources.dhan import read_dhan
from pipelines.sources.kite import read_kite
from pipelines.sources.lobster import read_lobster

__all__ = ["ReadReport", "read_b3", "read_dhan", "read_kite", "read_lobster", "read_report"]
