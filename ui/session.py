"""The app's session state: one typed object per page, and one for the learner.

Each object lives in ``st.session_state`` under its class name (:func:`get` makes it on first
use); pages read and write its fields instead of raw keys. Widget values stay under the
widgets' own keys (Streamlit binds them there); a page's state names the widget keys it owns
(``WIDGETS``, prefixes), so :func:`reset` clears those too. Switching learner resets the
learner's pages (:data:`LEARNER_PAGES`) — their objects, not keys picked by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import streamlit as st

GOTO = "goto"  # programmatic navigation: the key of a page to switch to (buttons, tests)

T = TypeVar("T")


def _key(cls: type) -> str:
    return f"_state.{cls.__name__}"


def get(cls: type[T]) -> T:
    """The session's ``cls`` state object (a fresh one on first use)."""
    ss = st.session_state
    obj = ss.get(_key(cls))
    if not isinstance(obj, cls):
        obj = ss[_key(cls)] = cls()
    return obj


def reset(*classes: type) -> None:
    """Fresh state objects for ``classes`` and their widgets' values forgotten."""
    ss = st.session_state
    prefixes = tuple(p for cls in classes for p in getattr(cls, "WIDGETS", ()))
    for cls in classes:
        ss[_key(cls)] = cls()
    if prefixes:
        for k in [k for k in ss if isinstance(k, str) and k.startswith(prefixes)]:
            del ss[k]


def navigate(page: str) -> None:
    """Ask the entry point to show ``page`` on the next run."""
    st.session_state[GOTO] = page


def take_navigation() -> str | None:
    """The page asked for by :func:`navigate` (once)."""
    return st.session_state.pop(GOTO, None)


@dataclass
class Learner:
    """Who is studying, and what the address asked for on the session's first run."""

    initialised: bool = False
    profile: str | None = None
    want_profile: str | None = None  # from the address, until the store is open
    unknown_profile: str | None = None  # the address named a learner nobody is: asked about, joins nobody
    want_chat: int | None = None  # the conversation the address names, until it is loaded
    store_error: str | None = None


@dataclass
class Chat:
    """The Ask page: the open conversation and what the next run should do with it."""

    turns: list | None = None  # the answers, oldest first (None: not loaded yet)
    conv_id: int | None = None
    pending_question: str | None = None  # a suggested question clicked, asked on the next run
    scroll_turn: int | None = None  # the turn to scroll to (-1: the last)
    clear_box: bool = False  # empty the question box on the next run
    unsaved: dict = field(default_factory=dict)  # turn -> why it could not be saved (the store refused the write)


@dataclass
class Quiz:
    WIDGETS: ClassVar[tuple[str, ...]] = ("quiz",)

    questions: list | None = None
    i: int = 0
    answers: list = field(default_factory=list)
    checked: bool = False
    lang: str | None = None
    n: int | None = None  # the size it was made with (a new choice makes a new quiz at once)


@dataclass
class Flashcards:
    WIDGETS: ClassVar[tuple[str, ...]] = ("fc_",)

    shown: str | None = None  # the card whose answer is showing
    started: float | None = None  # when it was shown (for the review's duration)
    saved: str | None = None  # the rating just saved, to confirm once


@dataclass
class Drill:
    WIDGETS: ClassVar[tuple[str, ...]] = ("drill",)

    ref: Any = None  # the notes' reference for ref_key's question
    ref_key: tuple | None = None  # (index build, question)
    result: tuple | None = None  # (question, grade)


@dataclass
class Uploads:
    """Add documents: the uploader's generation (a new one clears it) and the last messages."""

    round: int = 0
    messages: list = field(default_factory=list)
    job: Any = None  # ingest.uploads.AddJob of a PDF/slides/Word/web upload being read in the background


@dataclass
class Transfer:
    """Export & import: the import uploader's generation and the last messages."""

    round: int = 0
    messages: list = field(default_factory=list)
    pending: tuple | None = None  # (file name, bytes) of another learner's file, until the learner says import it


@dataclass
class Bench:
    log: str | None = None  # the quick benchmark's output
    done: str | None = None  # seconds it took, to report once
    pick_next: str | None = None  # the report to select on the next run


@dataclass
class Sources:
    target: dict | None = None  # the passage to show: doc_id, start, end, spans, back


LEARNER_PAGES = (Chat, Quiz, Flashcards, Drill)
