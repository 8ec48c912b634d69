"""Spaced repetition with FSRS (the ``fsrs`` package, the scheduler Anki uses).

A learner rates a card Again / Hard / Good / Easy; :func:`review` applies the rating to the
profile's stored state inside one write transaction (read, schedule, write, log), so two
sessions rating at once both count. :func:`queue` is what to show next: cards due now, then
new cards up to a daily limit, in corpus order.

FSRS: J. Ye, J. Su, Y. Cao, "A Stochastic Shortest Path Algorithm for Optimizing Spaced
Repetition Scheduling", KDD 2022; the open-spaced-repetition/py-fsrs implementation.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo

from study.store import CardState, Review, Store
from study.types import Card

RATINGS = {"again": 1, "hard": 2, "good": 3, "easy": 4}
RATING_NAMES = {v: k for k, v in RATINGS.items()}
STATE_NAMES = {0: "new", 1: "learning", 2: "review", 3: "relearning"}
DEFAULT_NEW_PER_DAY = 20
DESIRED_RETENTION = 0.9
DAY_START_HOUR = 4  # a study day starts at 4 am local time, as in Anki (late-night reviews count for the day)
LEARN_AHEAD_S = 20 * 60  # when nothing else is left, learning cards due within this are shown early


def parse_rating(rating: str | int) -> int:
    """1–4 from ``"again"|"hard"|"good"|"easy"`` (any case) or the number itself."""
    if isinstance(rating, bool):
        raise ValueError(f"rating must be one of again, hard, good, easy (or 1-4), got {rating!r}")
    if isinstance(rating, int) and rating in RATING_NAMES:
        return rating
    if isinstance(rating, str):
        r = rating.strip().lower()
        if r in RATINGS:
            return RATINGS[r]
        if r in ("1", "2", "3", "4"):
            return int(r)
    raise ValueError(f"rating must be one of again, hard, good, easy (or 1-4), got {rating!r}")


def make_scheduler(*, desired_retention: float = DESIRED_RETENTION, fuzz: bool = True):
    """An ``fsrs.Scheduler`` with the default FSRS-6 parameters."""
    if not 0.7 <= desired_retention <= 0.99:
        raise ValueError(f"desired_retention must be between 0.7 and 0.99, got {desired_retention}")
    import fsrs

    return fsrs.Scheduler(desired_retention=desired_retention, enable_fuzzing=fuzz)


def as_utc(now: datetime | None) -> datetime:
    """``now`` in UTC (now if ``None``); a naive time is refused rather than guessed."""
    if now is None:
        return datetime.now(timezone.utc)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (e.g. datetime.now(timezone.utc))")
    return now.astimezone(timezone.utc)


def fsrs_id(card_id: str) -> int:
    """A stable integer for the string card id (FSRS and Anki want integers)."""
    return int(hashlib.sha1(card_id.encode()).hexdigest()[:12], 16)


def to_fsrs(state: CardState | None, card_id: str, now: datetime):
    """The ``fsrs.Card`` of a stored state (a fresh one, due ``now``, for a new card)."""
    import fsrs

    if state is None:
        return fsrs.Card(card_id=fsrs_id(card_id), due=now)
    return fsrs.Card.from_dict(state.fsrs)


def apply_rating(
    scheduler,
    state: CardState | None,
    card_id: str,
    rating: str | int,
    now: datetime | None = None,
    *,
    duration_ms: int | None = None,
) -> tuple[CardState, Review]:
    """The state after rating the card at ``now``, and the review to log. Pure: nothing is stored."""
    import fsrs

    r = parse_rating(rating)
    now = as_utc(now)
    before = to_fsrs(state, card_id, now)
    after, _ = scheduler.review_card(before, fsrs.Rating(r), now)
    t = now.timestamp()
    was = 0 if state is None else int(before.state)
    lapse = int(was == int(fsrs.State.Review) and r == RATINGS["again"])
    new = CardState(
        card_id=card_id,
        fsrs=after.to_dict(),
        due=after.due.timestamp(),
        reps=(0 if state is None else state.reps) + 1,
        lapses=(0 if state is None else state.lapses) + lapse,
        first_review=t if state is None or state.first_review is None else state.first_review,
        last_review=t,
    )
    return new, Review(card_id, r, t, was, int(after.state), new.due, duration_ms)


def review(
    store: Store,
    profile_id: int,
    card_id: str,
    rating: str | int,
    *,
    now: datetime | None = None,
    scheduler=None,
    duration_ms: int | None = None,
) -> Review:
    """Rate ``card_id`` for the profile and store it: read, schedule and write in one transaction,
    so a rating made meanwhile in another session is built on, never overwritten."""
    sched = scheduler if scheduler is not None else make_scheduler()
    with store.write() as conn:
        if store.card(card_id, conn=conn) is None:
            raise KeyError(f"no card {card_id!r} in the study store")
        new, rv = apply_rating(
            sched, store.state(profile_id, card_id, conn=conn), card_id, rating, now, duration_ms=duration_ms
        )
        store.put_state(conn, profile_id, new)
        store.add_review(conn, profile_id, rv)
    return rv


def preview(scheduler, state: CardState | None, card_id: str, now: datetime | None = None) -> dict[str, datetime]:
    """When the card would next be due for each rating (for the buttons' labels)."""
    now = as_utc(now)
    return {
        name: datetime.fromtimestamp(apply_rating(scheduler, state, card_id, r, now)[0].due, timezone.utc)
        for name, r in RATINGS.items()
    }


def day_window(now: datetime | None = None, tz: tzinfo | None = None) -> tuple[float, float]:
    """Epoch seconds ``[start, end)`` of the study day containing ``now`` (starting at
    :data:`DAY_START_HOUR` local time, or in ``tz``)."""
    local = as_utc(now).astimezone(tz)
    start = local.replace(hour=DAY_START_HOUR, minute=0, second=0, microsecond=0)
    if local < start:
        start -= timedelta(days=1)
    return start.timestamp(), (start + timedelta(days=1)).timestamp()


@dataclass(frozen=True)
class Queue:
    """What to study now: ``due`` (ids, most overdue first), then ``new`` (ids, today's share)."""

    due: tuple[str, ...]
    new: tuple[str, ...]
    new_today: int  # new cards already started today
    new_per_day: int
    next_due: float | None  # epoch seconds of the soonest later review, when nothing is due now

    @property
    def next_id(self) -> str | None:
        return self.due[0] if self.due else self.new[0] if self.new else None

    @property
    def empty(self) -> bool:
        return self.next_id is None


def queue(
    store: Store,
    profile_id: int,
    *,
    now: datetime | None = None,
    new_per_day: int = DEFAULT_NEW_PER_DAY,
    tz: tzinfo | None = None,
) -> Queue:
    """Cards due now, then never-seen cards in corpus order, at most ``new_per_day`` started a day."""
    if new_per_day < 0:
        raise ValueError(f"new_per_day must be >= 0, got {new_per_day}")
    now_u = as_utc(now)
    t = now_u.timestamp()
    start, end = day_window(now_u, tz)
    started = store.introduced(profile_id, start, end)
    due = store.due_ids(profile_id, t)
    new = store.new_ids(profile_id)[: max(0, new_per_day - started)]
    if not due and not new:
        due = store.due_ids(profile_id, t + LEARN_AHEAD_S)
        due = [i for i in due if store.state(profile_id, i).fsrs.get("state") in (1, 3)]
    later = store.next_due(profile_id, t)
    return Queue(tuple(due), tuple(new), started, new_per_day, None if due or new else later)


def next_card(store: Store, profile_id: int, **kwargs) -> Card | None:
    """The card to show next (see :func:`queue`), or ``None`` when the day's work is done."""
    nid = queue(store, profile_id, **kwargs).next_id
    if nid is None:
        return None
    stored = store.card(nid)
    return None if stored is None else stored.card
