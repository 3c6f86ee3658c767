"""PostgreSQL administration for the benchmarks: the server they need, template databases, and
fresh copies of them for every measured run."""

import os
import re
import sys
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/postgres"
NAME_PATTERN = re.compile(r"^[a-z0-9_]{1,63}$")


class PostgresMissing(SystemExit):
    """Raised as a clean exit: the benchmarks cannot run without PostgreSQL."""


def server_url() -> str:
    """The server to use: BENCH_DATABASE_URL, else DATABASE_URL's server, else local trust auth."""
    url = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("DATABASE_URL") or DEFAULT_URL
    if not url.startswith(("postgres://", "postgresql://")):
        url = DEFAULT_URL
    return url


def database_url(name: str) -> str:
    parts = urlsplit(server_url())
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def maintenance_url() -> str:
    return database_url("postgres")


def connect(name: str | None = None, **kwargs) -> psycopg.Connection:
    return psycopg.connect(database_url(name) if name else maintenance_url(), **kwargs)


def require_server() -> str:
    """The server's version string, or a clean exit saying how to get one."""
    try:
        with connect(connect_timeout=5) as connection:
            return connection.execute("SHOW server_version").fetchone()[0]
    except psycopg.OperationalError as error:
        message = (f"make bench needs PostgreSQL, and none answers at {maintenance_url()}: {error}\n"
                   "Start it (pg_ctlcluster <version> main start) or set BENCH_DATABASE_URL="
                   "postgres://user@host:port/postgres.")
        print(message, file=sys.stderr)
        raise PostgresMissing(2) from error


def _checked(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise ValueError(f"Not a benchmark database name: {name!r}")
    return name


def exists(name: str) -> bool:
    with connect(autocommit=True) as connection:
        return connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None


def drop(name: str) -> None:
    with connect(autocommit=True) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(_checked(name))))


def create(name: str, template: str | None = None) -> None:
    """A new database, empty or a file copy of `template` (no session may be connected to it)."""
    drop(name)
    statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(_checked(name)))
    if template:
        statement += sql.SQL(" TEMPLATE {} STRATEGY FILE_COPY").format(sql.Identifier(_checked(template)))
    with connect(autocommit=True) as connection:
        connection.execute(statement)


def analyze(name: str) -> None:
    with connect(name, autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE")


def size(name: str) -> int:
    with connect(autocommit=True) as connection:
        return connection.execute("SELECT pg_database_size(%s)", [name]).fetchone()[0]


def settings_summary() -> dict:
    with connect() as connection:
        names = ("server_version", "shared_buffers", "work_mem", "max_wal_size", "synchronous_commit")
        return {name: connection.execute(sql.SQL("SHOW {}").format(sql.Identifier(name))).fetchone()[0]
                for name in names}
