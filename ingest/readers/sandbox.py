"""Read a file in a child process, so a hostile file (a decompression bomb, a page that
makes a parser loop or allocate without end) costs at most :class:`Limits` ``seconds`` and
``memory_mb`` and can never hang or kill ingest: the child limits itself
(``RLIMIT_AS``/``RLIMIT_CPU``) and is killed, with its process group, at the wall-clock limit."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from ingest.readers.base import Extract, Limits, ReaderError

_ROOT = str(Path(__file__).resolve().parents[2])


def _env() -> dict[str, str]:
    path = os.environ.get("PYTHONPATH", "")
    return {
        **os.environ,
        "PYTHONPATH": _ROOT + (os.pathsep + path if path else ""),
        "OMP_NUM_THREADS": "1",
        "OMP_THREAD_LIMIT": "1",
    }


def read_isolated(name: str, data: bytes, limits: Limits) -> Extract:
    """:func:`ingest.readers.extract` in a child process; any failure is a :class:`ReaderError`."""
    args = [sys.executable, "-m", "ingest.readers.worker", name, json.dumps(dataclasses.asdict(limits))]
    proc = subprocess.Popen(
        args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(),
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(data, timeout=limits.seconds)
    except subprocess.TimeoutExpired:
        _kill(proc)
        raise ReaderError(f"reading took longer than {limits.seconds:g} s; the limit per file") from None
    except BaseException:
        _kill(proc)
        raise
    if proc.returncode != 0:
        sig = -proc.returncode
        if sig == signal.SIGXCPU or sig == signal.SIGKILL:
            raise ReaderError(f"reading used more than {limits.seconds:g} s of CPU; the limit per file")
        if sig in (signal.SIGABRT, signal.SIGSEGV, signal.SIGBUS):  # an allocation refused by RLIMIT_AS
            raise ReaderError(
                f"the reader stopped ({signal.Signals(sig).name}) at the {limits.memory_mb:,} MB memory limit per file "
                "(a decompression bomb?)"
            )
        tail = err.decode("utf-8", "replace").strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
        if "MemoryError" in tail[0] or "memory" in tail[0].lower():
            raise ReaderError(f"needs more than {limits.memory_mb:,} MB of memory to read; the limit per file")
        raise ReaderError(f"the reader failed ({tail[0][:200]})")
    try:
        reply = json.loads(out.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ReaderError("the reader failed (no readable reply)") from None
    if "error" in reply:
        raise ReaderError(str(reply["error"]))
    try:
        return Extract.from_dict(reply["extract"])
    except (KeyError, TypeError, ValueError) as e:
        raise ReaderError(f"the reader failed ({e})") from None


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass
    proc.wait()
