"""Sections of the notes: consecutive chunks of one Q&A item or one section as a group, the
body of each without its heading line, and which sections are question lists (they ask, they
do not answer).

The index computes the question lists when it is built (:mod:`rag.facts`); cards, the quiz
and the drill group chunks the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rag.rules.questions import is_question
from rag.rules.script import WORDY
from rag.rules.sentences import trim_span
from rag.rules.structure import BULLET, plain, strip_qa_label
from rag.types import Chunk, Document

MIN_QUESTION_ITEMS = 2  # a question list has at least this many items …
QUESTION_LIST_SHARE = 0.6  # … and at least this share of its lines are questions


@dataclass(frozen=True)
class Group:
    """Consecutive chunks of one Q&A item or one section of one document."""

    doc_id: str
    kind: str
    section: str
    heading: str
    qnum: int | None
    chunks: tuple[Chunk, ...]
    order: int  # position of the first chunk in the index

    @property
    def start(self) -> int:
        return self.chunks[0].start

    @property
    def end(self) -> int:
        return self.chunks[-1].end


def group_chunks(chunks: Sequence[Chunk]) -> list[Group]:
    """Consecutive chunks of the same document, kind and heading path, as one group each."""
    groups: list[Group] = []
    for i, c in enumerate(chunks):
        last = groups[-1] if groups else None
        if last and (last.doc_id, last.kind, last.section, last.qnum) == (c.doc_id, c.kind, c.section, c.qnum):
            groups[-1] = Group(
                last.doc_id, last.kind, last.section, last.heading, last.qnum, (*last.chunks, c), last.order
            )
        else:
            groups.append(Group(c.doc_id, c.kind, c.section, c.heading, c.qnum, (c,), i))
    return groups


def _is_heading_line(line: str, heading: str) -> bool:
    a = strip_qa_label(plain(line))
    b = plain(heading)
    return bool(a and b) and (a == b or b in a or a in b)


def body_span(text: str, group: Group) -> tuple[int, int]:
    """The group's span without its first line when that line is its question or heading."""
    s, e = group.start, group.end
    nl = text.find("\n", s, e)
    first = text[s : nl if nl >= 0 else e]
    if group.heading and (_is_heading_line(first, group.heading) or first.lstrip().startswith("#")):
        s = nl if nl >= 0 else e
    return trim_span(text, s, e)


def _section_path(group: Group) -> str:
    return group.section or plain(group.heading)


def is_question_list(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` is a list of questions: at least :data:`MIN_QUESTION_ITEMS`
    list items, :data:`QUESTION_LIST_SHARE` of them questions, and the list is most of the text."""
    lines = [ln for ln in text[start:end].split("\n") if WORDY.search(ln)]
    items = [ln for ln in lines if BULLET.match(ln)]
    asked = sum(is_question(ln) for ln in items)
    return (
        len(items) >= MIN_QUESTION_ITEMS and asked >= QUESTION_LIST_SHARE * len(items) and 2 * len(items) >= len(lines)
    )


def article_sections(groups: list[Group], documents: Mapping[str, Document]):
    """(group, body span, path id) of every section of every document without Q&A items."""
    qa_docs = {g.doc_id for g in groups if g.kind == "qa"}
    seen: dict[tuple[str, str], int] = {}
    for g in groups:
        if g.kind != "section" or g.doc_id in qa_docs:
            continue
        path = _section_path(g)
        n = seen[(g.doc_id, path)] = seen.get((g.doc_id, path), 0) + 1
        yield g, body_span(documents[g.doc_id].text, g), path if n == 1 else f"{path} #{n}"


def question_list_chunk_ids(chunks: Sequence[Chunk], documents: Mapping[str, Document]) -> frozenset[str]:
    """Ids of the chunks that are question lists: they ask, they do not answer, so a drill never
    takes its key points from them."""
    out: set[str] = set()
    for g, (s, e), _ in article_sections(group_chunks(chunks), documents):
        if s < e and is_question_list(documents[g.doc_id].text, s, e):
            out.update(c.id for c in g.chunks)
    return frozenset(out)
