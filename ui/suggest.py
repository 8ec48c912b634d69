"""What the notes cover and questions to start with, drawn from the notes themselves.

Streamlit-free. Q&A items give their own questions; article sections give "Tell me about
…"; for English, where the notes are Japanese or Chinese, the Latin-script names in their
headings give "What is …?" (LoRA, RLHF, Self-Attention).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rag.rules.names import heading_names
from rag.rules.structure import GENERIC_HEADINGS, plain, strip_heading_number
from ui.i18n import LANGS, t
from ui.notes import display_title

MAX_TOPICS = 8
SUGGESTED = 6  # questions the landing page suggests
@dataclass(frozen=True)
class DocSummary:
    """One document as the landing page lists it."""

    doc_id: str
    title: str
    lang: str
    qa: int  # Q&A items
    sections: int  # other sections
    topics: tuple[str, ...]  # its top-level headings, in order


def _clean(heading: str) -> str:
    return strip_heading_number(plain(heading))


def _umbrella(chunks) -> str:
    """The heading every section of a document sits under (its H1 title line), or ``""``."""
    tops = {c.section.split(" > ")[0] for c in chunks if c.section}
    return tops.pop() if len(tops) == 1 else ""


def _top(section: str, umbrella: str) -> str:
    parts = section.split(" > ") if section else []
    if umbrella and parts and parts[0] == umbrella:
        parts = parts[1:]
    return _clean(parts[0]) if parts else ""


def document_table(index) -> list[dict]:
    """Every document of an in-memory index as the pages list it (:mod:`rag.pages`: an engine
    index stores this table with its version): id, own and shown title, language, chunk count,
    Q&A count, section count and main topics."""
    by_doc: dict[str, list] = {d: [] for d in index.documents}
    for c in index.chunks:
        by_doc.setdefault(c.doc_id, []).append(c)
    out = []
    for doc in index.documents.values():
        chunks = by_doc[doc.doc_id]
        qa = {c.qnum for c in chunks if c.kind == "qa" and c.qnum is not None}
        sections = {c.section for c in chunks if c.kind != "qa" and c.section}
        title = display_title(doc, chunks)
        umbrella = _umbrella(chunks)
        topics: list[str] = []
        for c in chunks:
            if c.kind == "qa":
                continue
            top = _top(c.section, umbrella)
            if top and top.lower() not in GENERIC_HEADINGS and top != plain(title) and top not in topics:
                topics.append(top)
        out.append({"doc_id": doc.doc_id, "title": doc.title, "shown": title, "lang": doc.lang, "chunks": len(chunks),
                    "qa": len(qa), "sections": len(sections), "topics": topics[:MAX_TOPICS]})
    return out


def overview(index) -> list[DocSummary]:
    """Every document with its title, language, Q&A count, section count and main topics."""
    return [DocSummary(d["doc_id"], d["shown"], d["lang"], d["qa"], d["sections"], tuple(d["topics"]))
            for d in index.table("documents")]


def as_question(topic: str, lang: str) -> str:
    """A topic as something to ask: a question stays one, a heading becomes "Tell me about …"."""
    topic = plain(topic)
    if re.search(r"[?？]\s*$", topic):
        return topic
    return t("q.about", lang, topic=topic)


def _spread(items: Sequence[str], n: int) -> list[str]:
    """``n`` items spread evenly over ``items`` (all when there are fewer)."""
    if len(items) <= n:
        return list(items)
    step = len(items) / n
    return [items[int(k * step)] for k in range(n)]


def suggestion_table(index) -> dict[str, list[str]]:
    """:data:`SUGGESTED` questions per interface language of an in-memory index (:mod:`rag.pages`)."""
    return {lang: _suggested(index, lang, SUGGESTED) for lang in LANGS}


def suggested_questions(index, lang: str, n: int = SUGGESTED) -> list[str]:
    """``n`` questions from the notes in ``lang``: Q&A questions and section headings of notes
    in that language, or (for English over other-language notes) the names they discuss (an
    index's stored table for the interface languages and :data:`SUGGESTED`)."""
    if n == SUGGESTED and lang in LANGS:
        return list(index.table("suggestions")[lang])
    return _suggested(index, lang, n)


def _suggested(index, lang: str, n: int) -> list[str]:
    qa = [plain(c.heading) for c in index.chunks if c.kind == "qa" and c.heading and c.lang == lang]
    qa = list(dict.fromkeys(qa))
    titles = {plain(d.title) for d in index.documents.values()}
    umbrellas = {_clean(_umbrella([c for c in index.chunks if c.doc_id == d])) for d in index.documents}
    sections = []
    for c in index.chunks:
        if c.kind == "section" and c.lang == lang and c.heading:
            h = _clean(c.heading)
            if (
                h
                and h.lower() not in GENERIC_HEADINGS
                and h not in sections
                and h not in titles
                and h not in umbrellas
                and not re.search(r"[?？]$", h)
            ):
                sections.append(h)
    picks = _spread(qa, n - min(2, len(sections)) if sections else n)
    picks += [t("q.about", lang, topic=h) for h in _spread(sections, n - len(picks))]
    if picks and (len(picks) >= n or lang != "en"):
        return picks[:n]
    in_titles = " ".join(d.title for d in index.documents.values())
    names = [x for x in heading_names([c.heading for c in index.chunks if c.heading]) if x not in in_titles]
    picks += [t("q.what_is", lang, term=name) for name in _spread(names, n - len(picks))]
    if not picks:  # notes in no language we know of: their own questions
        picks = _spread(list(dict.fromkeys(plain(c.heading) for c in index.chunks if c.kind == "qa" and c.heading)), n)
    return picks[:n]
