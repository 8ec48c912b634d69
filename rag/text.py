"""Text rules, in one place: CJK character classes, sentence and unit splitting, Markdown
decoration. Ingest, search, answers and highlighting all use these (never a copy).
"""

from __future__ import annotations

import re

# --- character classes ------------------------------------------------------------------
KANA_CLASS = "\u3040-\u309f\u30a0-\u30ff\uff66-\uff9f"
HAN_CLASS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
CJK_CLASS = KANA_CLASS + HAN_CLASS
KANA = re.compile(f"[{KANA_CLASS}]")
HAN = re.compile(f"[{HAN_CLASS}]")
CJK = re.compile(f"[{CJK_CLASS}]")
WORDY = re.compile(r"[^\W_]", re.UNICODE)
CLOSERS = "」』）)\"'”’】"

# --- sentences and units ----------------------------------------------------------------
_END = re.compile(r"[。！？!?]+[" + re.escape(CLOSERS) + r"]*|\.(?=\s)|\n\s*\n")
_UNIT_END = re.compile(r"[。！？!?]+[" + re.escape(CLOSERS) + r"]*|\.(?=\s)|\n")
MIN_UNIT_WORD_CHARS = 2


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Split ``text[start:end]`` after ``。！？!?``, an English full stop, or a blank line.
    The spans tile the range (whitespace stays with the sentence before it).

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


def unit_spans(text: str) -> list[tuple[int, int]]:
    """The quotable units of a passage: every line, cut again at sentence ends; spans are
    trimmed of whitespace and a unit needs at least two letters or digits.

    A bullet, a step or a heading is one unit; a paragraph line gives one unit per sentence.

    >>> t = "# 見出し\\n- 手順A\\n本文です。次の文。\\n---"
    >>> [t[s:e] for s, e in unit_spans(t)]
    ['# 見出し', '- 手順A', '本文です。', '次の文。']
    """
    out: list[tuple[int, int]] = []
    s = 0
    for m in [*_UNIT_END.finditer(text), None]:
        e = m.end() if m is not None else len(text)
        if e <= s and m is not None:
            continue
        a, b = s, e
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if len(WORDY.findall(text[a:b])) >= MIN_UNIT_WORD_CHARS:
            out.append((a, b))
        s = e
    return out


# --- Markdown decoration ----------------------------------------------------------------
FENCE = re.compile(r"^\s*(```|~~~)")
BULLET = re.compile(r"^\s*(?:[-*+•・●◦]|\d{1,3}[.)、．]|[（(]\d{1,3}[)）])\s*")
_EMPH = re.compile(r"(\*\*|__|\*|`)")
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")


def plain(line: str) -> str:
    """A line without Markdown decoration: heading marks, quote marks, bullets and
    numbering, emphasis, links.

    >>> plain("- **RAG**: [検索](http://x)で補う")
    'RAG: 検索で補う'
    """
    line = line.strip()
    line = re.sub(r"^#{1,6}\s*", "", line)
    line = re.sub(r"^>\s*", "", line)
    line = BULLET.sub("", line, count=1) if BULLET.match(line) and not re.match(r"^\d+(\.\d+)+", line) else line
    line = _LINK.sub(r"\1", line)
    line = _EMPH.sub("", line)
    return re.sub(r"\s+", " ", line).strip()
