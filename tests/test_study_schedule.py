"""FSRS scheduling: ratings, state round-trips through SQLite, the due queue and the daily new-card limit."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import fsrs
import pytest
from test_study_store import card

from study import schedule
from study.store import Store

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)
JST = timezone(timedelta(hours=9))


@pytest.fixture
def deck(tmp_path):
    s = Store.open(tmp_path / "data")
    s.sync_cards([card(i) for i in range(1, 11)])
    p = s.add_profile("ana")
    yield s, p.id
    s.close()


@pytest.fixture
def sched():
    return schedule.make_scheduler(fuzz=False)


def test_parse_rating():
    assert [schedule.parse_rating(r) for r in ("again", "Hard", " good ", "EASY", 1, "4")] == [1, 2, 3, 4, 1, 4]
    for bad in ("great", 0, 5, True, None, ""):
        with pytest.raises(ValueError, match="again, hard, good, easy"):
            schedule.parse_rating(bad)


def test_state_round_trips_through_sqlite(deck, sched, tmp_path):
    s, pid = deck
    t = NOW
    for rating in ("good", "good", "hard", "again", "good"):
        schedule.review(s, pid, "qa:d.md#Q1", rating, now=t, scheduler=sched)
        t = datetime.fromtimestamp(s.state(pid, "qa:d.md#Q1").due, timezone.utc) + timedelta(hours=1)
    stored = s.state(pid, "qa:d.md#Q1")
    s.close()
    with Store.open(tmp_path / "data") as again:  # a fresh connection, as after a restart
        reread = again.state(pid, "qa:d.md#Q1")
    assert reread == stored
    # the fsrs card rebuilt from SQLite is the card fsrs made, and schedules the same next review
    mem = fsrs.Card(card_id=schedule.fsrs_id("qa:d.md#Q1"), due=NOW)
    t = NOW
    for r in (3, 3, 2, 1, 3):
        mem, _ = sched.review_card(mem, fsrs.Rating(r), t)
        t = mem.due + timedelta(hours=1)
    assert fsrs.Card.from_dict(reread.fsrs).to_dict() == mem.to_dict()
    a, _ = sched.review_card(fsrs.Card.from_dict(reread.fsrs), fsrs.Rating.Good, t)
    b, _ = sched.review_card(mem, fsrs.Rating.Good, t)
    assert a.to_dict() == b.to_dict()
    assert (reread.reps, reread.lapses) == (5, 1)  # "again" on a card in review is a lapse


def test_review_log(deck, sched):
    s, pid = deck
    rv = schedule.review(s, pid, "qa:d.md#Q2", "easy", now=NOW, scheduler=sched, duration_ms=4200)
    assert (rv.rating, rv.state_before, rv.state_after, rv.duration_ms) == (4, 0, int(fsrs.State.Review), 4200)
    assert rv.due_after > NOW.timestamp() + 86400  # easy on a new card: days, not minutes
    assert s.reviews(pid) == [rv]


def test_unknown_card_and_naive_time(deck):
    s, pid = deck
    with pytest.raises(KeyError, match="no card"):
        schedule.review(s, pid, "qa:nope#Q1", "good", now=NOW)
    with pytest.raises(ValueError, match="timezone-aware"):
        schedule.review(s, pid, "qa:d.md#Q1", "good", now=datetime(2025, 1, 1))
    assert s.reviews(pid) == []


def test_queue_new_cards_in_order_with_a_daily_limit(deck, sched):
    s, pid = deck
    q = schedule.queue(s, pid, now=NOW, new_per_day=3, tz=timezone.utc)
    assert q.due == () and q.new == ("qa:d.md#Q1", "qa:d.md#Q2", "qa:d.md#Q3")
    for i in (1, 2, 3):
        schedule.review(s, pid, f"qa:d.md#Q{i}", "easy", now=NOW, scheduler=sched)
    q = schedule.queue(s, pid, now=NOW + timedelta(minutes=5), new_per_day=3, tz=timezone.utc)
    assert q.new == () and q.new_today == 3 and q.empty and q.next_due is not None
    tomorrow = schedule.queue(s, pid, now=NOW + timedelta(days=1), new_per_day=3, tz=timezone.utc)
    assert tomorrow.new == ("qa:d.md#Q4", "qa:d.md#Q5", "qa:d.md#Q6")


def test_due_cards_come_first_most_overdue_first(deck, sched):
    s, pid = deck
    schedule.review(s, pid, "qa:d.md#Q5", "again", now=NOW, scheduler=sched)  # due in 1 minute
    schedule.review(s, pid, "qa:d.md#Q2", "hard", now=NOW, scheduler=sched)  # due in ~6 minutes
    q = schedule.queue(s, pid, now=NOW + timedelta(hours=1), new_per_day=20)
    assert q.due == ("qa:d.md#Q5", "qa:d.md#Q2")
    assert q.next_id == "qa:d.md#Q5"
    assert schedule.next_card(s, pid, now=NOW + timedelta(hours=1)).id == "qa:d.md#Q5"


def test_learning_cards_are_shown_early_when_nothing_else_is_left(deck, sched):
    s, pid = deck
    schedule.review(s, pid, "qa:d.md#Q1", "again", now=NOW, scheduler=sched)  # learning, due in 1 minute
    q = schedule.queue(s, pid, now=NOW, new_per_day=1, tz=timezone.utc)
    assert q.due == ("qa:d.md#Q1",) and q.new == ()


def test_study_day_starts_at_four_in_the_morning_local_time():
    late = datetime(2025, 3, 2, 2, 30, tzinfo=JST)  # 02:30 on the 2nd counts for the 1st
    start, end = schedule.day_window(late, JST)
    assert datetime.fromtimestamp(start, JST) == datetime(2025, 3, 1, 4, 0, tzinfo=JST)
    assert end - start == 86400


def test_preview_orders_the_buttons(sched):
    p = schedule.preview(sched, None, "qa:d.md#Q1", NOW)
    assert list(p) == ["again", "hard", "good", "easy"]
    assert p["again"] <= p["hard"] <= p["good"] <= p["easy"]


def test_bad_settings():
    with pytest.raises(ValueError, match="desired_retention"):
        schedule.make_scheduler(desired_retention=1.5)
