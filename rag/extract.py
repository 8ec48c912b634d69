"""Query-focused extraction: which sentences of the retrieved passages answer the question.

Every unit (line or sentence, stored with its vector and document span at ingest) of the
top passages is classified (:func:`unit_kind`: questions, headings, code and table rows
are never quoted) and scored against the question: its cosine with the query vector, plus
a bonus for the question's distinctive terms it contains. The answer is composed from the
units that score close to the best one, across passages, in document order within each
passage; a Q&A item whose own question matches the question is quoted whole (its answer
body is short), a list is kept together with its lead-in, and a comparison question gets
both of its sides. Pure functions of the index, the query and the hits.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from rag.index import Index
from rag.text import BULLET, FENCE, QUESTION_WORDS, WORDY, normalize, plain
from rag.types import Chunk, Query

# Tuned on the answer benchmark's dev half (``python -m eval answers --split dev``); see
# eval/results/answers.md.
UNIT_MARGIN = 0.035  # a unit is quoted when its score is within this of the best unit's
TERM_BONUS = 0.04  # added to a unit's cosine x the share of the question's terms it contains
QA_MATCH = 0.86  # cosine of the question and a Q&A item's own question above which the item is quoted whole
SECOND_PASSAGE = 0.02  # another passage is quoted only if its best unit is within this of the best
MAX_PASSAGES = 3
MAX_UNITS = 8
MAX_LIST_ITEMS = 12
MAX_CHARS = 900

_QA_LINE = re.compile(r"^\s*(?:\d{1,3}[.)．]\s*\*\*|(?:问题|問題|质问|質問|Q)\s*\d{1,3}\s*[:：.．、])")
_SECTION_LINE = re.compile(r"^\s*(?:\d{1,2}(?:\.\d{1,2})*\.?\s+\S|課題\s*\d+\s*[:：]|#)")
_SENT_END = tuple("。．.！!？?")
_QUESTION_END = re.compile(r"[？?][" + re.escape("」』）)\"'”’】*") + r"]*$")
_COMPARE = (
    re.compile(r"(?P<a>[^、，,。？?\s]{1,30}?)\s*(?:と|や)\s*(?P<b>[^、，,。？?\s]{1,30}?)\s*(?:の|は)?\s*(?:違い|ちがい|差|比較|区別)"),
    re.compile(r"(?P<a>[^、，,。？?\s]{1,30}?)\s*(?:和|与|跟|同|及)\s*(?P<b>[^、，,。？?\s]{1,30}?)\s*(?:的|之间的|有)?\s*(?:什么)?\s*(?:区别|不同|差异|比较|对比|异同)"),
    re.compile(r"difference(?:s)?\s+between\s+(?P<a>.+?)\s+and\s+(?P<b>.+?)(?:\?|$|\s+in\b|\s+for\b)", re.I),
    re.compile(r"(?P<a>[\w\-.+ ]{1,40}?)\s+(?:vs\.?|versus)\s+(?P<b>[\w\-.+ ]{1,40})", re.I),
    re.compile(r"compare\s+(?P<a>.+?)\s+(?:and|with|to)\s+(?P<b>.+?)(?:\?|$)", re.I),
)


@dataclass(frozen=True)
class Unit:
    """A quotable piece of a passage: document span, text, kind, and how well it answers."""

    row: int  # the chunk's row in the index
    index: int  # position among the chunk's units
    start: int
    end: int
    text: str
    kind: str  # text | bullet | lead | heading | question | code | table
    score: float = 0.0

    @property
    def quotable(self) -> bool:
        return self.kind in ("text", "bullet", "lead")


def unit_kind(chunk: Chunk, line: str, unit: str, in_code: bool) -> str:
    """What a unit is, from its own text and the line it sits on."""
    if in_code or FENCE.match(line):
        return "code"
    s = line.strip()
    if s.startswith("|"):
        return "table"
    if s.startswith("#") or _QA_LINE.match(s):
        return "heading"
    u = plain(unit)
    if chunk.heading and (u == plain(chunk.heading) or (len(u) >= 4 and u in plain(chunk.heading))):
        return "heading"
    if _QUESTION_END.search(unit.strip()):
        return "question"
    if _SECTION_LINE.match(s) and not s.endswith(_SENT_END) and len(s) <= 60 and not BULLET.match(s.split(" ")[0] + " "):
        return "heading"
    if len(WORDY.findall(u)) < 4:
        return "heading" if not BULLET.match(s) else "bullet"
    if u.endswith((":", "：")):
        return "lead"
    if BULLET.match(s):
        return "bullet"
    return "text"


def chunk_units(index: Index, row: int) -> list[Unit]:
    """The units of chunk ``row`` with their kinds (scores 0)."""
    chunk = index.chunks[row]
    doc = index.documents[chunk.doc_id].text
    text = chunk.text
    # the line each unit sits on, and whether that line is inside a code fence
    line_at: list[tuple[int, int, bool]] = []
    pos, in_code = 0, False
    for line in text.split("\n"):
        fence = bool(FENCE.match(line))
        line_at.append((pos, pos + len(line), in_code and not fence))
        if fence:
            in_code = not in_code
        pos += len(line) + 1
    out = []
    for k, (s, e) in enumerate(index.chunk_unit_spans(row)):
        s, e = int(s), int(e)
        rel = s - chunk.start
        ls, le, code = next(((a, b, c) for a, b, c in line_at if a <= rel <= b), (rel, rel, False))
        out.append(Unit(row, k, s, e, doc[s:e], unit_kind(chunk, text[ls:le], doc[s:e], code)))
    return out


def content_terms(query: Query) -> set[str]:
    """The question's word tokens that name its topic (no bigrams, question words or stop words)."""
    return {t for t in query.tokens if not t.startswith("~") and t not in QUESTION_WORDS and len(t) > 1}


def score_units(index: Index, query: Query, units: list[Unit], analyze: Callable[[str], list[str]]) -> list[Unit]:
    """``units`` with ``score`` = cosine with the query + :data:`TERM_BONUS` x the idf-weighted
    share of the question's content terms the unit contains."""
    if not units:
        return []
    rows = np.array([index.unit_offsets[u.row] + u.index for u in units], dtype=np.int64)
    cos = index.units[rows] @ query.vector
    terms = content_terms(query)
    idf = {t: max(index.bm25.idf(t), 0.1) for t in terms}
    total = sum(idf.values())
    out = []
    for u, c in zip(units, cos):
        bonus = 0.0
        if total:
            toks = set(analyze(u.text))
            bonus = TERM_BONUS * sum(w for t, w in idf.items() if t in toks) / total
        out.append(Unit(u.row, u.index, u.start, u.end, u.text, u.kind, float(c) + bonus))
    return out


def comparison_sides(question: str) -> tuple[str, str] | None:
    """The two things a comparison question compares (``AとBの違い``, ``A和B的区别``,
    ``difference between A and B``, ``A vs B``), or ``None``.

    >>> comparison_sides("LoRAとQLoRAの違いは？"), comparison_sides("What is RLHF?")
    (('LoRA', 'QLoRA'), None)
    """
    for pat in _COMPARE:
        m = pat.search(question)
        if m:
            a, b = _side(m.group("a")), _side(m.group("b"))
            if a and b and normalize(a) != normalize(b):
                return a, b
    return None


def _side(s: str) -> str:
    s = re.sub(r"^(?:what(?:'s| is| are)?|the|between|a|an)\s+", "", s.strip(), flags=re.I)
    s = re.sub(r"(?:の|的)?(?:ファインチューニング|事前学習|训练|微调)?$", "", s)
    return s.strip(" 「」『』\"'“”（）()")


def mentions(text: str, side: str) -> bool:
    """Whether ``text`` names ``side`` (case- and width-insensitive)."""
    return bool(side) and normalize(side) in normalize(text)


@dataclass(frozen=True)
class Selection:
    """The units picked from one passage (document order) and why the passage was used."""

    row: int
    units: tuple[Unit, ...]
    whole_item: bool = False


def select(
    index: Index,
    query: Query,
    rows: Sequence[int],
    analyze: Callable[[str], list[str]],
    *,
    question: str,
    exclude: frozenset[tuple[int, int]] = frozenset(),
) -> list[Selection]:
    """The units that answer ``query`` from the passages ``rows`` (best first), grouped by
    passage. ``exclude`` holds document spans already quoted (a follow-up's previous answer)."""
    rows = list(dict.fromkeys(rows))[:MAX_PASSAGES]
    if not rows:
        return []
    per = {r: score_units(index, query, chunk_units(index, r), analyze) for r in rows}
    quotable = {r: [u for u in us if u.quotable and (u.start, u.end) not in exclude] for r, us in per.items()}
    scored = [u for us in quotable.values() for u in us]
    if not scored:
        return []
    best = max(u.score for u in scored)
    top = rows[0]
    first = index.chunks[top]
    # A Q&A item whose own question matches: quote its whole (short) answer body.
    if (
        not exclude
        and first.kind == "qa"
        and first.heading
        and float(index.heads[top] @ query.vector) >= QA_MATCH
        and quotable[top]
    ):
        picked = {top: list(quotable[top])}
    else:
        picked = {}
        for r in rows:
            us = quotable[r]
            if not us:
                continue
            rbest = max(u.score for u in us)
            if picked and rbest < best - SECOND_PASSAGE:
                continue
            keep = [u for u in us if u.score >= best - UNIT_MARGIN]
            if keep:
                picked[r] = keep
        picked = _cap(picked)
    picked = {r: _expand_lists(quotable[r], us) for r, us in picked.items()}
    sides = comparison_sides(question)
    if sides:
        picked = _cover_sides(picked, quotable, rows, sides)
    return [Selection(r, tuple(sorted(us, key=lambda u: u.start)), whole_item=(r == top and len(us) == len(quotable[r])))
            for r, us in picked.items() if us]


def _cap(picked: dict[int, list[Unit]]) -> dict[int, list[Unit]]:
    """At most :data:`MAX_UNITS` units and about :data:`MAX_CHARS` characters, best first."""
    flat = sorted(((u.score, r, u) for r, us in picked.items() for u in us), key=lambda x: -x[0])
    out: dict[int, list[Unit]] = {}
    chars = 0
    for _, r, u in flat:
        if sum(len(v) for v in out.values()) >= MAX_UNITS or (chars and chars + len(u.text) > MAX_CHARS):
            break
        out.setdefault(r, []).append(u)
        chars += len(u.text)
    return {r: out[r] for r in picked if r in out}


def _expand_lists(units: list[Unit], chosen: list[Unit]) -> list[Unit]:
    """Keep a list together: a chosen lead-in brings its items, a chosen item its lead-in and
    siblings (contiguous bullets of the same passage), up to :data:`MAX_LIST_ITEMS`."""
    by_pos = {u.index: u for u in units}
    keep = {u.index for u in chosen}
    for u in chosen:
        if u.kind not in ("lead", "bullet"):
            continue
        i = u.index
        while (i - 1) in by_pos and by_pos[i - 1].kind == "bullet" and u.kind == "bullet":
            i -= 1
        if (i - 1) in by_pos and by_pos[i - 1].kind == "lead":
            i -= 1
        j, n = i, 0
        while j in by_pos and (j == i or by_pos[j].kind == "bullet") and n <= MAX_LIST_ITEMS:
            keep.add(j)
            j += 1
            n += 1
    # a lead-in with nothing after it says nothing
    out = [by_pos[i] for i in sorted(keep) if i in by_pos]
    return [u for k, u in enumerate(out) if u.kind != "lead" or (k + 1 < len(out) and out[k + 1].kind == "bullet")]


def _cover_sides(picked, quotable, rows, sides) -> dict[int, list[Unit]]:
    """Make sure both sides of a comparison are named: add the best unit naming a missing side."""
    out = {r: list(us) for r, us in picked.items()}
    for side in sides:
        if any(mentions(u.text, side) for us in out.values() for u in us):
            continue
        cands = [u for r in rows for u in quotable[r] if mentions(u.text, side)]
        if cands:
            u = max(cands, key=lambda u: u.score)
            out.setdefault(u.row, []).append(u)
    return {r: out[r] for r in list(dict.fromkeys([*picked, *out]))}
