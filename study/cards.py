"""Cards from the index's chunks: pure functions, no model, no store.

* Every numbered Q&A item (chunks of kind ``qa``) is a card: front = its question, back = the
  answer body (the item without its question line), cited. An item and its translation
  (linked by ``Chunk.parallel``) are one card holding both languages.
* Every section of an article (a document without Q&A items) is an "Explain …" card: front
  from the heading, in the document's language; back = the section's key sentences, cited.
* A section that is a list of questions without answers (a mock-interview question list) gives
  :class:`~study.types.DrillQuestion` items instead of cards: it has nothing to put on a back.

Card ids name where a card lives, not what it says (``qa:<doc>#Q12``,
``section:<doc>#<heading path>``), so editing a document keeps the progress of its other cards.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rag.rules.questions import is_question
from rag.rules.script import WORDY
from rag.rules.sentences import trim_span, unit_spans
from rag.rules.structure import (BULLET, FENCE, TABLE_LINE, list_mark, plain, section_name, strip_qa_label, title,
                                 with_document)
from rag.sections import Group, article_sections, body_span, group_chunks, is_question_list, subsections
from rag.types import Chunk, Document
from study.types import Card, DrillQuestion, Source

MAX_KEY_SENTENCES = 4  # sentences on the back of a section card
MIN_KEY_SENTENCES = 2  # filled from later sentences when the section has few paragraphs
MIN_PROSE_CHARS = 8  # letters or digits a key sentence needs

EXPLAIN = {
    "ja": "「{h}」について説明してください。",
    "zh": "请解释「{h}」。",
    "en": "Explain “{h}”.",
}
_SKIP_UNIT = re.compile(r"^\s*(?:\||\$\$|```|~~~|<)")


# --- text helpers --------------------------------------------------------------------------


def display_line(line: str) -> str:
    """A line for a card: Markdown gone, a list marker kept as ``•`` (or its number)."""
    return f"{list_mark(line, bullet='• ')}{plain(line)}"


def clean_text(text: str) -> str:
    """Text for the back of a card: one display line per non-empty line, code fences dropped."""
    out, in_code = [], False
    for raw in text.split("\n"):
        if FENCE.match(raw):
            in_code = not in_code
            continue
        line = raw.rstrip() if in_code else display_line(raw)
        if line.strip():
            out.append(line)
    return "\n".join(out)


def _on_table_line(text: str, s: int) -> bool:
    """Whether offset ``s`` is on a table line (a cell's second sentence does not start with the bar)."""
    start = text.rfind("\n", 0, s) + 1
    end = text.find("\n", start)
    return bool(TABLE_LINE.match(text[start : len(text) if end < 0 else end]))


def is_prose(text: str, s: int, e: int) -> bool:
    """Whether ``text[s:e]`` is a sentence worth quoting: not code, a table (any sentence of a
    row), a formula, a question or a lead-in."""
    unit = text[s:e]
    core = plain(unit)
    if _SKIP_UNIT.match(unit) or _on_table_line(text, s) or len(WORDY.findall(core)) < MIN_PROSE_CHARS:
        return False
    if core.endswith((":", "：", "？", "?")) or "=" in core:
        return False  # a list's lead-in, a question, a formula
    visible = re.sub(r"\s", "", core)
    return len(WORDY.findall(core)) >= 0.6 * len(visible)


def key_sentences(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """The sentences of ``text[start:end]`` a section card quotes: the first prose sentence of each
    paragraph or list item, in order, up to :data:`MAX_KEY_SENTENCES` (topped up with the next
    sentences when the section has fewer than :data:`MIN_KEY_SENTENCES` paragraphs). Code,
    tables, formulas and questions are never quoted. Spans are document offsets."""
    body = text[start:end]
    code = _code_ranges(body)
    units = [(s, e) for s, e in unit_spans(body) if not any(a <= s < b for a, b in code) and is_prose(body, s, e)]
    firsts, rest, prev_end = [], [], 0
    for s, e in units:
        gap = body[prev_end:s]
        new_block = not firsts and not rest or "\n" in gap
        (firsts if new_block else rest).append((s, e))
        prev_end = e
    chosen = firsts[:MAX_KEY_SENTENCES]
    if len(chosen) < MIN_KEY_SENTENCES:
        chosen = sorted(chosen + rest[: MIN_KEY_SENTENCES - len(chosen)])
    return [(start + s, start + e) for s, e in chosen]


def _code_ranges(body: str) -> list[tuple[int, int]]:
    out, pos, open_at = [], 0, None
    for line in body.split("\n"):
        if FENCE.match(line):
            if open_at is None:
                open_at = pos
            else:
                out.append((open_at, pos + len(line)))
                open_at = None
        pos += len(line) + 1
    if open_at is not None:
        out.append((open_at, len(body)))
    return out


def explain_front(heading: str, lang: str, title: str = "", section: str = "") -> str:
    """「〇〇」について説明してください。 / 请解释「〇〇」。 / Explain “…”. — in ``lang``.

    The heading is named as :func:`rag.rules.structure.section_name` names it: a generic one
    (まとめ, Introduction …) with its document's title, a subsection's with the heading above it.
    """
    return EXPLAIN.get(lang, EXPLAIN["en"]).format(h=section_name(heading, section, title))


def topic_of(group: Group, doc: Document) -> str:
    """The topic a card counts under: a Q&A item's document title, a section's top-level heading."""
    if group.kind == "qa":
        return doc.title
    top = plain(group.section.split(" > ")[0]) if group.section else ""
    top = top or plain(group.heading)
    if not top:
        return doc.title
    return with_document(top, doc.title)


# --- cards ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Item:
    """One Q&A item in one language, ready to merge with its translations."""

    group: Group
    lang: str
    front: str
    back: str
    source: Source


def _qa_item(group: Group, doc: Document) -> _Item | None:
    s, e = body_span(doc.text, group)
    back = clean_text(doc.text[s:e])
    front = plain(strip_qa_label(group.heading))
    if not back or not front:
        return None
    lang = doc.lang if doc.lang else group.chunks[0].lang
    return _Item(group, lang, front, back, Source(group.doc_id, s, e, doc.text[s:e], lang))


def _twins(items: list[_Item]) -> list[list[_Item]]:
    """Items joined with their translations (``Chunk.parallel`` links), in corpus order."""
    owner = {c.id: k for k, it in enumerate(items) for c in it.group.chunks}
    parent = list(range(len(items)))

    def find(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for k, it in enumerate(items):
        for c in it.group.chunks:
            j = owner.get(c.parallel) if c.parallel else None
            if j is not None:
                parent[find(j)] = find(k)
    comps: dict[int, list[_Item]] = {}
    for k, it in enumerate(items):
        comps.setdefault(find(k), []).append(it)
    out: list[list[_Item]] = []
    for comp in comps.values():
        comp.sort(key=lambda it: it.group.doc_id)
        card: list[_Item] = []
        for it in comp:  # one item per language; a second one in a language stands alone
            if any(o.lang == it.lang for o in card):
                out.append([it])
            else:
                card.append(it)
        out.append(card)
    return out


def _qa_cards(groups: list[Group], documents: Mapping[str, Document]) -> list[tuple[int, Card]]:
    items = [
        it for g in groups if g.kind == "qa" and g.qnum is not None for it in [_qa_item(g, documents[g.doc_id])] if it
    ]
    used: set[str] = set()
    out = []
    for twins in _twins(items):
        first = twins[0].group
        cid = f"qa:{first.doc_id}#Q{first.qnum}"
        if cid in used:  # two lists numbered from 1 in one document
            cid = f"qa:{first.doc_id}#{first.section}"
        used.add(cid)
        card = Card(
            id=cid,
            kind="qa",
            front={it.lang: it.front for it in twins},
            back={it.lang: it.back for it in twins},
            sources={it.lang: it.source for it in twins},
            topic=topic_of(first, documents[first.doc_id]),
            qnum=first.qnum,
            chunk_ids=tuple(c.id for it in twins for c in it.group.chunks),
        )
        out.append((min(it.group.order for it in twins), card))
    return out


def _section_cards(groups: list[Group], documents: Mapping[str, Document],
                   chunks: Sequence[Chunk]) -> list[tuple[int, Card]]:
    out = []
    for g, (s, e), path in article_sections(groups, documents):
        doc = documents[g.doc_id]
        if s >= e or is_question_list(doc.text, s, e):
            continue
        spans = key_sentences(doc.text, s, e)
        lines = [display_line(doc.text[a:b]) for a, b in spans]
        kids = [chunks[r] for r in subsections(chunks, g.order + len(g.chunks) - 1)]
        for kid in kids:  # an introduction's card goes on with its subsections (rag.sections.subsections):
            # each one's title, then its first sentence
            head = (kid.start, kid.start + len(kid.text.partition("\n")[0]))
            first = key_sentences(doc.text, head[1], kid.end)[:1]
            lines += [f"• {title(doc.text[head[0]:head[1]])}", *(display_line(doc.text[a:b]) for a, b in first)]
            spans += [head, *first]
        if not spans:
            continue
        e = max(e, *(b for _, b in spans))
        lang = doc.lang
        card = Card(
            id=f"section:{g.doc_id}#{path}",
            kind="section",
            front={lang: explain_front(g.heading or path, lang, doc.title, g.section)},
            back={lang: "\n".join(lines)},
            sources={lang: Source(g.doc_id, s, e, doc.text[s:e], lang)},
            topic=topic_of(g, doc),
            key_spans=tuple(spans),
            chunk_ids=tuple(c.id for c in (*g.chunks, *kids)),
        )
        out.append((g.order, card))
    return out


def build_cards(chunks: Sequence[Chunk], documents: Mapping[str, Document]) -> list[Card]:
    """Every card of the corpus, in corpus order (see the module docstring for the rules)."""
    groups = group_chunks(chunks)
    cards = _qa_cards(groups, documents) + _section_cards(groups, documents, chunks)
    return [c for _, c in sorted(cards, key=lambda t: t[0])]


def card_table(index) -> list[dict]:
    """The cards of an in-memory index as a table (:mod:`rag.pages`: an engine index stores it
    with its version)."""
    return [c.to_dict() for c in build_cards(index.chunks, index.documents)]


def cards_from_index(index) -> list[Card]:
    """:func:`build_cards` over an :class:`~rag.index.Index` (an engine index's: its stored table)."""
    return [Card.from_dict(d) for d in index.table("cards")]


def drill_table(index) -> list[dict]:
    """The mock-interview questions of an in-memory index as a table (:mod:`rag.pages`)."""
    return [q.to_dict() for q in drill_questions(index.chunks, index.documents)]


def drill_questions_from_index(index) -> list[DrillQuestion]:
    """:func:`drill_questions` over an :class:`~rag.index.Index` (an engine index's: its stored table)."""
    return [DrillQuestion.from_dict(d) for d in index.table("drill_questions")]


def drill_questions(chunks: Sequence[Chunk], documents: Mapping[str, Document]) -> list[DrillQuestion]:
    """The questions of every question-list section (they have no answers in the notes, so they
    are for the mock interview, not flashcards). Id: document + heading path + item number."""
    out = []
    for g, (s, e), path in article_sections(group_chunks(chunks), documents):
        doc = documents[g.doc_id]
        if s >= e or not is_question_list(doc.text, s, e):
            continue
        n, pos = 0, s
        for line in doc.text[s:e].split("\n"):
            a, b = trim_span(doc.text, pos, pos + len(line))
            pos += len(line) + 1
            if not (BULLET.match(line) and is_question(line)):
                continue
            n += 1
            lang = doc.lang
            out.append(
                DrillQuestion(
                    id=f"drill:{g.doc_id}#{path}#{n}",
                    text=plain(line),
                    lang=lang,
                    topic=plain(g.heading) or path,
                    source=Source(g.doc_id, a, b, doc.text[a:b], lang),
                )
            )
    return out
