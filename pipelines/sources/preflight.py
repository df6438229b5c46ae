"""Checks a source file as a whole before anything of it is stored, so a hostile file is refused cleanly."""

from __future__ import annotations

from pathlib import Path


class SourceFileError(ValueError):
    """A file that cannot be ingested at all; the message is one line naming the file and the reason."""


def check_file(path: str | Path, fmt: str) -> None:
    """Raise SourceFileError when `path` cannot be read as a source file of format `fmt`."""
    path = Path(path)
    if not path.exists():
        raise SourceFileError(f"{path}: no such file")
    if path.is_dir():
        raise SourceFileError(f"{path}: is a directory, not a {fmt} file")
