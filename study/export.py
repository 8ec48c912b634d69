"""The deck with a profile's scheduling state, out and back in.

* :func:`write_anki` — an Anki package (``genanki``; stable model and deck ids, note guids from
  the card ids, so a re-export updates the same notes). Each card carries its FSRS state the
  way Anki stores it: type/queue/due/interval/reps/lapses and ``{"s", "d"}`` memory state.
* :func:`write_csv` — one row per card: id, kind, topic, front/back per language, source span,
  and the state (due, stability, difficulty, reps, lapses, last review).
* :func:`write_progress` / :func:`read_progress` / :func:`import_progress` — our own progress
  file (JSON, ``{"format": "studyrag-progress", "version": 1, …}``): states and the review log.
  Importing merges by review history: a card's state is taken when the file's reviews of the
  card are later than the stored ones; reviews already there are not added twice; cards the
  deck does not have are reported, not created. Every value is checked first
  (:mod:`study.validate`); a file that is not ours, or holds one bad value, is rejected whole
  with one line naming the file and the reason.

Every text from the notes is HTML-escaped in the Anki fields (it is data, not markup). Each file
is written beside its place and moved in once complete, so a full disk never leaves half of a new
export over an earlier one.
"""

from __future__ import annotations

import csv
import hashlib
import html
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from rag.errors import RagError
from rag.files import atomic_write
from rag.safety import spreadsheet_cell
from study import validate
from study.store import CardState, Review, Store, check_profile_name, same_name
from study.types import Card

PROGRESS_FORMAT = "studyrag-progress"
PROGRESS_VERSION = 1
ANKI_COLLECTION_CREATED = 1411124400  # genanki's collection creation time: review due dates count days from it
LANG_ORDER = ("ja", "zh", "en")
CSV_COLUMNS = (
    "id",
    "kind",
    "topic",
    *(f"front_{lang}" for lang in LANG_ORDER),
    *(f"back_{lang}" for lang in LANG_ORDER),
    "source_doc",
    "source_start",
    "source_end",
    "state",
    "due",
    "stability",
    "difficulty",
    "reps",
    "lapses",
    "last_review",
)
STATE_NAMES = {None: "new", 1: "learning", 2: "review", 3: "relearning"}


class ImportFileError(RagError, ValueError):
    """The file is not a StudyRAG progress file (the message says why). ``kind`` names the reason
    for an interface to say in its language (:data:`IMPORT_REFUSALS`); the message keeps the detail."""

    def __init__(self, message: str, kind: str = "not_ours"):
        super().__init__(message)
        self.kind = kind


# why a progress file is refused: unreadable, too big, not JSON (or nested too deep), not ours
# (another format), of another version, or with a malformed entry
IMPORT_REFUSALS = ("unreadable", "too_big", "not_json", "not_ours", "version", "malformed")


def _stable_id(name: str) -> int:
    """A fixed id in Anki's range for ``name`` (model and deck ids must never change)."""
    return (1 << 30) + int(hashlib.sha1(name.encode()).hexdigest()[:7], 16)


ANKI_MODEL_ID = _stable_id("studyrag card model v1")


def deck_id(profile: str) -> int:
    return _stable_id(f"studyrag deck: {profile}")


def _iso(ts: float | None) -> str:
    return "" if ts is None else datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds")


def _html(text: str) -> str:
    return html.escape(text).replace("\n", "<br>")


def _field(texts: dict[str, str]) -> str:
    langs = [lang for lang in LANG_ORDER if lang in texts] + [lang for lang in texts if lang not in LANG_ORDER]
    if len(langs) == 1:
        return _html(texts[langs[0]])
    return "".join(f'<div lang="{lang}">{_html(texts[lang])}</div>' for lang in langs)


# --- Anki ------------------------------------------------------------------------------------


def _anki_model():
    import genanki

    return genanki.Model(
        ANKI_MODEL_ID,
        "StudyRAG card",
        fields=[{"name": "Front"}, {"name": "Back"}, {"name": "Source"}, {"name": "StudyRAG id"}],
        templates=[
            {
                "name": "Card 1",
                "qfmt": "{{Front}}",
                "afmt": '{{FrontSide}}<hr id="answer">{{Back}}<div class="source">{{Source}}</div>',
            }
        ],
        css=".card { font-size: 20px; text-align: left; } .source { margin-top: 1em; font-size: 13px; color: #666; }",
    )


def _anki_schedule(st: CardState | None, position: int, now: float) -> dict:
    """Anki's card columns for an FSRS state (new cards keep their corpus position)."""
    if st is None:
        return {"type": 0, "queue": 0, "due": position, "ivl": 0, "reps": 0, "lapses": 0, "data": ""}
    import fsrs

    f = st.fsrs
    state = fsrs.State(int(f.get("state", fsrs.State.Learning)))
    memory = {"s": round(float(f["stability"]), 4), "d": round(float(f["difficulty"]), 4)} if f.get("stability") else {}
    common = {"reps": st.reps, "lapses": st.lapses, "data": json.dumps(memory) if memory else ""}
    if state == fsrs.State.Review:  # due counts days from the collection's creation
        last = st.last_review if st.last_review is not None else now
        ivl = max(1, round((st.due - last) / 86400))
        return {"type": 2, "queue": 2, "due": int((st.due - ANKI_COLLECTION_CREATED) // 86400), "ivl": ivl, **common}
    learning = 1 if state == fsrs.State.Learning else 3  # Anki's card types: learning / relearning
    return {"type": learning, "queue": 1, "due": int(st.due), "ivl": 0, **common}


def write_anki(
    path: str | Path,
    cards: Sequence[Card],
    states: dict[str, CardState],
    *,
    profile: str | None,
    now: float | None = None,
) -> Path:
    """Write ``cards`` (with the profile's ``states``) as an Anki package at ``path``; with
    ``profile=None`` one deck "StudyRAG" whose cards are all new."""
    import genanki

    class ScheduledCard(genanki.Card):
        def __init__(self, sched: dict):
            super().__init__(0)
            self.sched = sched

        def write_to_db(self, cursor, timestamp, deck_id, note_id, id_gen, due=0):
            s = self.sched
            cursor.execute(
                "INSERT INTO cards VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?);",
                (
                    next(id_gen),
                    note_id,
                    deck_id,
                    self.ord,
                    int(timestamp),
                    -1,
                    s["type"],
                    s["queue"],
                    s["due"],
                    s["ivl"],
                    2500 if s["type"] == 2 else 0,
                    s["reps"],
                    s["lapses"],
                    0,
                    0,
                    0,
                    0,
                    s["data"],
                ),
            )

    now = time.time() if now is None else now
    model = _anki_model()
    deck = genanki.Deck(deck_id(profile or ""), f"StudyRAG::{profile}" if profile else "StudyRAG")
    for pos, c in enumerate(cards):
        src = c.source
        note = genanki.Note(
            model=model,
            fields=[_field(c.front), _field(c.back), _html(f"{src.doc_id} [{src.start}:{src.end}]"), _html(c.id)],
            guid=genanki.guid_for(c.id),
            tags=["studyrag", f"studyrag::{c.kind}"],
        )
        note.cards = [ScheduledCard(_anki_schedule(states.get(c.id), pos, now))]
        deck.add_note(note)
    return atomic_write(path, lambda tmp: genanki.Package(deck).write_to_file(str(tmp), timestamp=now))


# --- CSV ---------------------------------------------------------------------------------------


def csv_rows(cards: Sequence[Card], states: dict[str, CardState]) -> list[dict[str, str]]:
    rows = []
    for c in cards:
        st = states.get(c.id)
        f = st.fsrs if st else {}
        row = {
            "id": c.id,
            "kind": c.kind,
            "topic": c.topic,
            "source_doc": c.source.doc_id,
            "source_start": str(c.source.start),
            "source_end": str(c.source.end),
            "state": STATE_NAMES.get(f.get("state")) if st else "new",
            "due": _iso(st.due) if st else "",
            "stability": str(f.get("stability") or ""),
            "difficulty": str(f.get("difficulty") or ""),
            "reps": str(st.reps if st else 0),
            "lapses": str(st.lapses if st else 0),
            "last_review": _iso(st.last_review) if st else "",
        }
        for lang in LANG_ORDER:
            row[f"front_{lang}"] = c.front.get(lang, "")
            row[f"back_{lang}"] = c.back.get(lang, "")
        rows.append(row)
    return rows


def write_csv(path: str | Path, cards: Sequence[Card], states: dict[str, CardState]) -> Path:
    """One row per card (UTF-8 with a BOM, so spreadsheet programs read Japanese and Chinese);
    a cell that a spreadsheet would run as a formula starts with ``'`` (:func:`rag.safety.spreadsheet_cell`)."""
    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8-sig", newline="") as f:
            w = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
            w.writeheader()
            w.writerows({k: spreadsheet_cell(v) for k, v in row.items()} for row in csv_rows(cards, states))

    return atomic_write(path, write)


# --- our progress file ---------------------------------------------------------------------------


def progress_data(store: Store, profile: str) -> dict:
    p = store.profile(profile)
    return {
        "format": PROGRESS_FORMAT,
        "version": PROGRESS_VERSION,
        "profile": p.name,
        "exported_at": _iso(time.time()),
        "states": [
            {
                "card_id": s.card_id,
                "fsrs": s.fsrs,
                "due": s.due,
                "reps": s.reps,
                "lapses": s.lapses,
                "first_review": s.first_review,
                "last_review": s.last_review,
            }
            for s in store.states(p.id).values()
        ],
        "reviews": [
            {
                "card_id": r.card_id,
                "rating": r.rating,
                "reviewed_at": r.reviewed_at,
                "duration_ms": r.duration_ms,
                "state_before": r.state_before,
                "state_after": r.state_after,
                "due_after": r.due_after,
            }
            for r in store.reviews(p.id)
        ],
    }


def write_progress(path: str | Path, store: Store, profile: str) -> Path:
    text = json.dumps(progress_data(store, profile), ensure_ascii=False, indent=1)
    return atomic_write(path, text)


def read_progress(path: str | Path, *, now: float | None = None) -> tuple[list[CardState], list[Review]]:
    """States and reviews from our progress file, every value checked (:mod:`study.validate`);
    :class:`ImportFileError` naming the file and the reason, before anything is written."""
    path = Path(path)
    now = validate.current_time() if now is None else now
    try:
        with open(path, "rb") as f:
            raw = f.read(validate.MAX_BYTES + 1)
    except OSError as e:
        raise ImportFileError(f"cannot read {path}: {e.strerror or e}", "unreadable") from None
    try:
        data = validate.load_json(raw)
    except validate.BadValue as e:
        kind = "too_big" if len(raw) > validate.MAX_BYTES else "not_json"
        raise ImportFileError(f"{path} is not a StudyRAG progress file: {e}", kind) from None
    if not isinstance(data, dict) or data.get("format") != PROGRESS_FORMAT:
        raise ImportFileError(f'{path} is not a StudyRAG progress file: its "format" is not {PROGRESS_FORMAT!r}')
    if data.get("version") != PROGRESS_VERSION:
        raise ImportFileError(
            f"{path} is a StudyRAG progress file of version {validate._show(data.get('version'))}; "
            f"this version reads version {PROGRESS_VERSION}",
            "version",
        )
    try:
        states = [_state(s, f"states[{i}]", now) for i, s in enumerate(_list(data, "states"))]
        reviews = [_review(r, f"reviews[{i}]", now) for i, r in enumerate(_list(data, "reviews"))]
        first: dict[str, int] = {}
        for i, st in enumerate(states):  # a card has one state: which of two to take is not ours to guess
            j = first.setdefault(st.card_id, i)
            if j != i:
                raise validate.BadValue(f"states[{i}] is a second state of card {st.card_id!r} (states[{j}])")
    except validate.BadValue as e:
        raise ImportFileError(f"{path} was not imported, an entry is malformed: {e}", "malformed") from None
    return states, reviews


def file_profile(raw: bytes) -> str | None:
    """The learner a progress file says it was exported from (its ``"profile"``), as a profile
    name is stored; ``None`` when it names none or is no progress file (importing says why)."""
    try:
        data = validate.load_json(raw)
        name = data.get("profile") if isinstance(data, dict) else None
        return check_profile_name(name) if isinstance(name, str) else None
    except (validate.BadValue, ValueError):
        return None


def _list(data: dict, key: str) -> list:
    v = data.get(key)
    if not isinstance(v, list):
        raise validate.BadValue(f'"{key}" is {validate._show(v)}; it must be a list')
    return v


def _entry(d, where: str, keys: tuple[str, ...]) -> dict:
    if not isinstance(d, dict):
        raise validate.BadValue(f"{where} is {validate._show(d)}; it must be an object")
    missing = [k for k in keys if k not in d]
    if missing:
        raise validate.BadValue(f"{where} has no {missing[0]!r}")
    return d


def _state(d, where: str, now: float) -> CardState:
    v = validate
    d = _entry(d, where, ("card_id", "fsrs", "due", "reps", "lapses"))
    reps = v.integer(d["reps"], f"{where}.reps", 0, v.MAX_COUNT)
    first, last = d.get("first_review"), d.get("last_review")
    st = CardState(
        v.text(d["card_id"], f"{where}.card_id"),
        v.fsrs_card(d["fsrs"], f"{where}.fsrs", now),
        v.when(d["due"], f"{where}.due", now),
        reps,
        v.integer(d["lapses"], f"{where}.lapses", 0, reps),
        None if first is None else v.when(first, f"{where}.first_review", now, past=True),
        None if last is None else v.when(last, f"{where}.last_review", now, past=True),
    )
    if st.first_review is not None and st.last_review is not None and st.first_review > st.last_review:
        raise v.BadValue(f"{where}.first_review is after its last_review")
    return st


def _review(d, where: str, now: float) -> Review:
    v = validate
    d = _entry(d, where, ("card_id", "rating", "reviewed_at", "state_before", "state_after", "due_after"))
    ms = d.get("duration_ms")
    return Review(
        v.text(d["card_id"], f"{where}.card_id"),
        v.integer(d["rating"], f"{where}.rating", 1, 4),
        v.when(d["reviewed_at"], f"{where}.reviewed_at", now, past=True),
        v.integer(d["state_before"], f"{where}.state_before", 0, 3),
        v.integer(d["state_after"], f"{where}.state_after", 1, 3),
        v.when(d["due_after"], f"{where}.due_after", now),
        None if ms is None else v.integer(ms, f"{where}.duration_ms", 0, v.MAX_DURATION_MS),
    )


@dataclass(frozen=True)
class ImportReport:
    states_taken: int
    states_kept: int  # the stored review history of the card is as new or newer
    reviews_added: int
    unknown_cards: tuple[str, ...]


def import_progress(store: Store, profile: str, path: str | Path) -> ImportReport:
    """Merge a progress file into ``profile`` (created if needed), all in one transaction.

    Merged by review history, not by a date the file states: the reviews are added (those
    already there once), and a card's state is taken only when the file's own review log has a
    review of that card at the state's ``last_review`` and that review is later than every
    review stored for the card. A state no review backs is kept out."""
    states, reviews = read_progress(path)
    name = check_profile_name(profile)
    known = {sc.card.id for sc in store.cards(include_archived=True)}
    unknown = sorted({s.card_id for s in states} - known | {r.card_id for r in reviews} - known)
    file_latest: dict[str, float] = {}
    for r in reviews:
        file_latest[r.card_id] = max(r.reviewed_at, file_latest.get(r.card_id, r.reviewed_at))
    taken = kept = added = 0
    with store.write() as conn:
        p = _profile_in(conn, name)
        stored_latest = {
            row[0]: row[1]
            for row in conn.execute(
                "SELECT card_id, max(reviewed_at) FROM reviews WHERE profile_id = ? GROUP BY card_id", (p,)
            )
        }
        for s in states:
            if s.card_id not in known:
                continue
            backed = s.last_review is not None and abs(file_latest.get(s.card_id, -1.0) - s.last_review) < 1.0
            if backed and s.last_review > stored_latest.get(s.card_id, 0.0) + 1e-6:
                store.put_state(conn, p, s)
                taken += 1
            else:
                kept += 1
        have = store.review_keys(p, conn=conn)
        for r in reviews:
            if r.card_id in known and (r.card_id, r.reviewed_at, r.rating) not in have:
                store.add_review(conn, p, r)
                have.add((r.card_id, r.reviewed_at, r.rating))
                added += 1
    return ImportReport(taken, kept, added, tuple(unknown))


def _profile_in(conn, name: str) -> int:
    """The id of profile ``name`` (an already-checked name), created inside the open transaction."""
    same = same_name(conn, name)
    if same is not None:
        return same.id
    return conn.execute(
        "INSERT INTO profiles(name, created) VALUES (?, ?) RETURNING id", (name, time.time())
    ).fetchone()[0]


def deck_for_export(store: Store, profile: str | None) -> tuple[list[Card], dict[str, CardState]]:
    """The live cards and the profile's states (what the Anki and CSV writers take); no
    states without a profile (a deck to start from)."""
    cards = [sc.card for sc in store.cards()]
    return cards, (store.states(store.profile(profile).id) if profile is not None else {})
