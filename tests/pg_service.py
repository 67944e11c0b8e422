"""The PostgreSQL server the docs promise at 127.0.0.1:5432: a fresh database per test.

Where the docs promise the service, its absence is a failure, not a skip: a skipped test would
pass a suite that never ran what it claims."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

HOST, PORT = "127.0.0.1", 5432
HOW_TO_START = ("PostgreSQL must listen on 127.0.0.1:5432 with trust authentication for user "
                "postgres (docs/cluster.md); start it, e.g. `sudo service postgresql start` or "
                "`docker run -d -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust postgres:15`")


def _admin():
    try:
        import psycopg2
    except ModuleNotFoundError:
        pytest.fail("psycopg2 is missing: pip install -e '.[dev]' (psycopg2-binary)")
    try:
        admin = psycopg2.connect(host=HOST, port=PORT, user="postgres", dbname="postgres",
                                 connect_timeout=5)
    except psycopg2.OperationalError as exc:
        pytest.fail(f"{HOW_TO_START} ({str(exc).strip().splitlines()[0]})")
    admin.autocommit = True
    return admin


@contextmanager
def fresh_database(prefix: str = "t") -> Iterator[str]:
    """The name of a new, empty database, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = _admin()
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
