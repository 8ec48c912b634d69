"""Sentence spans for CJK and English text (used by the chunker and the reranker)."""

from __future__ import annotations

import re

_END = re.compile(r"[。！？!?]+[」』）)\"']*|\.(?=\s)|\n\s*\n")


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Split ``text[start:end]`` after ``。！？!?``, an English full stop, or a blank line.

    >>> t = "Aです。Bですか？ C. D"
    >>> [t[s:e].strip() for s, e in sentence_spans(t)]
    ['Aです。', 'Bですか？', 'C.', 'D']
    """
    end = len(text) if end is None else end
    spans, s = [], start
    for m in _END.finditer(text, start, end):
        if m.end() > s:
            spans.append((s, m.end()))
            s = m.end()
    if s < end:
        spans.append((s, end))
    return spans
