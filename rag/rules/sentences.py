"""Splitting: sentences, quotable units, answer sentences and their citation markers.

Ingest (units are stored with their vectors), answers, citations and highlighting all split
with these.
"""

from __future__ import annotations

import re

from rag.rules.script import CLOSERS, WORDY

# --- sentences and units ----------------------------------------------------------------
# The marks that end a sentence in the notes' languages, full- and half-width: every rule that
# asks "does this text close its sentence?" or "where does its final punctuation start?" reads
# them here (:func:`ends_sentence`, :data:`SENTENCE_END`).
STOPS = "。．.！!？?"
SENTENCE_END = re.compile("[" + re.escape(STOPS) + "]+[" + re.escape(CLOSERS) + "]*$")
_END = re.compile(r"[。！？!?]+[" + re.escape(CLOSERS) + r"]*|\.(?=\s)|\n\s*\n")
# A unit ends at 。！？!?, at an English full stop after a letter or a digit ("… instead of fp16.
# It reduces …"), or a line end; not at the full stop of a line's number ("3.1. Heading", "### 1. 事前学習").
_UNIT_END = re.compile(r"[。！？!?]+[" + re.escape(CLOSERS) + r"]*|(?<=[^\W_])\.(?=\s)|\n")
_NUMBERING = re.compile(r"\s*(?:#{1,6}\s+|[-*+]\s+)?[\d.]*\d")
MIN_UNIT_WORD_CHARS = 2
# A line break inside an English paragraph or list item wrapped at some column ("… only the
# order of\ncomputation changes."): the line runs on in the next, so no unit ends there. It does
# when the line ends in a letter, a digit or , ; ) ` and the next continues in lower case (or a
# number, a bracket, a quote or code), neither being a heading, a table row or a fence line and
# the next no list item; a CJK line never (its notes write a line per sentence or item).
_RUNS_ON = re.compile(r"(?<=[A-Za-z0-9,;)\]`'\"’”])\n(?=[ \t]*(?![-*+•]\s|\d{1,3}[.)]\s)(?:[a-z(`'\"“‘]|\d[\d.,]*[\sA-Za-z%]))")
_BLOCK_LINE = re.compile(r"\s*(?:#|\||```|~~~)")
_FENCE_LINE = re.compile(r"[ \t]*(?:```|~~~)")


def ends_sentence(text: str) -> bool:
    """Whether ``text`` ends with a sentence stop, perhaps inside closing quotes or brackets
    (trailing space counts against it: strip first when it should not).

    >>> ends_sentence("計算資源が必要です。"), ends_sentence("「以下の通りです。」"), ends_sentence("Done."), ends_sentence("使うことで")
    (True, True, True, False)
    """
    return bool(SENTENCE_END.search(text))


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


def trim_span(text: str, s: int, e: int) -> tuple[int, int]:
    """``(s, e)`` narrowed past the white space at both ends of ``text[s:e]``."""
    while s < e and text[s].isspace():
        s += 1
    while e > s and text[e - 1].isspace():
        e -= 1
    return s, e


def _numbers_its_line(text: str, dot: int) -> bool:
    """Whether the full stop at ``dot`` ends the number its line opens with ("3.1.", "### 1.")."""
    return bool(_NUMBERING.fullmatch(text, text.rfind("\n", 0, dot) + 1, dot))


def unit_spans(text: str) -> list[tuple[int, int]]:
    """The quotable units of a passage: every line, cut again at sentence ends; spans are
    trimmed of whitespace and a unit needs at least two letters or digits.

    A bullet, a step or a heading is one unit; a paragraph line gives one unit per sentence.

    >>> t = "# 見出し\\n- 手順A\\n本文です。次の文。\\n---\\n3.1. Self-Attention. It works in fp16. It is fast."
    >>> [t[s:e] for s, e in unit_spans(t)]
    ['# 見出し', '- 手順A', '本文です。', '次の文。', '3.1. Self-Attention.', 'It works in fp16.', 'It is fast.']

    An English line wrapped inside its sentence runs on (:data:`_RUNS_ON`), outside code:

    >>> t = "It is exact; only the order of\\ncomputation changes.\\n- A list item that goes\\n  on here.\\n- Next"
    >>> [t[s:e] for s, e in unit_spans(t)]
    ['It is exact; only the order of\\ncomputation changes.', '- A list item that goes\\n  on here.', '- Next']
    """
    out: list[tuple[int, int]] = []
    s = 0
    for m in [*_UNIT_END.finditer(text), None]:
        e = m.end() if m is not None else len(text)
        if e <= s and m is not None:
            continue
        if m is not None and m.group() == "." and _numbers_its_line(text, m.start()):
            continue  # the number of a step or a heading, not a sentence's end
        if m is not None and m.group() == "\n" and runs_on(text, m.start()):
            continue
        a, b = trim_span(text, s, e)
        if len(WORDY.findall(text[a:b])) >= MIN_UNIT_WORD_CHARS:
            out.append((a, b))
        s = e
    return out


def runs_on(text: str, nl: int) -> bool:
    """Whether the line break at ``nl`` wraps an English sentence (:data:`_RUNS_ON`): not in a
    fenced block, not after a heading or a table row, not before one or a fence. Units run on
    over it, and the notes are shown without it.

    >>> runs_on("only the order of\\ncomputation changes.", 17), runs_on("**類似度**\\n2つのベクトル", 8)
    (True, False)
    """
    if not _RUNS_ON.match(text, nl):
        return False
    start = text.rfind("\n", 0, nl) + 1
    end = text.find("\n", nl + 1)
    if _BLOCK_LINE.match(text, start) or _BLOCK_LINE.match(text, nl + 1, end if end >= 0 else len(text)):
        return False
    fences = sum(1 for line in text[:start].split("\n") if _FENCE_LINE.match(line))
    return fences % 2 == 0


# --- sentences that lean on the one before -------------------------------------------------
# A sentence that opens by pointing back (「この制限を…」「そこで、…」「这种机制…」 "These methods …"),
# perhaps after a short topic (「RAGでは、この制限を以下の流れで克服します」): quoted alone, the
# reader never learns what 「この制限」 is.
_BACK = re.compile(
    r"^(?:(?:この|その|これら|こうした|そうした|上記の|前述の)[^\s、。]{1,8}(?:を|は|が|に|で|の)"
    r"|そこで|このため|そのため|これにより|これらに|それにより"
    r"|这(?:些|种|个|样|一)|此外|因此|该"
    r"|(?:this|these|those|such)\s+\w+|thus|therefore)",
    re.I,
)
_TOPIC = re.compile(r"^[^、，,。]{1,12}[、，,]\s*")
# The follow-up facet rule's test (rag.answer._on_facet): any opening word that points back,
# 「这减少了…」 "It reduces…", takes the unit before it. Wider at the start than refers_back, which
# decides whether a quoted sentence brings its paragraph and so wants a pointing phrase.
POINTS_BACK = re.compile(r"^(?:这|那|此|これ|それ|この|その|こうした|(?:this|these|that|those|it|they)\b)", re.I)


def refers_back(sentence: str) -> bool:
    """Whether ``sentence`` opens by pointing at what came before it (so it needs that to be read).

    >>> refers_back("RAGでは、この制限を以下の流れで克服します"), refers_back("そこで、追加学習が行われます。")
    (True, True)
    >>> refers_back("这种机制改善了上下文理解。"), refers_back("These methods keep the knowledge.")
    (True, True)
    >>> refers_back("RAGは検索と生成を組み合わせます。"), refers_back("The model predicts the next token.")
    (False, False)
    """
    s = sentence.strip()
    return bool(_BACK.search(s) or _BACK.search(_TOPIC.sub("", s, count=1)))


# --- citation markers ---------------------------------------------------------------------
MARKER = re.compile(r"\[(\d+(?:\s*[,，、]\s*\d+)*)\]")
_MARKERS_TAIL = r"(?:\s*\[\d+(?:\s*[,，、]\s*\d+)*\])*"
# An answer sentence ends at 。！？!? (any run), at a full stop followed by space, the end or a
# marker — not the one of a numbered item's mark ("2. 取得した文書を…") — or at a line break.
# Closing quotes and citation markers right after the stop belong to it.
_ANSWER_END = re.compile(r"(?:[。！？!?]+|(?<!^\d)(?<!^\d\d)(?<!^\d\d\d)\.(?=\s|\Z|\[\d))["
                         + re.escape(CLOSERS) + r"]*" + _MARKERS_TAIL + r"|\n+", re.M)


# A code block quoted in an answer: its fences, the lines between, and the markers after it.
CODE_BLOCK = re.compile(r"(^```[^\n]*\n.*?\n```" + _MARKERS_TAIL + r")", re.M | re.S)


# The lines of a fenced block quoted in an answer: code, where "[0]" is an index, not a marker.
_CODE_BODY = re.compile(r"^```[^\n]*\n.*?\n```", re.M | re.S)


def markers_in(text: str) -> list[int]:
    """Every passage number cited in ``text`` (``[2]``, ``[1, 3]``), in order; none inside a
    quoted code block (``x[0]`` is code).

    >>> markers_in("A [1]. B [2, 3]。"), markers_in("```\\nout[0]\\n``` [2]")
    ([1, 2, 3], [2])
    """
    out: list[int] = []
    for m in MARKER.finditer(_CODE_BODY.sub("", text)):
        out.extend(int(n) for n in re.split(r"\s*[,，、]\s*", m.group(1)))
    return out


def unmark(text: str) -> str:
    """``text`` quoted from the notes with its bracketed numbers in full-width brackets, so that
    they never read as citation markers (a note's own "[7]" or "Sources: [1] …").

    >>> unmark("Attention weighs tokens [7]. Sources: [1, 2]")
    'Attention weighs tokens ［7］. Sources: ［1, 2］'
    """
    return MARKER.sub(lambda m: f"［{m.group(1)}］", text)


def strip_markers(text: str) -> str:
    """``text`` without citation markers (and the space before them), a quoted code block as it is.

    >>> strip_markers("A [1].\\n```\\nout[0]\\n``` [2]")
    'A.\\n```\\nout[0]\\n```'
    """
    pieces = _CODE_BODY.split(text)
    codes = _CODE_BODY.findall(text)
    strip = lambda s: re.sub(r"\s*" + MARKER.pattern, "", s)
    return "".join(strip(p) + (codes[k] if k < len(codes) else "") for k, p in enumerate(pieces))


def answer_sentences(text: str) -> list[str]:
    """Split an answer on 。！？.!? and line breaks; markers stay with their sentence.

    >>> answer_sentences("AはBです[1]。Cです。[2] It is D [3]. E")
    ['AはBです[1]。', 'Cです。[2]', 'It is D [3].', 'E']
    >>> answer_sentences("手順[1]\\n1. 取得[1]\\n12. 生成[1]")
    ['手順[1]', '1. 取得[1]', '12. 生成[1]']
    """
    out: list[str] = []
    for k, piece in enumerate(CODE_BLOCK.split(text)):
        if k % 2:  # a quoted code block, with the markers after its closing fence, is one sentence
            out.append(piece.strip())
            continue
        pos = 0
        for m in _ANSWER_END.finditer(piece):
            seg = piece[pos : m.end()].strip()
            pos = m.end()
            if seg:
                out.append(seg)
        tail = piece[pos:].strip()
        if tail:
            out.append(tail)
    merged: list[str] = []
    for s in out:
        if not WORDY.search(MARKER.sub("", s)):
            # Markers or punctuation alone ("[2]" on its own line) belong to the sentence before.
            if merged and MARKER.search(s):
                merged[-1] = f"{merged[-1]} {s}"
            continue
        merged.append(s)
    return merged
