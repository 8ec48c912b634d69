"""Where the study store lives and how it talks to it: a SQLite file (the default, no server) or a
PostgreSQL database by URL (``postgresql://user:password@host:5432/dbname``, psycopg 3).

The store's SQL is written once (in :mod:`study.store`), in the subset both engines speak: ``?``
placeholders, ``INSERT … ON CONFLICT``, ``RETURNING``. This module holds only what differs:

- opening (and refusing what is not ours: a file that is not SQLite, a schema with other tables);
- the placeholder style (PostgreSQL's ``%s``) and rows readable by name or position;
- the migrations' column types (``INTEGER PRIMARY KEY`` is an identity column, ``REAL`` a double);
- where the schema version is kept (SQLite ``PRAGMA user_version``; PostgreSQL a one-row table);
- how a write transaction shuts out other writers. SQLite: ``BEGIN IMMEDIATE`` (one writer at a
  time). PostgreSQL: ``BEGIN`` then transaction-scoped advisory locks, so a read-modify-write (a
  rating) waits for the one before it in any app replica and then reads what it wrote. A write
  for one profile takes the store lock shared and the profile's lock exclusive (learners' ratings
  commit side by side); any other write takes the store lock exclusive. Readers never wait.

Which one is :func:`rag.context.store_location`'s choice (``--store`` / ``$STUDYRAG_STORE``, else
the data folder); :meth:`study.store.Store.open` takes either.
"""

from __future__ import annotations

import functools
import os
import re
import sqlite3
import sys
import threading
from pathlib import Path

from rag.context import STORE_URL_SCHEMES, hide_password

BUSY_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 10
SCHEMA_TABLE = "studyrag_schema"  # PostgreSQL: (application_id, version), one row
_SQLITE_MAGIC = b"SQLite format 3\x00"


class DatabaseUnusable(Exception):
    """The database is not ours or not readable (the store turns this into a StoreError)."""


class CannotConnect(Exception):
    """The server cannot be reached or refuses us (the store turns this into a StoreError)."""


def errors() -> tuple[type[BaseException], ...]:
    """The engines' error classes, for ``except``: psycopg's once a PostgreSQL store has loaded it."""
    pg = sys.modules.get("psycopg")
    return (sqlite3.Error,) if pg is None else (sqlite3.Error, pg.Error)


def is_url(where: object) -> bool:
    return isinstance(where, str) and where.startswith(STORE_URL_SCHEMES)


def backend_for(where: str | Path) -> SQLite | Postgres:
    return Postgres(str(where)) if is_url(str(where)) else SQLite(Path(where))


def statements(sql: str) -> list[str]:
    """Split a migration script into statements (``sqlite3.complete_statement`` decides where)."""
    out, buf = [], ""
    for line in sql.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                out.append(buf.strip())
            buf = ""
    if buf.strip():
        out.append(buf.strip())
    return out


# --- SQLite -------------------------------------------------------------------------------------


class SQLite:
    """One file; WAL, full sync, foreign keys on."""

    name = "sqlite"
    what = "a SQLite database"
    errors: tuple[type[BaseException], ...] = (sqlite3.Error,)

    def __init__(self, path: Path):
        self.path = path
        self.where = str(path)

    def check(self) -> None:
        """Refuse a file that is not a SQLite database, before SQLite touches it."""
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return
        if size == 0:
            return
        with open(self.path, "rb") as f:
            head = f.read(len(_SQLITE_MAGIC))
        if head != _SQLITE_MAGIC:
            raise DatabaseUnusable(f"{self.path} is not a StudyRAG progress file (not a SQLite database)")

    def connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    def inspect(self, conn) -> tuple[int, int, bool]:
        """(schema version, application id, whether it holds any table), reading only."""
        from study.validate import integrity_problem

        problem = integrity_problem([r[0] for r in conn.execute("PRAGMA quick_check")])
        if problem:
            raise sqlite3.DatabaseError(problem)
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        has_tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] > 0
        return version, app_id, has_tables

    def prepare(self, conn) -> None:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")

    def begin_write(self, conn, profile_id: int | None = None) -> None:
        conn.execute("BEGIN IMMEDIATE")

    def version(self, conn) -> int:
        return conn.execute("PRAGMA user_version").fetchone()[0]

    def set_version(self, conn, version: int, application_id: int) -> None:
        conn.execute(f"PRAGMA application_id = {int(application_id)}")
        conn.execute(f"PRAGMA user_version = {int(version)}")

    def ddl(self, sql: str) -> list[str]:
        return statements(sql)

    def alive(self, conn) -> bool:
        return True


# --- PostgreSQL ---------------------------------------------------------------------------------


class Row(tuple):
    """A result row read by position or by column name, as ``sqlite3.Row`` is."""

    __slots__ = ()
    _names: dict[str, int] = {}

    def __getitem__(self, key):
        return tuple.__getitem__(self, self._names[key] if isinstance(key, str) else key)

    def keys(self) -> list[str]:
        return list(self._names)


def _row_factory(cursor):
    names = {d.name: i for i, d in enumerate(cursor.description or ())}
    cls = type("Row", (Row,), {"__slots__": (), "_names": names})
    return cls


@functools.lru_cache(maxsize=256)
def to_pyformat(sql: str) -> str:
    """``?`` placeholders as psycopg's ``%s`` (a literal ``%`` doubled). Our SQL has no ``?`` in strings."""
    return sql.replace("%", "%%").replace("?", "%s")


class PgConnection:
    """A psycopg connection that takes the store's SQL as sqlite3 does (``execute(sql, params)``)."""

    def __init__(self, raw):
        self.raw = raw

    def execute(self, sql: str, params=()):
        return self.raw.execute(to_pyformat(sql), tuple(params)) if params else self.raw.execute(sql)

    def executemany(self, sql: str, seq):
        cur = self.raw.cursor()
        cur.executemany(to_pyformat(sql), [tuple(p) for p in seq])
        return cur

    @property
    def in_transaction(self) -> bool:
        from psycopg.pq import TransactionStatus

        return self.raw.info.transaction_status != TransactionStatus.IDLE

    def close(self) -> None:
        self.raw.close()


class Postgres:
    """A database (and its ``search_path`` schema, e.g. ``?options=-csearch_path%3Dstudy``) on a server."""

    name = "postgresql"
    what = "a PostgreSQL schema with other tables"
    path = None

    def __init__(self, url: str):
        self.url = url
        self.where = hide_password(url)

    @property
    def errors(self) -> tuple[type[BaseException], ...]:
        return errors()

    def check(self) -> None:
        return None

    def connect(self) -> PgConnection:
        try:
            import psycopg
        except ImportError:
            raise CannotConnect("a postgresql:// store needs psycopg: pip install 'studyrag[postgres]'") from None
        try:
            raw = psycopg.connect(
                self.url, autocommit=True, row_factory=_row_factory, connect_timeout=CONNECT_TIMEOUT_S
            )
        except psycopg.Error as e:
            reason = " ".join(line.strip() for line in str(e).splitlines() if line.strip()) or "no reason given"
            raise CannotConnect(f"cannot connect to the progress database {self.where}: {reason}") from None
        return PgConnection(raw)

    def inspect(self, conn) -> tuple[int, int, bool]:
        n = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()"
        ).fetchone()[0]
        if not self._has_schema_table(conn):
            return 0, 0, n > 0
        row = conn.execute(f"SELECT version, application_id FROM {SCHEMA_TABLE}").fetchone()
        return (0, 0, True) if row is None else (row[0], row[1], True)

    def _has_schema_table(self, conn) -> bool:
        """Read from ``pg_catalog`` with this statement's snapshot, not by name lookup (``to_regclass``):
        a name lookup answers from the backend's catalog cache, which a wait on an advisory lock does
        not refresh, so a process that waited while another created the schema would still see
        none and run the migration a second time ("relation ... already exists")."""
        return conn.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = current_schema() AND tablename = ?)",
            (SCHEMA_TABLE,),
        ).fetchone()[0]

    def prepare(self, conn) -> None:
        return None

    def begin_write(self, conn, profile_id: int | None = None) -> None:
        conn.execute("BEGIN")
        if profile_id is None:
            conn.execute("SELECT pg_advisory_xact_lock(?)", (WRITE_LOCK,))
        else:  # store lock first, always: no lock-order deadlock
            conn.execute(
                "SELECT pg_advisory_xact_lock_shared(?), pg_advisory_xact_lock(?, ?)",
                (WRITE_LOCK, WRITE_LOCK, int(profile_id)),
            )

    def version(self, conn) -> int:
        if not self._has_schema_table(conn):
            return 0
        row = conn.execute(f"SELECT version FROM {SCHEMA_TABLE}").fetchone()
        return 0 if row is None else row[0]

    def set_version(self, conn, version: int, application_id: int) -> None:
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {SCHEMA_TABLE} (application_id INTEGER NOT NULL, version INTEGER NOT NULL)"
        )
        conn.execute(f"DELETE FROM {SCHEMA_TABLE}")
        conn.execute(f"INSERT INTO {SCHEMA_TABLE}(application_id, version) VALUES (?, ?)", (application_id, version))

    def ddl(self, sql: str) -> list[str]:
        """The migration's statements with PostgreSQL's types: a 64-bit float for ``REAL`` (SQLite's
        REAL is 8 bytes, PostgreSQL's 4) and an identity column for ``INTEGER PRIMARY KEY``."""
        sql = re.sub(r"\bINTEGER PRIMARY KEY\b", "INTEGER GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", sql)
        return statements(re.sub(r"\bREAL\b", "DOUBLE PRECISION", sql))

    def alive(self, conn) -> bool:
        return not conn.raw.closed and not conn.raw.broken


WRITE_LOCK = 0x53525354  # the advisory lock every write transaction takes (the store's application id)


# --- connections ----------------------------------------------------------------------------------


class Connections:
    """One connection per thread. A thread that has ended leaves its connection to the next new
    thread (Streamlit runs every rerun in a new thread: without this each rerun would open one more)."""

    def __init__(self, backend: SQLite | Postgres):
        self.backend = backend
        self._lock = threading.Lock()
        self._by_thread: dict[threading.Thread, object] = {}

    def adopt(self, conn) -> None:
        with self._lock:
            self._by_thread[threading.current_thread()] = conn

    def get(self):
        me = threading.current_thread()
        with self._lock:
            conn = self._by_thread.pop(me, None)
            if conn is not None and not self.backend.alive(conn):
                conn.close()  # lost (e.g. the server restarted): open a new one
                conn = None
            if conn is None:
                for t in [t for t in self._by_thread if not t.is_alive()]:
                    old = self._by_thread.pop(t)
                    if conn is None and self.backend.alive(old) and not old.in_transaction:
                        conn = old
                    else:
                        old.close()
        if conn is None:
            conn = self.backend.connect()
        with self._lock:
            self._by_thread[me] = conn
        return conn

    def close(self) -> None:
        with self._lock:
            conns, self._by_thread = list(self._by_thread.values()), {}
        for c in conns:
            c.close()
