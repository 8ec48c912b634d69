"""The study store: where it lives, its schema versions, refusing files it must not touch,
profiles with any name, re-syncing cards, and two writers at once.

Every test that is not about SQLite files runs twice: on a SQLite folder and on a fresh schema
of a real PostgreSQL server (``pg_url`` in conftest: one database per run)."""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from conftest import ROOT

from study import db, schedule
from study import store as store_mod
from study.conversations import Conversations
from study.store import DB_NAME, Migration, ProfileError, Store, StoreError
from study.types import Card, Source

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)


def card(i: int, text: str = "", doc: str = "d.md") -> Card:
    back = text or f"answer {i}"
    return Card(
        id=f"qa:{doc}#Q{i}",
        kind="qa",
        front={"en": f"question {i}?"},
        back={"en": back},
        sources={"en": Source(doc, 0, len(back), back, "en")},
        topic="t",
        qnum=i,
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def where(request, tmp_path):
    """Where a new store goes: a data folder, or a PostgreSQL URL (an empty schema)."""
    return tmp_path / "data" if request.param == "sqlite" else request.getfixturevalue("pg_url")


@pytest.fixture
def store(where):
    s = Store.open(where)
    yield s
    s.close()


# --- where and what --------------------------------------------------------------------------


def test_new_store_is_wal_and_versioned(tmp_path):
    store = Store.open(tmp_path / "data")
    assert store.path.name == DB_NAME
    assert store.schema_version == store_mod.SCHEMA_VERSION
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.conn.execute("PRAGMA application_id").fetchone()[0] == store_mod.APPLICATION_ID


def test_new_postgresql_store_is_versioned_with_8_byte_times(pg_url):
    with Store.open(pg_url) as s:
        assert s.path is None and s.schema_version == store_mod.SCHEMA_VERSION
        row = s.conn.execute(f"SELECT application_id, version FROM {db.SCHEMA_TABLE}").fetchone()
        assert (row["application_id"], row[1]) == (store_mod.APPLICATION_ID, store_mod.SCHEMA_VERSION)
        types = dict(
            s.conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = 'reviews'"
            ).fetchall()
        )
        assert types["reviewed_at"] == "double precision" and types["id"] == "integer"
        p = s.add_profile("ana")
        c = Conversations(s).add(p.id, "q")
        assert Conversations(s).get(p.id, c.id).created == c.created  # a REAL would keep ~7 digits of 1.7e9


def test_the_store_setting_chooses_the_engine(tmp_path, monkeypatch):
    from rag import context

    url = "postgresql://study:s3cret@db.example:5432/progress"
    monkeypatch.delenv(context.STORE_ENV, raising=False)
    monkeypatch.setenv("STUDYRAG_DATA", str(tmp_path / "d"))
    assert context.resolve().store == str(tmp_path / "d")
    assert context.resolve(data=tmp_path / "x").store == str(tmp_path / "x")
    assert context.resolve(store=url).store == url
    monkeypatch.setenv(context.STORE_ENV, url)
    ctx = context.resolve(data=tmp_path / "x")
    assert ctx.store == url and ctx.data == tmp_path / "x"
    assert ctx.store_label == "postgresql://study:***@db.example:5432/progress"
    with pytest.raises(StoreError, match="give a postgresql:// URL or a data folder"):
        Store.open("sqlite:///tmp/x.db")


def test_an_unreachable_server_is_one_clear_error_without_the_password():
    msg = r"cannot connect to the progress database postgresql://u:\*\*\*@127\.0\.0\.1:1/x"
    with pytest.raises(StoreError, match=msg) as e:
        Store.open("postgresql://u:hunter2@127.0.0.1:1/x?connect_timeout=2")
    assert "hunter2" not in str(e.value) and "\n" not in str(e.value)


def test_data_folder_from_env_then_default(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDYRAG_DATA", str(tmp_path / "elsewhere"))
    with Store.open() as s:
        assert s.path == tmp_path / "elsewhere" / DB_NAME
    monkeypatch.delenv("STUDYRAG_DATA")
    monkeypatch.chdir(tmp_path)
    with Store.open() as s:
        assert s.path.resolve() == (tmp_path / "data" / DB_NAME).resolve()


def test_data_path_that_is_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(StoreError, match="is a file"):
        Store.open(tmp_path / "f")


# --- files we must not touch -------------------------------------------------------------------


def snapshot(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_garbage_file_is_refused_and_left_untouched(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / DB_NAME).write_bytes(b"this is not a database\x00\xff" * 50)
    before = snapshot(folder)
    with pytest.raises(StoreError, match="not a StudyRAG progress file.*left untouched"):
        Store.open(folder)
    assert snapshot(folder) == before


def test_corrupt_database_is_refused_and_left_untouched(tmp_path):
    folder = tmp_path / "data"
    with Store.open(folder) as s:
        s.add_profile("ana")
        s.sync_cards([card(i, "x" * 3000) for i in range(30)])
        s.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db = folder / DB_NAME
    data = bytearray(db.read_bytes())
    data[4096:12288] = b"\xde\xad\xbe\xef" * 2048  # scribble over pages 2-3 (the header stays valid)
    db.write_bytes(bytes(data))
    before = snapshot(folder)
    with pytest.raises(StoreError, match="left untouched"):
        Store.open(folder)
    assert snapshot(folder) == before


def contents(where):
    """Every byte of a data folder, or every row of every table of a PostgreSQL schema."""
    if not db.is_url(where):
        return snapshot(where)
    c = db.backend_for(where).connect()  # a bare connection: opening a Store would migrate
    try:
        q = "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY 1"
        tables = [r[0] for r in c.execute(q)]
        return {t: sorted(map(tuple, c.execute(f"SELECT * FROM {t}").fetchall())) for t in tables}
    finally:
        c.close()


def test_newer_schema_is_refused_and_left_untouched(where):
    with Store.open(where) as s:
        s.add_profile("ana")
        with s.write() as c:
            s.backend.set_version(c, 99, store_mod.APPLICATION_ID)
        if s.path is not None:
            s.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = contents(where)
    with pytest.raises(StoreError, match=f"schema version 99.*reads up to version {store_mod.SCHEMA_VERSION}.*Upgrade"):
        Store.open(where)
    assert contents(where) == before != {}


def test_someone_elses_sqlite_file_is_refused(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    con = sqlite3.connect(folder / DB_NAME)
    con.execute("CREATE TABLE invoices (id INTEGER)")
    con.commit()
    con.close()
    before = snapshot(folder)
    with pytest.raises(StoreError, match="not a StudyRAG progress file"):
        Store.open(folder)
    assert snapshot(folder) == before


def test_someone_elses_postgresql_schema_is_refused(pg_url):
    c = db.backend_for(pg_url).connect()
    c.execute("CREATE TABLE invoices (id INTEGER)")
    c.execute("INSERT INTO invoices VALUES (7)")
    c.close()
    before = contents(pg_url)
    with pytest.raises(StoreError, match="PostgreSQL schema with other tables but not a StudyRAG progress file"):
        Store.open(pg_url)
    assert contents(pg_url) == before == {"invoices": [(7,)]}


def _version_1_file(folder, monkeypatch):
    """A progress file as the first release wrote it (schema version 1), with a review in it."""
    with monkeypatch.context() as m:
        m.setattr(store_mod, "MIGRATIONS", store_mod.MIGRATIONS[:1])
        m.setattr(store_mod, "SCHEMA_VERSION", 1)
        with Store.open(folder) as s:
            p = s.add_profile("ana")
            s.sync_cards([card(1)])
            schedule.review(s, p.id, "qa:d.md#Q1", "good", now=NOW)
            assert s.schema_version == 1


def test_a_version_1_file_gains_conversations_and_keeps_its_data(where, monkeypatch):
    folder = where
    _version_1_file(folder, monkeypatch)
    with Store.open(folder) as s:
        assert s.schema_version == store_mod.SCHEMA_VERSION >= 2
        pid = s.profile("ana").id
        assert len(s.reviews(pid)) == 1
        c = Conversations(s).add(pid, "LoRA?")
        Conversations(s).add_message(pid, c.id, {"question": "LoRA?"})
        assert Conversations(s).messages(pid, c.id) == [{"question": "LoRA?"}]


def test_a_later_migration_runs_on_an_older_file(where, monkeypatch):
    folder = where
    _version_1_file(folder, monkeypatch)
    nxt = store_mod.SCHEMA_VERSION + 1
    extra = Migration(nxt, "an example of a later migration", "CREATE TABLE notes (id INTEGER PRIMARY KEY);")
    monkeypatch.setattr(store_mod, "MIGRATIONS", (*store_mod.MIGRATIONS, extra))
    monkeypatch.setattr(store_mod, "SCHEMA_VERSION", nxt)
    with Store.open(folder) as s:
        assert s.schema_version == nxt
        assert s.conn.execute("SELECT count(*) FROM notes").fetchone()[0] == 0
        assert s.conn.execute("SELECT count(*) FROM conversations").fetchone()[0] == 0
        assert len(s.reviews(s.profile("ana").id)) == 1


def test_a_waiting_opener_sees_the_schema_another_process_created(pg_url):
    """What ``_migrate`` does after waiting on the write lock: re-read the version in the same
    transaction. It must see the schema another connection committed meanwhile, or two replicas
    starting together both run migration 1 ("relation profiles already exists")."""
    backend = db.backend_for(pg_url)
    conn = backend.connect()
    try:
        conn.execute("BEGIN")
        assert backend.version(conn) == 0
        with Store.open(pg_url):
            pass
        assert backend.version(conn) == store_mod.SCHEMA_VERSION
        conn.execute("ROLLBACK")
    finally:
        conn.close()
    opened = []

    def open_one():
        try:
            with Store.open(pg_url) as s:
                opened.append(s.schema_version)
        except StoreError as e:
            opened.append(str(e))

    # and a fresh schema opened by several at once
    import secrets

    import psycopg

    schema = f"t_{secrets.token_hex(5)}"
    with psycopg.connect(pg_url, autocommit=True) as c:
        c.execute(f"CREATE SCHEMA {schema}")
    pg_url = pg_url.rsplit("%3D", 1)[0] + f"%3D{schema}"
    threads = [threading.Thread(target=open_one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert opened == [store_mod.SCHEMA_VERSION] * 6, opened


def test_migration_numbers_are_consecutive():
    assert [m.version for m in store_mod.MIGRATIONS] == list(range(1, len(store_mod.MIGRATIONS) + 1))


# --- profiles ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["'; DROP TABLE profiles; --", "<script>alert(1)</script>", "田中 🐱", "مرحبا", "a" * 80]
)
def test_profile_names_are_stored_as_given(store, name):
    p = store.add_profile(name)
    assert store.profile(name) == p and p.name == name
    assert store.add_profile(f"  {name} ") == p  # surrounding spaces do not make a new one
    assert store.conn.execute("SELECT count(*) FROM profiles").fetchone()[0] == 1  # the table is still there


@pytest.mark.parametrize("name, msg", [("", "empty"), ("   ", "empty"), ("a\nb", "control"), ("x" * 81, "limit")])
def test_bad_profile_names(store, name, msg):
    with pytest.raises(ProfileError, match=msg):
        store.add_profile(name)


def test_unknown_profile_names_the_known_ones(store):
    store.add_profile("ana")
    with pytest.raises(ProfileError, match="no profile named 'bo'; profiles: 'ana'"):
        store.profile("bo")


# --- re-syncing cards --------------------------------------------------------------------------


def test_resync_keeps_progress_and_archives_what_is_gone(store):
    p = store.add_profile("ana")
    r = store.sync_cards([card(1), card(2), card(3)])
    assert r.added == ("qa:d.md#Q1", "qa:d.md#Q2", "qa:d.md#Q3")
    for i in (1, 2, 3):
        schedule.review(store, p.id, f"qa:d.md#Q{i}", "good", now=NOW)
    before = store.states(p.id)
    # re-ingest: card 2 edited, card 3's source gone, card 4 new
    r = store.sync_cards([card(1), card(2, "a better answer"), card(4)])
    assert (r.added, r.updated, r.unchanged, r.archived) == (
        ("qa:d.md#Q4",),
        ("qa:d.md#Q2",),
        ("qa:d.md#Q1",),
        ("qa:d.md#Q3",),
    )
    after = store.states(p.id)
    assert after == before  # nothing about progress changed, nothing deleted
    assert [c.card.id for c in store.cards()] == ["qa:d.md#Q1", "qa:d.md#Q2", "qa:d.md#Q4"]
    assert store.card("qa:d.md#Q2").card.back == {"en": "a better answer"}
    gone = store.card("qa:d.md#Q3")
    assert gone.archived and len(store.cards(include_archived=True)) == 4
    assert "qa:d.md#Q3" not in schedule.queue(store, p.id, now=NOW + timedelta(days=30)).due
    # the source comes back: so does the card, with its progress
    r = store.sync_cards([card(1), card(2, "a better answer"), card(3), card(4)])
    assert r.restored == ("qa:d.md#Q3",)
    assert store.states(p.id)["qa:d.md#Q3"] == before["qa:d.md#Q3"]


def test_sync_refuses_repeated_ids(store):
    with pytest.raises(ValueError, match="unique"):
        store.sync_cards([card(1), card(1)])


# --- two writers -------------------------------------------------------------------------------


def test_two_threads_rating_the_same_card_lose_nothing(store):
    p = store.add_profile("ana")
    store.sync_cards([card(1)])
    n, errors = 25, []

    def rate(rating):
        try:
            for k in range(n):
                schedule.review(store, p.id, "qa:d.md#Q1", rating, now=NOW + timedelta(minutes=k))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=rate, args=(r,)) for r in ("good", "again")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(store.reviews(p.id)) == 2 * n
    assert store.state(p.id, "qa:d.md#Q1").reps == 2 * n


def test_a_store_wide_write_and_ratings_of_the_same_profile_lose_nothing(store):
    """A write without a profile (an import, a sync) excludes the profile writes too."""
    p = store.add_profile("ana")
    store.sync_cards([card(1)])
    schedule.review(store, p.id, "qa:d.md#Q1", "good", now=NOW)
    n, errors = 25, []

    def rate():
        try:
            for k in range(n):
                schedule.review(store, p.id, "qa:d.md#Q1", "good", now=NOW + timedelta(minutes=k + 1))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    def bump():  # a store-wide read-modify-write of the same row
        try:
            for _ in range(n):
                with store.write() as c:
                    st = store.state(p.id, "qa:d.md#Q1", conn=c)
                    store.put_state(c, p.id, dataclasses.replace(st, lapses=st.lapses + 1))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=rate), threading.Thread(target=bump)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    st = store.state(p.id, "qa:d.md#Q1")
    assert (st.reps, st.lapses) == (1 + n, n)  # no rating overwrote a bump, no bump a rating


def test_postgresql_ratings_of_other_profiles_do_not_wait(pg_url):
    with Store.open(pg_url) as s:
        a, b = s.add_profile("a"), s.add_profile("b")
        s.sync_cards([card(1)])
        done = []

        def rate(p):
            schedule.review(s, p.id, "qa:d.md#Q1", "good", now=NOW)
            done.append(p.name)

        ta, tb = threading.Thread(target=rate, args=(a,)), threading.Thread(target=rate, args=(b,))
        with s.write(profile_id=a.id):  # a transaction of profile a, left open
            ta.start()
            tb.start()
            tb.join(timeout=20)
            time.sleep(0.5)
            assert done == ["b"]  # b went ahead; a waits for a's open transaction
        ta.join(timeout=20)
        assert done == ["b", "a"]


WORKER = """
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from study.store import Store
from study import schedule
s = Store.open(sys.argv[1] if sys.argv[1].startswith("postgresql://") else Path(sys.argv[1]))
p = s.profile("ana")
print("ready", flush=True)
sys.stdin.readline()  # the start gate: both workers rate at the same time
t0 = datetime(2025, 3, 1, 12, tzinfo=timezone.utc)
for k in range(int(sys.argv[2])):
    schedule.review(s, p.id, "qa:d.md#Q1", sys.argv[3], now=t0 + timedelta(minutes=k))
print("done")
"""


def test_two_processes_rating_the_same_card_lose_nothing(where, tmp_path):
    folder = where
    with Store.open(folder) as s:
        s.add_profile("ana")
        s.sync_cards([card(1)])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    n = 60
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(folder), str(n), r],
            env=env,
            cwd=str(tmp_path),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for r in ("good", "hard")
    ]
    assert [p.stdout.readline() for p in procs] == ["ready\n"] * 2, [p.stderr.read() for p in procs]
    for p in procs:  # open the gate for both before waiting for either
        p.stdin.write("go\n")
        p.stdin.flush()
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    with Store.open(folder) as s:
        pid = s.profile("ana").id
        assert len(s.reviews(pid)) == 2 * n
        assert s.state(pid, "qa:d.md#Q1").reps == 2 * n


def test_a_review_survives_a_killed_process(where, tmp_path):
    folder = where
    with Store.open(folder) as s:
        s.add_profile("ana")
        s.sync_cards([card(1), card(2)])
    code = WORKER.replace('print("done")', "import os; os._exit(9)  # killed: no close, no checkpoint")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", code, str(folder), "3", "good"],
        env=env,
        cwd=str(tmp_path),
        input="go\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 9, proc.stderr
    with Store.open(folder) as s:
        assert len(s.reviews(s.profile("ana").id)) == 3


# --- conversations -----------------------------------------------------------------------------


def test_conversations_are_kept_per_profile_in_order(store):
    ana, bo = store.add_profile("ana"), store.add_profile("bo")
    first = Conversations(store).add(ana.id, "  LoRAとQLoRAの違いは？\n  ")
    assert first.title == "LoRAとQLoRAの違いは？" and first.messages == 0
    assert [Conversations(store).add_message(ana.id, first.id, {"q": i, "text": "注意力 <b>"}) for i in range(3)] == [0, 1, 2]
    second = Conversations(store).add(ana.id, "x" * 500)
    assert len(second.title) == store_mod.MAX_TITLE
    Conversations(store).add_message(ana.id, first.id, {"q": 3})  # the first is now the most recent
    assert [c.id for c in Conversations(store).list(ana.id)] == [first.id, second.id]
    assert Conversations(store).get(ana.id, first.id).messages == 4
    assert [m["q"] for m in Conversations(store).messages(ana.id, first.id)] == [0, 1, 2, 3]
    assert Conversations(store).messages(ana.id, first.id)[0]["text"] == "注意力 <b>"
    # another profile sees nothing of ana's and cannot write to or delete it
    assert Conversations(store).list(bo.id) == [] and Conversations(store).get(bo.id, first.id) is None
    assert Conversations(store).messages(bo.id, first.id) == []
    with pytest.raises(KeyError):
        Conversations(store).add_message(bo.id, first.id, {"q": "intruder"})
    assert not Conversations(store).delete(bo.id, first.id)
    Conversations(store).rename(ana.id, second.id, "Attention")
    assert Conversations(store).get(ana.id, second.id).title == "Attention"
    assert Conversations(store).delete(ana.id, first.id)
    assert [c.id for c in Conversations(store).list(ana.id)] == [second.id]
    assert store.conn.execute("SELECT count(*) FROM messages").fetchone()[0] == 0


def test_conversations_survive_reopening(where):
    folder = where
    with Store.open(folder) as s:
        p = s.add_profile("<img src=x onerror=alert(1)>/../..")
        c = Conversations(s).add(p.id, "q")
        Conversations(s).add_message(p.id, c.id, {"question": "q", "answer": "a [1]"})
    with Store.open(folder) as s:
        p = s.profile("<img src=x onerror=alert(1)>/../..")
        assert [m["answer"] for m in Conversations(s).messages(p.id, Conversations(s).list(p.id)[0].id)] == ["a [1]"]
    if not db.is_url(folder):
        assert sorted(x.name for x in folder.iterdir() if not x.name.startswith(DB_NAME)) == []


# --- connections ---------------------------------------------------------------------------------


def test_a_new_thread_takes_over_the_connection_of_an_ended_one(store, monkeypatch):
    """Streamlit runs each rerun in a new thread: 30 reruns must not open 30 connections."""
    opened, connect = [], store.backend.connect
    monkeypatch.setattr(store.backend, "connect", lambda: opened.append(1) or connect())
    p = store.add_profile("ana")
    for _ in range(30):
        t = threading.Thread(target=lambda: Conversations(store).list(p.id))
        t.start()
        t.join()
    assert len(opened) <= 1


def test_a_lost_server_connection_fails_one_call_then_reconnects(pg_url):
    with Store.open(pg_url) as s:
        p = s.add_profile("ana")
        killer = db.backend_for(pg_url).connect()
        pid = s.conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        killer.execute("SELECT pg_terminate_backend(?)", (pid,))
        killer.close()
        with pytest.raises(db.errors()):
            s.profiles()
        assert s.profiles() == [p]


def test_the_cli_takes_the_store_url(pg_url, tmp_path, capsys, monkeypatch):
    from study.cli import main

    monkeypatch.chdir(tmp_path)  # the default data folder would be ./data

    none = str(tmp_path / "no-index")
    assert main(["profiles", "--add", "田中", "--store", pg_url, "--index", none]) == 0
    assert main(["profiles", "--store", pg_url, "--index", none]) == 0
    assert capsys.readouterr().out == "田中\n田中\n"
    assert not (tmp_path / "data").exists()
    assert main(["profiles", "--store", "mysql://u:pw@h/db", "--index", none]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "postgresql:// URL or a data folder" in err and "pw" not in err
