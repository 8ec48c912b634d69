"""Follow-up questions: 「それの欠点は？」, "它有什么缺点?", "What are its limitations?".

A follow-up leans on the previous question: it opens with (or contains) a reference word
(それ/その/これ/この/它/这个/那个/its/it/that/this/they …), or it is so short that it names
no topic of its own (「欠点は？」, "and the drawbacks?"). It is searched together with the
previous question; the extraction then quotes only what is new (see :mod:`rag.answer`).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from rag.text import CJK, QUESTION_WORDS

_JA_ZH_CUES = re.compile(
    r"^(?:じゃあ|では|では、|それでは|なら|それ|その|これ|この|あれ|あの|そいつ|そっち|"
    r"它|它们|这个|那个|这|那|这种|那种|此|其|那么|那它|然后)"
)
_JA_ZH_INSIDE = re.compile(r"(?:それ|その|これ|この|它|它们|这个|那个|这种|那种)")
_EN_CUES = re.compile(
    r"\b(?:it|its|it's|itself|that|this|these|those|they|them|their|the former|the latter)\b", re.I
)
_EN_OPENERS = re.compile(r"^(?:and|also|so|then|what about|how about|and what about|why|but)\b", re.I)
MAX_CJK_CHARS = 14  # a CJK question this short is a follow-up when it names no known topic
MAX_WORDS = 8


def is_followup(question: str, analyze: Callable[[str], list[str]] | None = None,
                known: Callable[[str], bool] | None = None) -> bool:
    """Whether ``question`` leans on the previous one.

    ``analyze`` is the index analyzer and ``known(term)`` says whether the notes contain a
    term: a short question whose every topic word is unknown or generic (「欠点は？」) is a
    follow-up; a short question naming a topic of the notes (「RAGとは？」) is not.

    >>> is_followup("それの欠点は？"), is_followup("What are its limitations?"), is_followup("RAGとは？")
    (True, True, False)
    """
    q = question.strip()
    cjk = len(CJK.findall(q))
    words = re.findall(r"[A-Za-z][\w\-+.']*", q)
    if cjk:
        if _JA_ZH_CUES.match(q) or (cjk <= 2 * MAX_CJK_CHARS and _JA_ZH_INSIDE.search(q)):
            return True
        if _EN_CUES.search(q) and len(words) <= MAX_WORDS:
            return True
    elif words:
        if len(words) <= 2 * MAX_WORDS and (_EN_CUES.search(q) or _EN_OPENERS.match(q)):
            return True
    short = (cjk and cjk <= MAX_CJK_CHARS and len(words) <= 1) or (not cjk and len(words) <= 3)
    if short and analyze is not None:
        topics = [t for t in analyze(q) if not t.startswith("~") and t not in QUESTION_WORDS and len(t) > 1]
        if not topics:
            return True
        if known is not None and not any(known(t) for t in topics):
            return True
    return False


def combined_query(question: str, previous: str, *, max_chars: int = 400) -> str:
    """What to search for a follow-up: the previous question, then this one."""
    return f"{previous.strip()[-max_chars:]} {question.strip()}"
