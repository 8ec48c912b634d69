"""A throwaway PostgreSQL cluster for the tests: Debian's ``postgresql`` binaries, a fresh data
folder, trust authentication, listening on 127.0.0.1 at a free port. Stdlib only, so ``.ci/run``
can call it before the venv exists:

    python3 tests/pg_server.py start DIR [--fsync]   # prints postgresql://postgres@127.0.0.1:PORT/postgres
    python3 tests/pg_server.py stop DIR

Tests run it with ``fsync=off`` (nothing to keep); ``--fsync`` keeps PostgreSQL's durable default,
for benchmarks that compare commit latency with SQLite's ``synchronous=FULL``.

As root, initdb and the server run as the ``postgres`` user (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

URL_FILE = "url"


def bin_dir() -> Path | None:
    """The newest ``/usr/lib/postgresql/N/bin`` holding ``initdb`` (or the one on PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_owner(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def start(base: Path, *, fsync: bool = False) -> str:
    """Create and start a cluster in ``base``; return its admin URL. Raises ``RuntimeError`` with
    the reason (in one line) when it cannot."""
    bins = bin_dir()
    if bins is None:
        raise RuntimeError("PostgreSQL is not installed (no initdb; apt-get install postgresql)")
    base = Path(base).resolve()
    base.mkdir(parents=True, exist_ok=True)
    data, sock = base / "pgdata", base / "sock"
    sock.mkdir(exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
        shutil.chown(sock, "postgres")
    port = _free_port()
    steps = [
        [str(bins / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale"],
        [
            str(bins / "pg_ctl"),
            "-D", str(data), "-l", str(base / "log"), "-w", "-t", "60",
            "-o", f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c max_connections=200 "
                  f"-c fsync={'on' if fsync else 'off'}",
            "start",
        ],
    ]  # fmt: skip
    for cmd in steps:
        r = subprocess.run(_as_owner(cmd), capture_output=True, text=True, cwd=base)
        if r.returncode != 0:
            tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or ["no output"]
            raise RuntimeError(f"{Path(cmd[0]).name} failed: {tail[0]}")
    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    (base / URL_FILE).write_text(url + "\n")
    return url


def stop(base: Path) -> None:
    bins = bin_dir()
    data = Path(base).resolve() / "pgdata"
    if bins is None or not data.exists():
        return
    subprocess.run(
        _as_owner([str(bins / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]),
        capture_output=True,
        cwd=base,
    )


if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) < 2 or args[0] not in ("start", "stop") or args[2:] not in ([], ["--fsync"]):
        sys.exit("usage: pg_server.py start DIR [--fsync] | stop DIR")
    if args[0] == "stop":
        stop(Path(args[1]))
    else:
        try:
            print(start(Path(args[1]), fsync=args[2:] == ["--fsync"]))
        except RuntimeError as e:
            sys.exit(f"error: {e}")
