"""Test helpers for streaming: a real HTTP gateway that fails on demand, a tick corrupted behind the store."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
from psycopg import sql

from feature_store.store import ParquetTickStore, PostgresTickStore, TickStore


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def corrupt_stored_tick(store: TickStore, symbol: str, seq: int, column: str, value: float) -> None:
    """Set one stored tick's `column` behind the store's validation: a row stored before ingest quarantined
    non-finite values, or by another writer."""
    if isinstance(store, PostgresTickStore):
        update = sql.SQL("UPDATE ticks SET {} = %s WHERE symbol = %s AND seq = %s").format(
            sql.Identifier(column)
        )
        with psycopg.connect(store.url, autocommit=True) as conn:
            assert conn.execute(update, [value, symbol, seq]).rowcount == 1
        return
    assert isinstance(store, ParquetTickStore)
    changed = 0
    for path in store.root.glob(f"ticks/symbol={symbol}/day=*/*.parquet"):  # same rows, same keys: in place
        table = pq.read_table(path)
        frame = table.to_pandas()
        rows = frame["seq"] == seq
        if rows.any():
            frame.loc[rows, column] = value
            pq.write_table(pa.Table.from_pandas(frame, schema=table.schema, preserve_index=False), path)
            changed += int(rows.sum())
    assert changed == 1


class Gateway:
    """A real HTTP hop in front of the scoring service, as a load balancer would be: it forwards the first
    `forward` requests, then answers 503 as if the service behind it had gone away."""

    def __init__(self, upstream: str, forward: int) -> None:
        self.forwarded, lock = 0, threading.Lock()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with lock:
                    passing = gateway.forwarded < forward
                    gateway.forwarded += passing
                if passing:
                    answer = httpx.post(
                        upstream + self.path,
                        content=body,
                        headers={"content-type": "application/json"},
                        timeout=60,
                    )
                    status, payload = answer.status_code, answer.content
                else:
                    status, payload = 503, b'{"error": "no healthy upstream"}'
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:  # keep pytest's output for failures
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> Gateway:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
