"""The text rules under the names the code has always imported them by. Each rule is defined
once, in the :mod:`rag.rules` module for its kind; this module only re-exports them.
"""

from __future__ import annotations

from rag.rules.names import distinctive_terms
from rag.rules.normalize import normalize, squash
from rag.rules.questions import EN_STOP, QUESTION_WORDS, ZH_STOP, search_text
from rag.rules.script import CJK, CJK_CLASS, CLOSERS, HAN, HAN_CLASS, KANA, KANA_CLASS, WORDY
from rag.rules.sentences import (
    MARKER,
    MIN_UNIT_WORD_CHARS,
    answer_sentences,
    markers_in,
    sentence_spans,
    strip_markers,
    trim_span,
    unit_spans,
)
from rag.rules.structure import BULLET, FENCE, NOTE_LINE, plain

__all__ = [
    "BULLET", "CJK", "CJK_CLASS", "CLOSERS", "EN_STOP", "FENCE", "HAN", "HAN_CLASS", "KANA", "KANA_CLASS", "MARKER",
    "MIN_UNIT_WORD_CHARS", "NOTE_LINE", "QUESTION_WORDS", "WORDY", "ZH_STOP", "answer_sentences", "distinctive_terms",
    "markers_in", "normalize", "plain", "search_text", "sentence_spans", "squash", "strip_markers", "trim_span",
    "unit_spans",
]  # fmt: skip
