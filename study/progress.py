"""Progress figures for a profile, as plain dicts and lists (a page can plot them as it likes).

* :func:`due_today` — cards due now and by the end of the study day, new cards left today;
* :func:`reviews_per_day` — reviews per study day (and how many were "again");
* :func:`retention` — the share of reviews of cards already learned that were remembered
  (not rated "again"): Anki's "true retention";
* :func:`mastery_by_topic` — per topic: cards, seen, mature (FSRS stability ≥ 21 days), and
  mastery = the mean predicted recall probability now (0 for unseen cards).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone, tzinfo

from study import schedule
from study.store import Store

MATURE_DAYS = 21.0  # a card whose memory lasts three weeks counts as mastered (Anki's "mature")


def _now(now: datetime | None) -> datetime:
    return schedule.as_utc(now)


def _day(ts: float, tz: tzinfo | None) -> str:
    """The study day (starting at DAY_START_HOUR) of epoch ``ts``, as YYYY-MM-DD."""
    local = datetime.fromtimestamp(ts, timezone.utc).astimezone(tz) - timedelta(hours=schedule.DAY_START_HOUR)
    return local.date().isoformat()


def due_today(
    store: Store,
    profile_id: int,
    *,
    now: datetime | None = None,
    new_per_day: int = schedule.DEFAULT_NEW_PER_DAY,
    tz: tzinfo | None = None,
) -> dict:
    now = _now(now)
    t = now.timestamp()
    start, end = schedule.day_window(now, tz)
    started = store.introduced(profile_id, start, end)
    return {
        "due_now": len(store.due_ids(profile_id, t)),
        "due_today": len(store.due_ids(profile_id, end - 1e-6)),
        "new_left_today": min(len(store.new_ids(profile_id)), max(0, new_per_day - started)),
        "new_started_today": started,
        "cards": len(store.cards()),
    }


def reviews_per_day(
    store: Store, profile_id: int, *, days: int = 30, now: datetime | None = None, tz: tzinfo | None = None
) -> list[dict]:
    """``[{"date", "reviews", "again"}]`` for the last ``days`` study days, oldest first (zeros included)."""
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    now = _now(now)
    _, end = schedule.day_window(now, tz)
    since = end - days * 86400
    count, again = Counter(), Counter()
    for r in store.reviews(profile_id, since=since, until=end):
        d = _day(r.reviewed_at, tz)
        count[d] += 1
        again[d] += r.rating == schedule.RATINGS["again"]
    dates = [_day(end - (days - k) * 86400 + 3600 * 12, tz) for k in range(days)]
    return [{"date": d, "reviews": count[d], "again": again[d]} for d in dates]


def retention(store: Store, profile_id: int, *, days: int = 30, now: datetime | None = None) -> dict:
    """``{"reviews", "remembered", "retention"}`` over the last ``days`` days: reviews of cards in
    the review state (new and learning steps excluded); ``retention`` is ``None`` without any."""
    now = _now(now)
    import fsrs

    rs = [r for r in store.reviews(profile_id, since=now.timestamp() - days * 86400) if r.state_before == fsrs.State.Review]
    kept = sum(r.rating != schedule.RATINGS["again"] for r in rs)
    return {"reviews": len(rs), "remembered": kept, "retention": kept / len(rs) if rs else None}


def mastery_by_topic(store: Store, profile_id: int, *, now: datetime | None = None, scheduler=None) -> list[dict]:
    """``[{"topic", "cards", "seen", "mature", "mastery"}]`` in corpus order of first appearance."""
    import fsrs

    now = _now(now)
    sched = scheduler if scheduler is not None else schedule.make_scheduler()
    states = store.states(profile_id)
    agg: dict[str, dict] = defaultdict(lambda: {"cards": 0, "seen": 0, "mature": 0, "recall": 0.0})
    order: list[str] = []
    for sc in store.cards():
        topic = sc.card.topic
        if topic not in agg:
            order.append(topic)
        a = agg[topic]
        a["cards"] += 1
        st = states.get(sc.card.id)
        if st is None:
            continue
        card = fsrs.Card.from_dict(st.fsrs)
        a["seen"] += 1
        a["mature"] += int(card.state == fsrs.State.Review and (card.stability or 0.0) >= MATURE_DAYS)
        a["recall"] += float(sched.get_card_retrievability(card, now))
    return [
        {
            "topic": t,
            "cards": agg[t]["cards"],
            "seen": agg[t]["seen"],
            "mature": agg[t]["mature"],
            "mastery": agg[t]["recall"] / agg[t]["cards"],
        }
        for t in order
    ]


def summary(
    store: Store, profile_id: int, *, now: datetime | None = None, days: int = 30, tz: tzinfo | None = None
) -> dict:
    """All of the above in one dict (what ``studyrag study progress`` prints)."""
    return {
        "due": due_today(store, profile_id, now=now, tz=tz),
        "reviews_per_day": reviews_per_day(store, profile_id, days=days, now=now, tz=tz),
        "retention": retention(store, profile_id, days=days, now=now),
        "mastery": mastery_by_topic(store, profile_id, now=now),
    }
