"""Progress figures with hand-computed values; Anki / CSV export with the scheduling state; our
progress file round-trips and merges, and files that are not ours are rejected with the reason."""

from __future__ import annotations

import csv
import json
import sqlite3
import zipfile
from datetime import datetime, timedelta, timezone

import pytest
from test_study_store import card

from study import export, progress, schedule
from study.store import Store
from study.types import Card, Source

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=timezone.utc)
UTC = timezone.utc


@pytest.fixture
def deck(tmp_path):
    s = Store.open(tmp_path / "data")
    cards = [card(i) for i in range(1, 5)]
    cards.append(
        Card(
            "section:g.md#Tips",
            "section",
            {"en": "Explain “<b>Tips</b>”."},
            {"en": "Use <script>x</script> & more."},
            {"en": Source("g.md", 5, 30, "Use <script>x</script> & more.", "en")},
            topic="Guide",
        )
    )
    s.sync_cards(cards)
    p = s.add_profile("ana")
    yield s, p.id
    s.close()


def review_days(s, pid, sched):
    """Card 1: learned 20 days ago, then two reviews (remembered 12 days ago, forgotten 2 days ago);
    card 2 learned 19 days ago; card 3 seen an hour ago."""
    for days, rating in ((20, "easy"), (12, "good"), (2, "again")):
        schedule.review(s, pid, "qa:d.md#Q1", rating, now=NOW - timedelta(days=days), scheduler=sched)
    schedule.review(s, pid, "qa:d.md#Q2", "good", now=NOW - timedelta(days=19), scheduler=sched)
    schedule.review(s, pid, "qa:d.md#Q3", "hard", now=NOW - timedelta(hours=1), scheduler=sched)


def test_progress_figures(deck):
    s, pid = deck
    sched = schedule.make_scheduler(fuzz=False)
    review_days(s, pid, sched)
    assert progress.retention(s, pid, days=30, now=NOW) == {"reviews": 2, "remembered": 1, "retention": 0.5}
    assert progress.retention(s, pid, days=5, now=NOW) == {"reviews": 1, "remembered": 0, "retention": 0.0}
    days = progress.reviews_per_day(s, pid, days=10, now=NOW, tz=UTC)
    assert [d["date"] for d in days] == [f"2025-03-{k:02d}" for k in range(1, 11)]
    assert {d["date"]: (d["reviews"], d["again"]) for d in days if d["reviews"]} == {
        "2025-03-08": (1, 1),
        "2025-03-10": (1, 0),
    }
    due = progress.due_today(s, pid, now=NOW, tz=UTC, new_per_day=2)
    assert due["cards"] == 5 and due["new_started_today"] == 1 and due["new_left_today"] == 1
    mastery = {m["topic"]: m for m in progress.mastery_by_topic(s, pid, now=NOW)}
    assert (mastery["t"]["cards"], mastery["t"]["seen"]) == (4, 3)
    assert mastery["Guide"] == {"topic": "Guide", "cards": 1, "seen": 0, "mature": 0, "mastery": 0.0}
    assert 0.0 < mastery["t"]["mastery"] < 0.75  # three of four cards seen, none certain
    assert set(progress.summary(s, pid, now=NOW)) == {"due", "reviews_per_day", "retention", "mastery"}


def test_progress_of_a_new_profile(deck):
    s, _ = deck
    pid = s.add_profile("bo").id
    assert progress.retention(s, pid, now=NOW)["retention"] is None
    assert all(d["reviews"] == 0 for d in progress.reviews_per_day(s, pid, days=3, now=NOW))
    with pytest.raises(ValueError, match="days"):
        progress.reviews_per_day(s, pid, days=0, now=NOW)


# --- Anki ------------------------------------------------------------------------------------------


def read_apkg(path, tmp_path):
    with zipfile.ZipFile(path) as z:
        z.extract("collection.anki2", tmp_path)
    con = sqlite3.connect(tmp_path / "collection.anki2")
    con.row_factory = sqlite3.Row
    return con


def test_anki_package_carries_the_schedule(deck, tmp_path):
    s, pid = deck
    sched = schedule.make_scheduler(fuzz=False)
    schedule.review(s, pid, "qa:d.md#Q1", "easy", now=NOW, scheduler=sched)  # review state
    schedule.review(s, pid, "qa:d.md#Q2", "again", now=NOW, scheduler=sched)  # learning
    cards, states = export.deck_for_export(s, "ana")
    path = export.write_anki(tmp_path / "deck.apkg", cards, states, profile="ana", now=NOW.timestamp())
    con = read_apkg(path, tmp_path)
    notes = con.execute("SELECT id, guid, mid, flds FROM notes").fetchall()
    assert len(notes) == 5 and {n["mid"] for n in notes} == {export.ANKI_MODEL_ID}
    rows = {
        n["flds"].split("\x1f")[3]: dict(con.execute("SELECT * FROM cards WHERE nid = ?", (n["id"],)).fetchone())
        for n in notes
    }
    q1, q2, q3 = rows["qa:d.md#Q1"], rows["qa:d.md#Q2"], rows["qa:d.md#Q3"]
    st = states["qa:d.md#Q1"]
    assert (q1["type"], q1["queue"], q1["reps"]) == (2, 2, 1)
    assert q1["due"] == int((st.due - export.ANKI_COLLECTION_CREATED) // 86400)
    assert json.loads(q1["data"]) == {"s": round(st.fsrs["stability"], 4), "d": round(st.fsrs["difficulty"], 4)}
    assert (q2["type"], q2["queue"]) == (1, 1) and q2["due"] == int(states["qa:d.md#Q2"].due)
    assert (q3["type"], q3["queue"], q3["due"]) == (0, 0, 2)  # new: its place in the deck
    assert {c["did"] for c in rows.values()} == {export.deck_id("ana")}
    tips = next(n for n in notes if "Tips" in n["flds"])["flds"]
    assert "<script>" not in tips and "&lt;script&gt;" in tips and "&lt;b&gt;" in tips
    # the same deck exported again: same note guids (Anki updates instead of duplicating)
    again = read_apkg(export.write_anki(tmp_path / "d2.apkg", cards, states, profile="ana"), tmp_path / "x")
    assert {r[0] for r in again.execute("SELECT guid FROM notes")} == {n["guid"] for n in notes}


# --- CSV -------------------------------------------------------------------------------------------


def test_csv_has_one_row_per_card_with_its_state(deck, tmp_path):
    s, pid = deck
    schedule.review(s, pid, "qa:d.md#Q1", "good", now=NOW)
    cards, states = export.deck_for_export(s, "ana")
    path = export.write_csv(tmp_path / "deck.csv", cards, states)
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(export.CSV_COLUMNS)
    assert [r["id"] for r in rows] == [c.id for c in cards]
    assert rows[0]["state"] == "learning" and rows[0]["reps"] == "1" and rows[0]["due"].startswith("2025-03-10T12:")
    assert rows[1]["state"] == "new" and rows[1]["due"] == ""
    assert rows[4]["back_en"] == "Use <script>x</script> & more."  # CSV is data: kept as written


# --- our progress file -----------------------------------------------------------------------------


def test_progress_file_round_trip_and_merge(deck, tmp_path):
    s, pid = deck
    sched = schedule.make_scheduler(fuzz=False)
    review_days(s, pid, sched)
    path = export.write_progress(tmp_path / "p.json", s, "ana")
    other = Store.open(tmp_path / "other")
    other.sync_cards([sc.card for sc in s.cards()][:2])  # a deck that lacks cards 3-5
    r = export.import_progress(other, "ana", path)
    assert (r.states_taken, r.reviews_added, r.unknown_cards) == (2, 4, ("qa:d.md#Q3",))
    oid = other.profile("ana").id
    assert other.state(oid, "qa:d.md#Q1") == s.state(pid, "qa:d.md#Q1")
    assert other.reviews(oid) == [rv for rv in s.reviews(pid) if rv.card_id != "qa:d.md#Q3"]
    again = export.import_progress(other, "ana", path)  # nothing twice
    assert (again.states_taken, again.states_kept, again.reviews_added) == (0, 2, 0)
    # a newer local state wins over an older file
    schedule.review(other, oid, "qa:d.md#Q2", "easy", now=NOW + timedelta(days=3), scheduler=sched)
    newer = other.state(oid, "qa:d.md#Q2")
    export.import_progress(other, "ana", path)
    assert other.state(oid, "qa:d.md#Q2") == newer
    other.close()


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00", "not JSON"),
        (b"id,kind,topic\nqa:x,qa,t\n", "not JSON"),
        (b'{"cards": []}', 'its "format" is not'),
        (b"[1, 2]", 'its "format" is not'),
        (b'{"format": "studyrag-progress", "version": 9, "states": [], "reviews": []}', "version 9"),
        (b'{"format": "studyrag-progress", "version": 1, "states": [{"card_id": "x"}], "reviews": []}', "malformed"),
        (
            b'{"format": "studyrag-progress", "version": 1, "states": [], "reviews": [{"card_id": "x", "rating": 7, '
            b'"reviewed_at": 1, "state_before": 0, "state_after": 1, "due_after": 2}]}',
            r"rating is 7; it must be from 1 to 4",
        ),
    ],
)
def test_files_that_are_not_ours_are_rejected_with_the_reason(deck, tmp_path, content, reason):
    s, pid = deck
    f = tmp_path / "in.json"
    f.write_bytes(content)
    with pytest.raises(export.ImportFileError, match=reason):
        export.import_progress(s, "ana", f)
    assert s.reviews(pid) == []


def test_missing_import_file(deck, tmp_path):
    with pytest.raises(export.ImportFileError, match="cannot read"):
        export.read_progress(tmp_path / "nope.json")
