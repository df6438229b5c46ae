"""Append-friendly Parquet partitions: sorted, disjoint part files in one directory and a manifest naming them.

A directory holds one partition of a table (a symbol's trading day of ticks, a source's quarantined rows)
as part files, each sorted by the table's key and covering a key range no other part overlaps, and
`_parts.json`, the manifest listing the current parts in key order with their row counts and first and
last keys. Writers change a directory only under its lock and publish by replacing the manifest
atomically, so a reader that loads the manifest sees one whole state: no half-written part, no key twice.

- An append (every new key after the last stored one: a live feed, the next chunk of a file, a fresh
  day) reads nothing but the manifest. Its rows become a new part, or, when the trailing parts are
  together no larger than it (a binary counter: sizes at least double to the left), one part with them,
  their row groups copied through one at a time. A partition written in n appends has O(log n) parts and
  each row is rewritten O(log n) times, not n times; parts of PART_ROWS rows or more are left alone.
- Any other write reads only the parts whose key range it overlaps, keeps the stored row of a repeated
  key, and writes them with its new rows as one part.

A replaced part is deleted only after the manifest that drops it is published; a reader still holding
the old manifest then finds a file gone and starts again from the new manifest (`PartTable.read`).
"""

from __future__ import annotations

import fcntl
import json
import os
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

MANIFEST = "_parts.json"
# small enough that a poll for the newest ticks reads one group, large enough to compress well
ROW_GROUP = 65_536
# a part this large is never compacted again: a huge day is a few large parts, each row rewritten a few times
PART_ROWS = 16 * ROW_GROUP
# partitions staged at once, in parallel; Parquet encoding, compression and fsync release the GIL
WRITER_THREADS = min(4, os.cpu_count() or 1)
# partitions whose locks one write holds at once (each lock is an open file)
LOCKS_HELD = 64
_RETRIES = 100  # a reader restarts when a compaction deletes a part it was about to open

Key = tuple  # a row's key values: (ts epoch ns, seq) for ticks, (source, row) for quarantine


@dataclass(frozen=True)
class Part:
    """One part file of a partition: its name, row count and first and last key (inclusive)."""

    file: str
    rows: int
    first: Key
    last: Key


@dataclass
class Staged:
    """A write prepared under its partition's lock: its part and next manifest written and flushed, but
    not visible to readers until `publish`.

    `parts` is the partition's manifest after the write (None when nothing changes), `written` the files
    the write created, `replaced` the parts it drops, `new_rows` how many rows were not stored before.
    """

    folder: Path
    parts: list[Part] | None = None
    written: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    new_rows: int = 0

    def write_manifest(self) -> None:
        manifest = {"parts": [[p.file, p.rows, list(p.first), list(p.last)] for p in self.parts or []]}
        tmp = self.folder / f".{MANIFEST}.{uuid.uuid4().hex}.tmp"
        self.written.append(tmp.name)
        tmp.write_text(json.dumps(manifest))
        _fsync(tmp)

    def publish(self) -> None:
        """Make the write visible by renaming its manifest into place, then delete what it replaced.

        Durable once `flush` has run; a reader sees the manifest before or after, never a part of it.
        """
        if self.parts is None:
            return
        os.replace(self.folder / self.written[-1], self.folder / MANIFEST)
        listed = {p.file for p in self.parts}
        for name in os.listdir(self.folder):
            # what this write replaced, and leftovers of a writer that died before publishing
            if name not in listed and (
                name in self.replaced or name.startswith("part-") or name.endswith(".tmp")
            ):
                (self.folder / name).unlink(missing_ok=True)

    def flush(self) -> None:
        """Make the published renames durable (the part's and the manifest's: a journaling file system
        commits renames in order, so a durable manifest never names a part that is not)."""
        if self.parts is not None:
            _fsync(self.folder)

    def discard(self) -> None:
        """Delete the files of a write that will not be published."""
        for name in self.written:
            (self.folder / name).unlink(missing_ok=True)


class PartTable:
    """A table stored as part directories: its Arrow schema, key columns and Parquet encoding.

    `legacy`: the name of the single file a partition held before manifests existed; a directory holding
    it and no manifest reads as one part, and the next write there adopts it.
    """

    def __init__(self, schema: pa.Schema, key: tuple[str, str], legacy: str | None = None) -> None:
        self.schema = schema
        self.key = key
        self.legacy = legacy
        # zstd at level 1 writes about as fast as the default snappy and a third smaller; dictionaries only
        # where values repeat (symbols, sources, side, labels): on prices they cost time and are dropped
        self._dictionary = [f.name for f in schema if f.type == pa.string() or f.name == "side"]

    # reading -------------------------------------------------------------------------------------------

    def parts(self, folder: Path) -> list[Part]:
        """The published parts of the partition in `folder`, in key order; [] when it holds none."""
        try:
            manifest = json.loads((folder / MANIFEST).read_text())
        except FileNotFoundError:
            return self._legacy_parts(folder)
        return [Part(f, rows, tuple(first), tuple(last)) for f, rows, first, last in manifest["parts"]]

    def has_rows(self, folder: Path) -> bool:
        return (folder / MANIFEST).exists() or (self.legacy is not None and (folder / self.legacy).exists())

    def rows(self, folder: Path) -> int:
        """Rows stored in the partition, from the manifest alone."""
        return sum(p.rows for p in self.parts(folder))

    def read(
        self,
        folder: Path,
        where: pc.Expression | None = None,
        *,
        keep: Callable[[Part], bool] | None = None,
        columns: list[str] | None = None,
        limit: int | None = None,
    ) -> pa.Table:
        """Rows of the partition matching `where` (pushed down to row groups), in key order.

        `keep` skips parts by their key range before any is opened; `limit` stops after that many rows.
        """
        for attempt in range(1, _RETRIES + 1):
            try:
                return self._read_once(folder, where, keep, columns, limit)
            except FileNotFoundError:
                if attempt == _RETRIES:
                    raise
                # a compaction published a new manifest and deleted a part of the one just read: again
        raise AssertionError("unreachable")  # the last attempt returned or raised

    def _read_once(
        self,
        folder: Path,
        where: pc.Expression | None,
        keep: Callable[[Part], bool] | None,
        columns: list[str] | None,
        limit: int | None,
    ) -> pa.Table:
        empty = self.schema if columns is None else pa.schema([self.schema.field(c) for c in columns])
        tables, remaining = [empty.empty_table()], limit
        for part in self.parts(folder):
            if remaining == 0:
                break
            if keep is not None and not keep(part):
                continue
            table = pq.read_table(folder / part.file, schema=self.schema, columns=columns, filters=where)
            if remaining is not None:
                table = table.slice(0, remaining)
                remaining -= table.num_rows
            tables.append(table)
        return pa.concat_tables(tables)

    def _legacy_parts(self, folder: Path) -> list[Part]:
        if self.legacy is None or not (folder / self.legacy).exists():
            return []
        handle = pq.ParquetFile(folder / self.legacy)
        meta = handle.metadata
        if meta.num_rows == 0:
            return []
        first = handle.read_row_group(0, columns=list(self.key))
        last = handle.read_row_group(meta.num_row_groups - 1, columns=list(self.key))
        return [Part(self.legacy, meta.num_rows, self._key_at(first, 0), self._key_at(last, -1))]

    # writing -------------------------------------------------------------------------------------------

    def stage(self, folder: Path, incoming: pa.Table) -> Staged:
        """Write `incoming` (sorted by key, keys unique) as part files; the caller holds the folder's lock.

        Nothing is visible until the returned `Staged` is published.
        """
        staged = Staged(folder)
        if incoming.num_rows == 0:
            return staged
        parts = self.parts(folder)
        first, last = self._key_at(incoming, 0), self._key_at(incoming, -1)
        if not parts or first > parts[-1].last:
            lo = hi = len(parts)
            lo -= _tail_to_compact(parts, incoming.num_rows)
            sources = [*(self._batches(folder, p) for p in parts[lo:hi]), incoming.to_batches()]
            staged.new_rows = incoming.num_rows
        else:
            # the parts this write overlaps are consecutive: parts are disjoint and in key order
            lo = next(i for i, p in enumerate(parts) if p.last >= first)
            hi = next((i for i, p in enumerate(parts) if p.first > last), len(parts))
            fresh = self._fresh(folder, parts[lo:hi], incoming)
            if fresh.num_rows == 0:
                return staged
            stored = [self._read_part(folder, p) for p in parts[lo:hi]]
            merged = pa.concat_tables([*stored, fresh]).sort_by([(c, "ascending") for c in self.key])
            sources = [merged.to_batches()]
            staged.new_rows = fresh.num_rows
        part = self._write_part(folder, sources)
        staged.parts = [*parts[:lo], part, *parts[hi:]]
        staged.written, staged.replaced = [part.file], [p.file for p in parts[lo:hi]]
        staged.write_manifest()
        return staged

    def rewrite(
        self,
        folder: Path,
        columns: list[str],
        change: Callable[[pa.Table], dict[str, pa.Array] | None],
    ) -> int:
        """Replace columns of the partition's rows in place; the caller holds the folder's lock.

        `change` is called with each part's `columns`, in key order, and returns the part's new values of
        some columns (same rows, same order; keys untouched), or None to keep the part. Changed parts are
        written anew and published in one manifest: a reader sees every change or none. Returns how many
        parts changed.
        """
        parts = self.parts(folder)
        staged = Staged(folder, parts=[])
        try:
            for part in parts:
                new_values = change(self._read_part(folder, part, columns))
                if new_values is None:
                    staged.parts.append(part)
                    continue
                table = self._read_part(folder, part)
                for name, values in new_values.items():
                    table = table.set_column(table.schema.get_field_index(name), name, values)
                written = self._write_part(folder, [table.to_batches()])
                staged.parts.append(written)
                staged.written.append(written.file)
                staged.replaced.append(part.file)
            if not staged.replaced:
                return 0
            staged.write_manifest()
        except BaseException:
            staged.discard()
            raise
        staged.publish()
        staged.flush()
        return len(staged.replaced)

    def _fresh(self, folder: Path, run: list[Part], incoming: pa.Table) -> pa.Table:
        """The rows of `incoming` whose key is in none of the parts of `run`, in their order."""
        if not run:
            return incoming
        stored = pa.concat_tables([self._read_part(folder, p, list(self.key)) for p in run])
        position = pa.table({**{c: incoming[c] for c in self.key}, "_position": np.arange(incoming.num_rows)})
        new = position.join(stored, keys=list(self.key), join_type="left anti")["_position"]
        return incoming.take(np.sort(new.to_numpy()))  # a hash join keeps no order

    def _read_part(self, folder: Path, part: Part, columns: list[str] | None = None) -> pa.Table:
        return pq.read_table(folder / part.file, schema=self.schema, columns=columns)

    def _batches(self, folder: Path, part: Part) -> Iterator[pa.RecordBatch]:
        # one row group at a time: compacting never holds a part in memory
        return pq.ParquetFile(folder / part.file).iter_batches(batch_size=ROW_GROUP)

    def _write_part(self, folder: Path, sources: Iterable[Iterable[pa.RecordBatch]]) -> Part:
        """Write the batches of `sources` (concatenated, in key order) as a new part, durably renamed in."""
        tmp = folder / f".part-{uuid.uuid4().hex}.tmp"
        rows, first, last = 0, None, None
        try:
            with pq.ParquetWriter(
                tmp, self.schema, compression="zstd", compression_level=1, use_dictionary=self._dictionary
            ) as writer:
                for table in _row_groups(batch for source in sources for batch in source):
                    table = table.cast(self.schema)  # a legacy file's schema may differ in metadata only
                    writer.write_table(table, row_group_size=ROW_GROUP)
                    first = first if first is not None else self._key_at(table, 0)
                    last, rows = self._key_at(table, -1), rows + table.num_rows
            _fsync(tmp)
            name = (
                f"part-{'-'.join(str(v) for v in first if isinstance(v, int))}-{uuid.uuid4().hex[:8]}.parquet"
            )
            os.replace(tmp, folder / name)
        finally:
            tmp.unlink(missing_ok=True)
        return Part(name, rows, first, last)

    def _key_at(self, table: pa.Table, row: int) -> Key:
        row %= table.num_rows
        values = []
        for column in self.key:
            scalar = table[column][row]
            values.append(scalar.value if pa.types.is_timestamp(scalar.type) else scalar.as_py())
        return tuple(values)


def _tail_to_compact(parts: list[Part], incoming_rows: int) -> int:
    """How many trailing parts to rewrite with an append of `incoming_rows`: those together no larger."""
    tail, total = 0, incoming_rows
    while tail < len(parts) and (part := parts[-1 - tail]).rows < PART_ROWS and part.rows <= total:
        tail, total = tail + 1, total + part.rows
    return tail


def _row_groups(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.Table]:
    """Tables of ROW_GROUP rows (the last may be shorter) from batches of any sizes, zero-copy."""
    pending: list[pa.RecordBatch] = []
    buffered = 0
    for batch in batches:
        pending.append(batch)
        buffered += batch.num_rows
        while buffered >= ROW_GROUP:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, ROW_GROUP)
            rest = table.slice(ROW_GROUP)
            pending, buffered = rest.to_batches(), rest.num_rows
    if buffered:
        yield pa.Table.from_batches(pending)


# many partitions at once ---------------------------------------------------------------------------------


def write_partitions(table: PartTable, jobs: list[tuple[Path, pa.Table]]) -> int:
    """Write each (folder, rows) job and publish them in the order given; return how many rows were new.

    Jobs are staged in parallel but published one after another in order, so a reader that sees a job's
    rows sees those of every job before it: given a symbol's days in ascending order, a stream following
    the symbol never moves past a day whose new ticks are not visible yet. The first failure stops the
    write: later jobs are not published. Locks are taken in path order, LOCKS_HELD at a time, so writers
    of overlapping partitions wait for each other and never deadlock.
    """
    new = 0
    for start in range(0, len(jobs), LOCKS_HELD):
        group = jobs[start : start + LOCKS_HELD]
        with ExitStack() as locks:
            for folder in sorted({folder for folder, _ in group}, key=str):
                locks.enter_context(locked(folder))
            new += _stage_and_publish(table, group)
    return new


def _stage_and_publish(table: PartTable, group: list[tuple[Path, pa.Table]]) -> int:
    if len(group) == 1:
        staged = table.stage(*group[0])
        staged.publish()
        staged.flush()
        return staged.new_rows
    with ThreadPoolExecutor(max_workers=WRITER_THREADS) as pool:
        futures = [pool.submit(table.stage, folder, rows) for folder, rows in group]
        published: list[Staged] = []
        try:
            for future in futures:
                staged = future.result()  # raises a stage's failure: nothing after it is published
                published.append(staged)
                staged.publish()  # renames only: the visible order is the order of the jobs
        finally:
            for future in futures[len(published) :]:
                if future.exception() is None:
                    future.result().discard()
        list(pool.map(Staged.flush, published))
    return sum(staged.new_rows for staged in published)


# files -------------------------------------------------------------------------------------------------


@contextmanager
def locked(folder: Path) -> Iterator[None]:
    """Exclusive advisory lock on the partition in `folder` across processes (created when missing)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def replace_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """Write via `write(tmp)` to a temp file beside `path`, fsync it, rename it over `path`, fsync the folder."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        write(tmp)
        _fsync(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    # the rename itself is durable only once the directory entry is flushed
    _fsync(path.parent)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
