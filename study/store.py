"""Study progress in SQLite or PostgreSQL: profiles, cards, each profile's scheduling state, the
review log, and the profile's saved conversations.

By default one file, ``<data>/study.sqlite3``, in a data folder outside the index (default
``./data``, or ``$STUDYRAG_DATA``); with ``--store`` / ``$STUDYRAG_STORE`` set to a
``postgresql://`` URL, a PostgreSQL database that any number of app replicas share
(:mod:`study.db` holds the little that differs between the two). Every write is one transaction
that shuts out other writers (SQLite ``BEGIN IMMEDIATE``, PostgreSQL an advisory lock), so two
sessions (threads, processes or replicas) of the same profile never lose a review: the second
waits for the first and then reads what it wrote.

The schema is versioned with ``PRAGMA user_version`` and numbered :data:`MIGRATIONS`. A file
that is not ours, is corrupt, or has a newer schema than this code knows is refused with a
:class:`StoreError` and left exactly as it was (no silent reset).

Adding tables later: append a :class:`Migration` with the next number to :data:`MIGRATIONS`;
never edit a released one. Opening an older file runs the missing steps in order, each in its
own transaction, and a test checks a version-1 file upgrades. Version 2 added the app's saved
conversations (one row per conversation, one per question-and-answer message).
"""

from __future__ import annotations

import functools
import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rag.context import DATA_ENV, STORE_ENV, hide_password, store_location
from rag.errors import RagError
from study import db, validate
from study.types import Card

DB_NAME = "study.sqlite3"
APPLICATION_ID = db.WRITE_LOCK  # "SRST": marks the file (or schema) as a StudyRAG study store
MAX_PROFILE_NAME = 80
MAX_TITLE = 120  # characters of a conversation title
# SQLite results that say the disk or the folder failed, not that the file is damaged
_CANNOT_USE = ("SQLITE_FULL", "SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_IOERR", "SQLITE_BUSY", "SQLITE_LOCKED",
               "SQLITE_PERM")


class StoreError(RagError):
    """The progress file cannot be used (corrupt, newer schema, not ours) and was left untouched,
    or a write to it failed (a full disk, a read-only folder) and changed nothing."""


class ProfileError(RagError, ValueError):
    """A profile name is unusable or unknown."""


@dataclass(frozen=True)
class Migration:
    """Step ``version`` of the schema: SQL run once, in a transaction, when a file is older."""

    version: int
    description: str
    sql: str


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "profiles, cards, per-profile card state, review log",
        """
        CREATE TABLE profiles (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            created REAL NOT NULL
        );
        CREATE TABLE cards (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            content TEXT NOT NULL,          -- Card.to_dict() as JSON
            content_hash TEXT NOT NULL,
            position INTEGER NOT NULL,      -- corpus order: new cards are introduced in it
            archived INTEGER NOT NULL DEFAULT 0,
            updated REAL NOT NULL
        );
        CREATE TABLE card_states (
            profile_id INTEGER NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,
            card_id TEXT NOT NULL REFERENCES cards(id),
            fsrs TEXT NOT NULL,             -- fsrs.Card.to_dict() as JSON
            due REAL NOT NULL,              -- epoch seconds, for the due queue
            reps INTEGER NOT NULL DEFAULT 0,
            lapses INTEGER NOT NULL DEFAULT 0,
            first_review REAL,
            last_review REAL,
            PRIMARY KEY (profile_id, card_id)
        );
        CREATE INDEX card_states_due ON card_states(profile_id, due);
        CREATE TABLE reviews (
            id INTEGER PRIMARY KEY,
            profile_id INTEGER NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,
            card_id TEXT NOT NULL REFERENCES cards(id),
            rating INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 4),
            reviewed_at REAL NOT NULL,
            duration_ms INTEGER,
            state_before INTEGER NOT NULL,  -- fsrs.State (0 = new)
            state_after INTEGER NOT NULL,
            due_after REAL NOT NULL
        );
        CREATE INDEX reviews_profile_time ON reviews(profile_id, reviewed_at);
        """,
    ),
    Migration(
        2,
        "conversations and their messages, per profile",
        """
        CREATE TABLE conversations (
            id INTEGER PRIMARY KEY,
            profile_id INTEGER NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,
            title TEXT NOT NULL,
            created REAL NOT NULL,
            updated REAL NOT NULL
        );
        CREATE INDEX conversations_profile_updated ON conversations(profile_id, updated);
        CREATE TABLE messages (
            id INTEGER PRIMARY KEY,
            conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,      -- 0, 1, 2 … in the conversation
            content TEXT NOT NULL,          -- one question and its answer, as JSON
            created REAL NOT NULL,
            UNIQUE (conversation_id, position)
        );
        """,
    ),
)
SCHEMA_VERSION = MIGRATIONS[-1].version


def check_profile_name(name: str) -> str:
    """The name as stored (NFKC, spaces collapsed); invisible, bidi and control characters are
    refused (:func:`study.validate.profile_name`). Raises :class:`ProfileError`."""
    try:
        return validate.profile_name(name, MAX_PROFILE_NAME)
    except ValueError as e:
        raise ProfileError(str(e)) from None


@dataclass(frozen=True)
class Profile:
    id: int
    name: str


@dataclass(frozen=True)
class SyncReport:
    """What :meth:`Store.sync_cards` changed (card ids)."""

    added: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    archived: tuple[str, ...] = ()
    restored: tuple[str, ...] = ()


@dataclass(frozen=True)
class StoredCard:
    card: Card
    archived: bool
    position: int


class Store:
    """The study database. One connection per thread (safe to share between app sessions)."""

    def __init__(self, where: Path | str):
        """``where``: the SQLite file, or a ``postgresql://`` URL."""
        self.backend = db.backend_for(where)
        self.path = self.backend.path  # None for PostgreSQL
        self.where = self.backend.where  # for messages (no password)
        self._conns = db.Connections(self.backend)
        self._open_checked()

    @classmethod
    def open(cls, where: str | Path | None = None) -> Store:
        """Open (creating if needed) the store at ``where``: a ``postgresql://`` URL, or a data
        folder (its ``study.sqlite3``); by default :func:`rag.context.store_location`
        (``$STUDYRAG_STORE``, else the data folder)."""
        loc = str(where) if where is not None else store_location()
        if db.is_url(loc):
            return cls(loc)
        if "://" in loc:
            raise StoreError(f"progress store {hide_password(loc)!r}: give a postgresql:// URL or a data folder")
        folder = Path(loc)
        if folder.exists() and not folder.is_dir():
            raise StoreError(f"data folder {folder} is a file, not a folder")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create data folder {folder}: {e}") from None
        return cls(folder / DB_NAME)

    # --- connections and transactions -----------------------------------------------------

    def _open_checked(self) -> None:
        """Check the file or schema (read only), then set WAL and bring the schema up to date."""
        try:
            self.backend.check()
            conn = self.backend.connect()
        except db.CannotConnect as e:
            raise StoreError(str(e)) from None
        except db.DatabaseUnusable as e:
            raise StoreError(
                f"{e}; it was left untouched. Move it aside (or point {DATA_ENV} / --data elsewhere) to start a new one"
            ) from None
        except (OSError, *self.backend.errors) as e:  # a folder that cannot be written, a file that cannot be read
            raise self._cannot_open(e) from None
        try:
            version, app_id, has_tables = self.backend.inspect(conn)
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.where} has progress schema version {version}; this StudyRAG reads up to version "
                    f"{SCHEMA_VERSION}. Upgrade StudyRAG to use it (the file was left untouched)"
                )
            if has_tables and app_id != APPLICATION_ID:
                raise StoreError(
                    f"{self.where} is {self.backend.what} but not a StudyRAG progress file; it was left untouched. "
                    f"Point {DATA_ENV} / --data (or {STORE_ENV} / --store) elsewhere"
                )
            self.backend.prepare(conn)
            self._migrate(conn, version)
            self._verify(conn)
        except self.backend.errors as e:
            conn.close()
            if getattr(e, "sqlite_errorname", "").startswith(_CANNOT_USE):  # the disk or folder, not the file
                raise self._cannot_open(e) from None
            raise StoreError(
                f"{self.where} is not a readable progress file ({e}); it was left untouched. "
                "Restore a backup, or move it aside to start afresh"
            ) from None
        except BaseException:
            conn.close()
            raise
        self._conns.adopt(conn)

    def _cannot_open(self, e: BaseException) -> StoreError:
        why = e.strerror if isinstance(e, OSError) and e.strerror else " ".join(str(e).split())
        return StoreError(
            f"cannot open the progress store {self.where} ({why}); nothing was changed. Its folder must be readable "
            f"and writable, with room to write (or point {DATA_ENV} / --data elsewhere)"
        )

    def _migrate(self, conn: sqlite3.Connection, version: int) -> None:
        for m in MIGRATIONS:
            if m.version <= version:
                continue
            self.backend.begin_write(conn)
            try:
                # Re-read inside the lock: another process may have migrated meanwhile.
                if self.backend.version(conn) >= m.version:
                    conn.execute("ROLLBACK")
                    continue
                for stmt in self.backend.ddl(m.sql):
                    conn.execute(stmt)
                self.backend.set_version(conn, m.version, APPLICATION_ID)
                conn.execute("COMMIT")
            except BaseException:
                self._rollback(conn)
                raise

    def _verify(self, conn: sqlite3.Connection) -> None:
        """The tables, columns and JSON columns are what :data:`MIGRATIONS` make (one line if not).
        SQLite only: PostgreSQL's server enforces the declared column types itself."""
        if self.backend.name != "sqlite":
            return
        version = self.backend.version(conn)
        scripts = tuple(m.sql for m in MIGRATIONS if m.version <= version)
        problem = validate.structure_problem(conn, _expected_structure(scripts))
        if problem:
            raise StoreError(
                f"{self.where} is a StudyRAG progress file whose structure is damaged ({problem}); it was left "
                "untouched. Restore a backup, or move it aside to start afresh"
            )

    @property
    def conn(self) -> sqlite3.Connection:
        """This thread's connection (``execute(sql, params)`` with ``?`` placeholders on either engine)."""
        try:
            return self._conns.get()
        except db.CannotConnect as e:
            raise StoreError(str(e)) from None

    @contextmanager
    def write(self, *, profile_id: int | None = None) -> Iterator[sqlite3.Connection]:
        """A write transaction that shuts out other writers: read-modify-write inside it is atomic.
        With ``profile_id`` (it writes that profile's rows only), PostgreSQL lets other profiles'
        writes run beside it."""
        conn = self.conn
        try:
            self.backend.begin_write(conn, profile_id)
        except self.backend.errors as e:
            self._rollback(conn)
            raise self._not_saved(e) from None
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException as e:
            self._rollback(conn)
            if isinstance(e, self.backend.errors):  # a full disk, a read-only folder, a lost server
                raise self._not_saved(e) from None
            raise

    def _rollback(self, conn) -> None:
        """End the failed transaction, if the engine has not ended it itself (SQLite does on a full
        disk): a transaction left open would refuse every later write on this connection."""
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except self.backend.errors:
                pass

    def _not_saved(self, e: BaseException) -> StoreError:
        return StoreError(f"could not save to the progress store {self.where} ({' '.join(str(e).split())}); "
                          "nothing was changed")

    def owns(self, path: str | Path) -> bool:
        """Whether ``path`` is one of the store's own files (the SQLite file, its WAL, shared
        memory or journal): a file nothing else may write."""
        if self.path is None:
            return False
        mine = {Path(str(self.path) + s).resolve() for s in ("", "-wal", "-shm", "-journal")}
        return Path(path).resolve() in mine

    def close(self) -> None:
        self._conns.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        return self.backend.version(self.conn)

    # --- profiles ---------------------------------------------------------------------------

    def add_profile(self, name: str) -> Profile:
        """Create profile ``name`` (or return it if it exists)."""
        n = check_profile_name(name)
        with self.write() as c:
            same = same_name(c, n)
            if same is not None:  # a learner whose name looks the same is that learner
                return same
            c.execute("INSERT INTO profiles(name, created) VALUES (?, ?)", (n, time.time()))
            row = c.execute("SELECT id, name FROM profiles WHERE name = ?", (n,)).fetchone()
        return Profile(row["id"], row["name"])

    def profile(self, name: str) -> Profile:
        """The profile called ``name``; :class:`ProfileError` naming the known ones if there is none."""
        n = check_profile_name(name)
        row = same_name(self.conn, n)
        if row is None:
            known = [p.name for p in self.profiles()]
            raise ProfileError(
                f"no profile named {n!r}" + (f"; profiles: {', '.join(map(repr, known))}" if known else "")
            )
        return row

    def profiles(self) -> list[Profile]:
        return [Profile(r["id"], r["name"]) for r in self.conn.execute("SELECT id, name FROM profiles ORDER BY name")]

    # --- cards ------------------------------------------------------------------------------

    def sync_cards(self, cards: Iterable[Card]) -> SyncReport:
        """Make the stored deck match ``cards``: add new ones, refresh edited ones (progress kept),
        archive (never delete) those whose source is gone, restore archived ones that are back."""
        cards = list(cards)
        ids = [c.id for c in cards]
        if len(set(ids)) != len(ids):
            dup = sorted({i for i in ids if ids.count(i) > 1})
            raise ValueError(f"card ids must be unique; repeated: {dup[:5]}")
        added, updated, unchanged, archived, restored = [], [], [], [], []
        now = time.time()
        with self.write() as c:
            old = {
                r["id"]: (r["content_hash"], bool(r["archived"]))
                for r in c.execute("SELECT id, content_hash, archived FROM cards")
            }
            for pos, card in enumerate(cards):
                h = card.content_hash()
                content = json.dumps(card.to_dict(), ensure_ascii=False)
                if card.id not in old:
                    c.execute(
                        "INSERT INTO cards(id, kind, content, content_hash, position, archived, updated) VALUES (?,?,?,?,?,0,?)",
                        (card.id, card.kind, content, h, pos, now),
                    )
                    added.append(card.id)
                    continue
                was_hash, was_archived = old[card.id]
                changed = was_hash != h
                c.execute(
                    "UPDATE cards SET kind=?, content=?, content_hash=?, position=?, archived=0 WHERE id=?",
                    (card.kind, content, h, pos, card.id),
                )
                if changed or was_archived:
                    c.execute("UPDATE cards SET updated=? WHERE id=?", (now, card.id))
                (restored if was_archived else updated if changed else unchanged).append(card.id)
            keep = set(ids)
            gone = [i for i, (_, arch) in old.items() if not arch and i not in keep]
            c.executemany("UPDATE cards SET archived=1, updated=? WHERE id=?", [(now, i) for i in gone])
            archived.extend(gone)
        return SyncReport(tuple(added), tuple(updated), tuple(unchanged), tuple(archived), tuple(restored))

    def cards(self, *, include_archived: bool = False) -> list[StoredCard]:
        q = "SELECT content, archived, position FROM cards" + ("" if include_archived else " WHERE archived = 0")
        rows = self.conn.execute(q + " ORDER BY archived, position").fetchall()
        return [StoredCard(Card.from_dict(json.loads(r["content"])), bool(r["archived"]), r["position"]) for r in rows]

    def card(self, card_id: str, *, conn: sqlite3.Connection | None = None) -> StoredCard | None:
        """One card (``None``: not in the store). Pass ``conn`` inside :meth:`write`."""
        r = (conn or self.conn).execute("SELECT content, archived, position FROM cards WHERE id = ?", (card_id,)).fetchone()
        return (
            None
            if r is None
            else StoredCard(Card.from_dict(json.loads(r["content"])), bool(r["archived"]), r["position"])
        )

    # --- scheduling state and review log ------------------------------------------------------

    def state(self, profile_id: int, card_id: str, *, conn: sqlite3.Connection | None = None) -> CardState | None:
        """A profile's state of one card (``None``: never reviewed). Pass ``conn`` inside :meth:`write`."""
        r = (
            (conn or self.conn)
            .execute("SELECT * FROM card_states WHERE profile_id = ? AND card_id = ?", (profile_id, card_id))
            .fetchone()
        )
        return None if r is None else CardState.from_row(r)

    def states(self, profile_id: int) -> dict[str, CardState]:
        rows = self.conn.execute("SELECT * FROM card_states WHERE profile_id = ?", (profile_id,))
        return {r["card_id"]: CardState.from_row(r) for r in rows}

    def put_state(self, conn: sqlite3.Connection, profile_id: int, st: CardState) -> None:
        """Write a card state (call inside :meth:`write`)."""
        conn.execute(
            "INSERT INTO card_states(profile_id, card_id, fsrs, due, reps, lapses, first_review, last_review) "
            "VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (profile_id, card_id) DO UPDATE SET fsrs = excluded.fsrs, "
            "due = excluded.due, reps = excluded.reps, lapses = excluded.lapses, "
            "first_review = excluded.first_review, last_review = excluded.last_review",
            (profile_id, st.card_id, json.dumps(st.fsrs), st.due, st.reps, st.lapses, st.first_review, st.last_review),
        )

    def add_review(self, conn: sqlite3.Connection, profile_id: int, rv: Review) -> None:
        """Append to the review log (call inside :meth:`write`)."""
        conn.execute(
            "INSERT INTO reviews(profile_id, card_id, rating, reviewed_at, duration_ms, state_before, state_after, due_after) "
            "VALUES (?,?,?,?,?,?,?,?)",
            (
                profile_id,
                rv.card_id,
                rv.rating,
                rv.reviewed_at,
                rv.duration_ms,
                rv.state_before,
                rv.state_after,
                rv.due_after,
            ),
        )

    def reviews(self, profile_id: int, *, since: float | None = None, until: float | None = None) -> list[Review]:
        """The profile's reviews in time order, optionally within ``[since, until)`` (epoch seconds)."""
        q = "SELECT * FROM reviews WHERE profile_id = ? AND reviewed_at >= ? AND reviewed_at < ? ORDER BY reviewed_at, id"
        rows = self.conn.execute(q, (profile_id, -1e18 if since is None else since, 1e18 if until is None else until))
        return [Review.from_row(r) for r in rows]

    def review_keys(self, profile_id: int, *, conn: sqlite3.Connection | None = None) -> set[tuple[str, float, int]]:
        """``(card_id, reviewed_at, rating)`` of every review of the profile (to skip duplicates on import)."""
        rows = (conn or self.conn).execute(
            "SELECT card_id, reviewed_at, rating FROM reviews WHERE profile_id = ?", (profile_id,)
        )
        return {(r["card_id"], r["reviewed_at"], r["rating"]) for r in rows}

    def due_ids(self, profile_id: int, now: float, *, conn: sqlite3.Connection | None = None) -> list[str]:
        """Ids of the profile's live cards due at ``now``, most overdue first."""
        rows = (conn or self.conn).execute(
            "SELECT s.card_id FROM card_states s JOIN cards c ON c.id = s.card_id "
            "WHERE s.profile_id = ? AND c.archived = 0 AND s.due <= ? ORDER BY s.due, c.position",
            (profile_id, now),
        )
        return [r[0] for r in rows]

    def new_ids(self, profile_id: int, *, conn: sqlite3.Connection | None = None) -> list[str]:
        """Ids of live cards the profile has never reviewed, in corpus order."""
        rows = (conn or self.conn).execute(
            "SELECT c.id FROM cards c LEFT JOIN card_states s ON s.card_id = c.id AND s.profile_id = ? "
            "WHERE c.archived = 0 AND s.card_id IS NULL ORDER BY c.position",
            (profile_id,),
        )
        return [r[0] for r in rows]

    def next_due(self, profile_id: int, after: float) -> float | None:
        """The soonest due time after ``after`` among the profile's live cards."""
        return self.conn.execute(
            "SELECT min(s.due) FROM card_states s JOIN cards c ON c.id = s.card_id "
            "WHERE s.profile_id = ? AND c.archived = 0 AND s.due > ?",
            (profile_id, after),
        ).fetchone()[0]

    def introduced(self, profile_id: int, since: float, until: float) -> int:
        """How many cards the profile reviewed for the first time within ``[since, until)``."""
        return self.conn.execute(
            "SELECT count(*) FROM card_states WHERE profile_id = ? AND first_review >= ? AND first_review < ?",
            (profile_id, since, until),
        ).fetchone()[0]


@dataclass(frozen=True)
class CardState:
    """A profile's scheduling state of one card: the FSRS card (``fsrs.Card.to_dict()``) plus
    counters. Times are epoch seconds."""

    card_id: str
    fsrs: dict
    due: float
    reps: int = 0
    lapses: int = 0
    first_review: float | None = None
    last_review: float | None = None

    @classmethod
    def from_row(cls, r: sqlite3.Row) -> CardState:
        return cls(
            r["card_id"], json.loads(r["fsrs"]), r["due"], r["reps"], r["lapses"], r["first_review"], r["last_review"]
        )


@dataclass(frozen=True)
class Review:
    """One rated review. ``state_before`` 0 means the card was new."""

    card_id: str
    rating: int
    reviewed_at: float
    state_before: int
    state_after: int
    due_after: float
    duration_ms: int | None = None

    @classmethod
    def from_row(cls, r: sqlite3.Row) -> Review:
        return cls(
            r["card_id"],
            r["rating"],
            r["reviewed_at"],
            r["state_before"],
            r["state_after"],
            r["due_after"],
            r["duration_ms"],
        )


@functools.lru_cache(maxsize=4)
def _expected_structure(scripts: tuple[str, ...]) -> dict:
    return validate.expected_structure(list(scripts))


def same_name(conn: sqlite3.Connection, name: str) -> Profile | None:
    """The stored profile that displays as ``name`` (exactly it first; then by
    :func:`study.validate.display_key`, for names stored before the rule)."""
    row = conn.execute("SELECT id, name FROM profiles WHERE name = ?", (name,)).fetchone()
    if row is None:
        key = validate.display_key(name)
        rows = conn.execute("SELECT id, name FROM profiles ORDER BY id")
        row = next((r for r in rows if validate.display_key(r["name"]) == key), None)
    return None if row is None else Profile(row["id"], row["name"])

