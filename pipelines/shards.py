"""Symbols split across service replicas: replica i of N owns the symbols whose stable hash is i mod N.

The hash is CRC-32 of the symbol's UTF-8 name, the same in every process and on every machine (Python's
`hash` of a string is salted per process), so the stream and each replica agree without talking.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

_SHARD = re.compile(r"(\d+)/(\d+)")


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count` (0 <= index < count)."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            raise ValueError(f"shard {self.index}/{self.count}: need 0 <= i < N")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """`"i/N"`, e.g. `"0/2"`; raises ValueError saying the form."""
        match = _SHARD.fullmatch(text.strip())
        if match is None:
            raise ValueError(f"shard {text!r}: expected i/N, e.g. 0/2")
        return cls(int(match[1]), int(match[2]))

    def owns(self, symbol: str) -> bool:
        return zlib.crc32(symbol.encode()) % self.count == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"
