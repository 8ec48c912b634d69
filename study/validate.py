"""Values a progress file may hold, checked before anything is written.

A progress file comes from outside (another machine, another version, a hand edit, an attacker),
so every entry is checked by value, not only by type: finite numbers in range, dates between
2000 and a century from now (review dates no later than now), FSRS fields as FSRS allows them,
and the file itself under a size and a nesting cap. The nesting is measured on the raw bytes
before the JSON parser sees them, so a 100,000-deep file never reaches Python's recursion.

Every failure is a :class:`BadValue` whose message names the entry and the reason in one line,
e.g. ``states[3].stability is -5; FSRS needs 0.001 to 100,000``.
"""

from __future__ import annotations

import json
import math
import re
import time
from typing import Any

MAX_BYTES = 64 * 1024 * 1024  # 200,000 reviews as our writer lays them out are about 40 MB
MAX_DEPTH = 8  # our files nest 4 deep: {states: [{fsrs: {…}}]}
MIN_TIME = 946_684_800.0  # 2000-01-01T00:00:00Z
CENTURY_S = 100 * 365.25 * 86_400
CLOCK_SKEW_S = 86_400.0  # a review may be stamped up to a day ahead of this machine's clock
MAX_COUNT = 1_000_000  # reps, lapses
MAX_DURATION_MS = 86_400_000
MAX_CARD_ID = 512
STABILITY = (0.001, 100_000.0)  # days; FSRS's floor is 0.001
DIFFICULTY = (1.0, 10.0)
FSRS_STATES = (1, 2, 3)  # learning, review, relearning
REVIEW_STATES = (0, 1, 2, 3)  # before a review: 0 = new
MAX_STEP = 100
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET = re.compile(rb"[^\[\]{}]+")


class BadValue(ValueError):
    """An entry of a progress file is out of range or of the wrong kind (one line, names it)."""


def nesting(raw: bytes) -> int:
    """How deeply ``raw`` JSON nests arrays and objects (strings skipped), without parsing it.

    >>> nesting(b'{"a": [1, {"b": "[[[["}]}'), nesting(b"[" * 5 + b"]" * 5), nesting(b"1")
    (3, 5, 0)
    """
    import numpy as np

    brackets = _NOT_BRACKET.sub(b"", _STRING.sub(b"", raw))
    if not brackets:
        return 0
    a = np.frombuffer(brackets, dtype=np.uint8)
    steps = np.where((a == ord("[")) | (a == ord("{")), 1, -1)
    return int(np.cumsum(steps).max())


def _constant(name: str):
    raise BadValue(f"it holds {name}, which is not a number JSON allows")


def _finite_float(text: str) -> float:
    x = float(text)
    if not math.isfinite(x):
        raise BadValue(f"it holds the number {text[:40]}, which is too large")
    return x


def load_json(raw: bytes) -> Any:
    """Strict JSON from ``raw`` (UTF-8, BOM allowed): at most :data:`MAX_BYTES`, nested at most
    :data:`MAX_DEPTH`, no NaN / Infinity / overflowing numbers. :class:`BadValue` saying why."""
    if len(raw) > MAX_BYTES:
        raise BadValue(f"it is {len(raw):,} bytes; a progress file is at most {MAX_BYTES:,}")
    depth = nesting(raw)
    if depth > MAX_DEPTH:
        raise BadValue(f"it nests {depth:,} levels deep; a progress file nests at most {MAX_DEPTH}")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadValue("it is not JSON (not UTF-8 text)") from None
    try:
        return json.loads(text, parse_constant=_constant, parse_float=_finite_float)
    except BadValue:
        raise
    except ValueError as e:  # JSONDecodeError, or an integer of thousands of digits
        raise BadValue(f"it is not JSON ({' '.join(str(e).split())[:120]})") from None


# --- fields --------------------------------------------------------------------------------------


def _number(v: Any, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise BadValue(f"{where} is {_show(v)}; it must be a number")
    if isinstance(v, float) and not math.isfinite(v):
        raise BadValue(f"{where} is {v}; it must be a finite number")
    return v


def integer(v: Any, where: str, lo: int, hi: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise BadValue(f"{where} is {_show(v)}; it must be a whole number from {lo:,} to {hi:,}")
    if not lo <= v <= hi:
        raise BadValue(f"{where} is {_show(v)}; it must be from {lo:,} to {hi:,}")
    return v


def real(v: Any, where: str, lo: float, hi: float) -> float:
    x = float(_number(v, where))
    if not lo <= x <= hi:
        raise BadValue(f"{where} is {_show(v)}; it must be from {lo:,g} to {hi:,g}")
    return x


def when(v: Any, where: str, now: float, *, past: bool = False) -> float:
    """Epoch seconds from 2000 to a century from ``now`` (``past``: no later than ``now``)."""
    latest = now + (CLOCK_SKEW_S if past else CENTURY_S)
    x = float(_number(v, where))
    if not MIN_TIME <= x <= latest:
        bound = "now" if past else "100 years from now"
        raise BadValue(f"{where} is {_show(v)}; a date must be between 2000 and {bound}")
    return x


def text(v: Any, where: str, limit: int = MAX_CARD_ID) -> str:
    if not isinstance(v, str) or not v or len(v) > limit:
        raise BadValue(f"{where} is {_show(v)}; it must be text of 1 to {limit} characters")
    return v


def _iso(v: Any, where: str, now: float, *, past: bool = False) -> float:
    from datetime import datetime

    if not isinstance(v, str) or len(v) > 40:
        raise BadValue(f"{where} is {_show(v)}; it must be an ISO date with a time zone")
    try:
        d = datetime.fromisoformat(v)
    except ValueError:
        raise BadValue(f"{where} is {_show(v)}; it must be an ISO date with a time zone") from None
    if d.tzinfo is None:
        raise BadValue(f"{where} is {_show(v)}; it has no time zone")
    return when(d.timestamp(), where, now, past=past)


def fsrs_card(d: Any, where: str, now: float) -> dict:
    """An ``fsrs.Card.to_dict()`` with every field as FSRS allows it (a copy)."""
    if not isinstance(d, dict):
        raise BadValue(f"{where} is {_show(d)}; it must be an FSRS card object")
    need = ("card_id", "state", "step", "stability", "difficulty", "due", "last_review")
    missing = [k for k in need if k not in d]
    if missing:
        raise BadValue(f"{where} has no {missing[0]!r}")
    state = integer(d["state"], f"{where}.state", FSRS_STATES[0], FSRS_STATES[-1])
    if d["step"] is not None:
        integer(d["step"], f"{where}.step", 0, MAX_STEP)
    s, diff = d["stability"], d["difficulty"]
    if (s is None) != (diff is None):
        raise BadValue(f"{where} has a stability without a difficulty (or the reverse)")
    if s is not None:
        real(s, f"{where}.stability", *STABILITY)
        real(diff, f"{where}.difficulty", *DIFFICULTY)
    elif state != 1:
        raise BadValue(f"{where}.state is {state} but it has no stability: only a learning card (1) may lack one")
    integer(d["card_id"], f"{where}.card_id", 0, 2**63 - 1)
    _iso(d["due"], f"{where}.due", now)
    if d["last_review"] is not None:
        _iso(d["last_review"], f"{where}.last_review", now, past=True)
    return {k: d[k] for k in need}


def _show(v: Any) -> str:
    """A value for a message: short, one line."""
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e16:
        v = int(v)
    s = repr(v) if not isinstance(v, (int, float)) or isinstance(v, bool) else f"{v:,}" if abs(v) < 1e16 else f"{v:.3g}"
    s = " ".join(s.split())
    return s if len(s) <= 60 else s[:59] + "…"


def current_time() -> float:
    return time.time()


# --- learner names -------------------------------------------------------------------------------


def display_key(name: str) -> str:
    """What a learner's name looks like on screen: NFKC, invisible characters removed, runs of
    spaces as one. Two names with the same key are the same learner.

    >>> display_key("ali\\u200bce") == display_key("\\uff41lice") == display_key(" alice ")
    True
    """
    import unicodedata

    from rag.safety import visible

    return " ".join(visible(unicodedata.normalize("NFKC", name)).split())


def profile_name(name: str, limit: int) -> str:
    """A learner's name as stored: NFKC, spaces collapsed; refused (``ValueError`` with the
    reason) when empty, too long, or holding invisible, bidi or control characters, which would
    let two learners look alike or one look like nothing."""
    import unicodedata

    from rag.safety import BIDI_CONTROLS, invisible

    if not isinstance(name, str):
        raise ValueError(f"profile name must be text, got {type(name).__name__}")
    n = unicodedata.normalize("NFKC", name)
    if any(unicodedata.category(ch) == "Cc" and ch not in " " for ch in n.strip()):
        raise ValueError("profile name contains a control character (a line break or tab); use one line of text")
    if any(ch in BIDI_CONTROLS for ch in n):
        raise ValueError("profile name contains a text-direction control character; type the name without it")
    bad = sorted({f"U+{ord(ch):04X}" for ch in n if invisible(ch)})
    if bad:
        raise ValueError(f"profile name contains invisible characters ({', '.join(bad[:3])}); type the name without them")
    n = " ".join(n.split())
    if not n:
        raise ValueError("profile name is empty: type a name")
    if len(n) > limit:
        raise ValueError(f"profile name is {len(n)} characters; the limit is {limit}")
    return n


# --- the study store's own structure ---------------------------------------------------------------

JSON_COLUMNS = (("cards", "content"), ("card_states", "fsrs"), ("messages", "content"))


def _columns(conn, table: str) -> dict[str, tuple[str, int, int]]:
    return {r[1]: (r[2].upper(), r[3], r[5]) for r in conn.execute(f"PRAGMA table_info({table})")}


def expected_structure(scripts: list[str]) -> dict[str, dict[str, tuple[str, int, int]]]:
    """``{table: {column: (type, not null, primary key)}}`` the migration ``scripts`` make."""
    import sqlite3

    mem = sqlite3.connect(":memory:")
    try:
        for sql in scripts:
            mem.executescript(sql)
        tables = [r[0] for r in mem.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: _columns(mem, t) for t in tables}
    finally:
        mem.close()


def integrity_problem(rows: list[str]) -> str:
    """``PRAGMA quick_check`` rows as one line ("" when the file is sound)."""
    lines = [" ".join(r.split()) for r in rows]
    if lines == ["ok"]:
        return ""
    first = lines[0] if len(lines[0]) <= 160 else lines[0][:159] + "…"
    return f"integrity check found {len(lines):,} problem{'s' if len(lines) != 1 else ''} (first: {first})"


def structure_problem(conn, expected: dict[str, dict[str, tuple[str, int, int]]]) -> str:
    """What is wrong with the store's tables, columns and JSON columns ("" when nothing)."""
    have = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    for table, cols in expected.items():
        if table not in have:
            return f"its table {table!r} is missing"
        got = _columns(conn, table)
        for col, spec in cols.items():
            if col not in got:
                return f"its table {table!r} has no column {col!r}"
            if got[col] != spec:
                return f"its column {table}.{col} is declared {got[col][0] or 'without a type'}, not {spec[0]}"
    for table, col in JSON_COLUMNS:
        if table not in expected:
            continue
        row = conn.execute(f"SELECT rowid FROM {table} WHERE json_valid({col}) = 0 LIMIT 1").fetchone()
        if row is not None:
            return f"row {row[0]} of table {table!r} holds a {col} that is not JSON"
    return ""
