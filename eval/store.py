"""``python -m eval store --url postgresql://…``: the study store on SQLite vs PostgreSQL, on this machine.

* latency of one rating (``schedule.review``: read, schedule, write, one transaction) and of the
  flashcards page's queue query, SQLite and PostgreSQL measured in alternating blocks, so both
  see the same background load;
* P processes rating the same card of the same profile at once (a start gate, then K ratings
  each): reviews lost or doubled (both must be 0) and ratings per second under that contention.

``--url`` is an admin URL of a running server (e.g. ``python3 tests/pg_server.py start DIR --fsync``);
a database is created for the run and dropped after it. Writes ``eval/results/store.{md,json}``.
"""

from __future__ import annotations

import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from eval import report
from study import schedule
from study.store import Store
from study.types import Card, Source

ROOT = Path(__file__).resolve().parents[1]
T0 = datetime(2025, 3, 1, 12, tzinfo=timezone.utc)
CARDS = 200
FILL_PROFILES = 50  # 10,000 card states and 20,000 reviews more, for bytes per row

WORKER = """
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from study import schedule
from study.store import Store
where, k, rating, profile = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
s = Store.open(where if where.startswith("postgresql://") else Path(where))
pid = s.profile(profile).id
schedule.make_scheduler()
print("ready", flush=True)
sys.stdin.readline()
t0 = datetime(2025, 3, 1, 12, tzinfo=timezone.utc)
for i in range(k):
    schedule.review(s, pid, "c0", rating, now=t0 + timedelta(minutes=i))
print("done", flush=True)
"""


def _card(i: int) -> Card:
    back = f"answer {i} " * 20
    return Card(
        id=f"c{i}",
        kind="qa",
        front={"en": f"question {i}?"},
        back={"en": back},
        sources={"en": Source("d.md", 0, len(back), back, "en")},
        topic="t",
        qnum=i,
    )


def _fresh(where) -> None:
    with Store.open(where) as s:
        for name in ("ana", "p0", "p1", "p2", "p3"):
            s.add_profile(name)
        s.sync_cards([_card(i) for i in range(CARDS)])


def _ms(xs: list[float]) -> dict:
    xs = sorted(xs)
    return {
        "n": len(xs),
        "p50_ms": round(1000 * statistics.median(xs), 3),
        "p95_ms": round(1000 * xs[int(0.95 * (len(xs) - 1))], 3),
        "mean_ms": round(1000 * statistics.fmean(xs), 3),
    }


def latency(targets: dict[str, object], *, blocks: int, per_block: int) -> dict:
    """Per engine: seconds per rating and per queue query, blocks alternating between engines."""
    stores = {name: Store.open(w) for name, w in targets.items()}
    sched = schedule.make_scheduler()
    rate = {n: [] for n in stores}
    queue = {n: [] for n in stores}
    step = {n: 0 for n in stores}
    try:
        for _ in range(blocks):
            for name, s in stores.items():
                pid = s.profile("ana").id
                for _ in range(per_block):
                    i = step[name]
                    step[name] += 1
                    now = T0 + timedelta(minutes=i)
                    t = time.perf_counter()
                    schedule.review(s, pid, f"c{i % CARDS}", "good" if i % 5 else "again", now=now, scheduler=sched)
                    rate[name].append(time.perf_counter() - t)
                    t = time.perf_counter()
                    schedule.queue(s, pid, now=now)
                    queue[name].append(time.perf_counter() - t)
        sizes = {}
        for n, s in stores.items():
            _fill(s, profiles=FILL_PROFILES)
            sizes[n] = _bytes_per_row(s)
    finally:
        for s in stores.values():
            s.close()
    return {n: {"rating": _ms(rate[n]), "queue": _ms(queue[n]), "bytes_per_row": sizes[n]} for n in stores}


def _fill(s: Store, *, profiles: int) -> None:
    """``profiles`` more learners, each with a state for every card and two reviews of each."""
    from study.store import CardState, Review

    for k in range(profiles):
        pid = s.add_profile(f"fill{k}").id
        with s.write(profile_id=pid) as c:
            for i in range(CARDS):
                card_id, t = f"c{i}", T0.timestamp() + i
                fsrs = {"card_id": i, "state": 2, "step": None, "stability": 3.2, "difficulty": 5.1,
                        "due": "2025-03-04T12:00:00+00:00", "last_review": "2025-03-01T12:00:00+00:00"}  # fmt: skip
                s.put_state(c, pid, CardState(card_id, fsrs, t + 3 * 86400, 2, 0, t, t + 60))
                for j in range(2):
                    s.add_review(c, pid, Review(card_id, 3, t + 60 * j, min(j, 1), 2, t + 86400 * (j + 1), 4200))


def _bytes_per_row(s: Store) -> dict:
    """On-disk bytes per row (table and its indexes) of the review log and the card states."""
    out = {}
    for table, index in (("reviews", "reviews_profile_time"), ("card_states", "card_states_due")):
        rows = s.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        if s.path is None:
            size = s.conn.execute("SELECT pg_total_relation_size(?::regclass)", (table,)).fetchone()[0]
        else:
            size = s.conn.execute(
                "SELECT sum(pgsize) FROM dbstat WHERE name IN (?, ?, ?)", (table, index, f"sqlite_autoindex_{table}_1")
            ).fetchone()[0]
        out[table] = round(size / rows) if rows else None
    return out


def contention(where, *, procs: int, per_proc: int, same_profile: bool) -> dict:
    """``procs`` processes rate card c0 ``per_proc`` times each, all at once: all as one profile
    (every rating builds on the one before), or each as its own profile."""
    _fresh(where)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    ps = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(where), str(per_proc), ("good", "hard", "again", "easy")[i % 4],
             "ana" if same_profile else f"p{i}"],
            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for i in range(procs)
    ]  # fmt: skip
    for p in ps:
        if p.stdout.readline() != "ready\n":
            raise RuntimeError(p.communicate()[1][-2000:])
    t = time.perf_counter()
    for p in ps:
        p.stdin.write("go\n")
        p.stdin.flush()
    for p in ps:
        out, err = p.communicate(timeout=600)
        if p.returncode != 0:
            raise RuntimeError(err[-2000:])
    wall = time.perf_counter() - t
    with Store.open(where) as s:
        pids = [s.profile(n).id for n in (["ana"] if same_profile else [f"p{i}" for i in range(procs)])]
        logged = sum(len(s.reviews(pid)) for pid in pids)
        reps = sum(s.state(pid, "c0").reps for pid in pids)
    expected = procs * per_proc
    return {
        "profiles": "one" if same_profile else "one each",
        "processes": procs,
        "ratings": expected,
        "logged": logged,
        "reps": reps,
        "lost": max(0, expected - min(logged, reps)),
        "doubled": max(0, max(logged, reps) - expected),
        "seconds": round(wall, 3),
        "ratings_per_s": round(expected / wall, 1),
    }


def _database(admin: str):
    import psycopg

    name = f"studyrag_bench_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
        fsync = c.execute("SHOW fsync").fetchone()[0]
        sync_commit = c.execute("SHOW synchronous_commit").fetchone()[0]
        version = c.execute("SHOW server_version").fetchone()[0]
    return name, urlunsplit(urlsplit(admin)._replace(path=f"/{name}", query="")), {
        "fsync": fsync, "synchronous_commit": sync_commit, "server_version": version}  # fmt: skip


def _schema(db_url: str, schema: str) -> str:
    import psycopg

    with psycopg.connect(db_url, autocommit=True) as c:
        c.execute(f"CREATE SCHEMA {schema}")
    return f"{db_url}?options=-csearch_path%3D{schema}"


def main(*, out: Path, url: str | None, quick: bool = False) -> int:
    import psycopg

    admin = url or os.environ.get("STUDYRAG_TEST_PG", "").strip()
    if not admin:
        print("error: `python -m eval store` needs --url postgresql://… of a running server "
              "(python3 tests/pg_server.py start DIR --fsync prints one)", file=sys.stderr)  # fmt: skip
        return 2
    load = round(os.getloadavg()[0], 1)
    name, db_url, server = _database(admin)
    blocks, per_block = (2, 20) if quick else (6, 50)
    per_proc = 25 if quick else 100
    try:
        with tempfile.TemporaryDirectory(prefix="studyrag-store-bench-") as tmp:
            lat_targets = {"sqlite": Path(tmp) / "lat", "postgresql": _schema(db_url, "lat")}
            for w in lat_targets.values():
                _fresh(w)
            print("latency …", file=sys.stderr)
            lat = latency(lat_targets, blocks=blocks, per_block=per_block)
            conc = []
            for same in (True, False):
                for procs in (2, 4):
                    for engine in ("sqlite", "postgresql"):
                        tag = f"c{procs}{'s' if same else 'd'}"
                        w = Path(tmp) / tag if engine == "sqlite" else _schema(db_url, tag)
                        print(f"{procs} processes on {engine} …", file=sys.stderr)
                        r = contention(w, procs=procs, per_proc=per_proc, same_profile=same)
                        conc.append({"engine": engine, **r})
    finally:
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    data = {
        "command": "python -m eval store" + (" --quick" if quick else "") + " --url postgresql://…",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "load_average_1min_at_start": load},  # fmt: skip
        "postgresql": {**server, "connection": "TCP 127.0.0.1, same machine"},
        "sqlite": {"journal_mode": "wal", "synchronous": "FULL"},
        "cards": CARDS,
        "latency": lat,
        "contention": conc,
    }
    out.mkdir(parents=True, exist_ok=True)
    report.write_json(out / "store.json", data)
    (out / "store.md").write_text(_markdown(data), encoding="utf-8")
    print(_markdown(data))
    return 0


def _markdown(d: dict) -> str:
    pg = d["postgresql"]
    lines = [
        "# Study store: SQLite vs PostgreSQL",
        "",
        f"`{d['command']}` — {d['machine']['cpus']} CPUs shared with other work (1-minute load "
        f"{d['machine']['load_average_1min_at_start']} at the start: timings are noisy), "
        f"PostgreSQL {pg['server_version']} over {pg['connection']} (fsync={pg['fsync']}, "
        f"synchronous_commit={pg['synchronous_commit']}); SQLite WAL, synchronous=FULL. {d['cards']} cards; "
        f"latency as one profile, bytes per row after {FILL_PROFILES} more profiles' states and reviews.",
        "",
        "| engine | rating p50 ms | rating p95 ms | rating mean ms | queue p50 ms | queue p95 ms | n "
        "| bytes per review | bytes per card state |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for eng, v in d["latency"].items():
        r, q, b = v["rating"], v["queue"], v["bytes_per_row"]
        lines.append(
            f"| {eng} | {r['p50_ms']} | {r['p95_ms']} | {r['mean_ms']} | {q['p50_ms']} | {q['p95_ms']} | {r['n']} "
            f"| {b['reviews']} | {b['card_states']} |"
        )
    lines += [
        "",
        "Processes rating card c0 at once (start gate, then back-to-back), all as one profile or each as its own:",
        "",
        "| engine | profiles | processes | ratings | logged | reps | lost | doubled | seconds | ratings/s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in d["contention"]:
        lines.append(
            f"| {c['engine']} | {c['profiles']} | {c['processes']} | {c['ratings']} | {c['logged']} | {c['reps']} "
            f"| {c['lost']} | {c['doubled']} | {c['seconds']} | {c['ratings_per_s']} |"
        )
    return "\n".join(lines) + "\n"
