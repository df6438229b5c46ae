"""Shared fixtures: a real PostgreSQL server for the session and a fresh tick store of each backend."""

from __future__ import annotations

import shutil
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

with warnings.catch_warnings():
    # platformdirs warns at import when XDG_RUNTIME_DIR is unset (containers, CI); pgserver copes
    warnings.simplefilter("ignore")
    import pgserver

from feature_store.store import ParquetTickStore, PostgresTickStore, TickStore


@pytest.fixture(scope="session", autouse=True)
def isolated_dagster_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A Dagster instance, tick store and MLflow registry of the test session's own (of each xdist worker's
    own under `make test`): what the tests run never touches the project's dagster_home, .tickml or mlruns,
    which `make` exports, nor another worker's."""
    home = tmp_path_factory.mktemp("dagster_home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAGSTER_HOME", str(home))
        patch.setenv("TICKML_HOME", str(tmp_path_factory.mktemp("tickml_home")))
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path_factory.mktemp('mlruns') / 'mlflow.db'}")
        yield home


@pytest.fixture(scope="session")
def pg_server() -> Iterator[pgserver.PostgresServer]:
    """A real PostgreSQL server (the pgserver wheel's own binaries), started once per session.

    Never skipped: when the server cannot start, every test that needs it errors.
    """
    # not pytest's tmp_path: pgserver opens the directory's parents to its own system user when root
    pgdata = Path(tempfile.mkdtemp(prefix="tickml-pg-")) / "pgdata"
    server = pgserver.get_server(pgdata, cleanup_mode="stop")
    try:
        yield server
    finally:
        server.cleanup()
        shutil.rmtree(pgdata.parent, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_url(pg_server: pgserver.PostgresServer) -> str:
    """postgresql:// URL of the session server's maintenance database."""
    return pg_server.get_uri()


@pytest.fixture
def pg_db_url(pg_server: pgserver.PostgresServer, pg_url: str) -> Iterator[str]:
    """postgresql:// URL of a fresh, empty database on the session server, dropped after the test."""
    name = f"t_{uuid.uuid4().hex}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield pg_server.get_uri(name)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["parquet", "postgres"])
def tick_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TickStore]:
    """A fresh, empty tick store of each backend (PostgreSQL only starts when a postgres case runs)."""
    if request.param == "parquet":
        store: TickStore = ParquetTickStore(tmp_path / "tickml")
    else:
        store = PostgresTickStore(request.getfixturevalue("pg_db_url"))
    yield store
    store.close()
