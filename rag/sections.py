"""Sections of the notes: consecutive chunks of one Q&A item or one section as a group, the
body of each without its heading line, which sections are question lists (they ask, they
do not answer), and which introduce subsections (they announce, the subsections say).

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
INTRO_CHARS = 120  # a section whose own text before its subsections is at most this long introduces them
MAX_SUBSECTIONS = 8  # subsections an introduction brings, at most …
MAX_SCAN = 64  # … found among this many chunks after it (an engine index reads each one)


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


def _opens_with_heading(first_line: str, heading: str) -> bool:
    """Whether a passage's first line is its question or heading (so its body starts after it)."""
    return bool(heading) and (_is_heading_line(first_line, heading) or first_line.lstrip().startswith("#"))


def body_span(text: str, group: Group) -> tuple[int, int]:
    """The group's span without its first line when that line is its question or heading."""
    s, e = group.start, group.end
    nl = text.find("\n", s, e)
    first = text[s : nl if nl >= 0 else e]
    if _opens_with_heading(first, group.heading):
        s = nl if nl >= 0 else e
    return trim_span(text, s, e)


def own_text(chunk: Chunk) -> str:
    """A chunk's text without its first line when that line is its heading."""
    first, _, rest = chunk.text.partition("\n")
    if _opens_with_heading(first, chunk.heading):
        return rest.strip()
    return chunk.text.strip()


def subsections(chunks: Sequence[Chunk], row: int) -> list[int]:
    """The first chunk of each direct subsection of chunk ``row`` when ``row`` introduces them:
    a section chunk whose own text is at most :data:`INTRO_CHARS` long (「LLMの課題と限界」:
    「LLMは強力ですが、いくつかの課題も抱えています」) right before at least two subsections of
    its document (ハルシネーション, コンテキストウィンドウの制限, …). ``[]`` otherwise. An answer
    quoting the introduction goes on with them (:mod:`rag.extract`), and so does its card
    (:mod:`study.cards`): the introduction alone announces what it does not say.

    Reads the chunks after ``row`` only as far as its subsections go, at most :data:`MAX_SCAN`."""
    c = chunks[row]
    if c.kind != "section" or not c.section or len(own_text(c)) > INTRO_CHARS:
        return []
    if row > 0 and (chunks[row - 1].doc_id, chunks[row - 1].section) == (c.doc_id, c.section):
        return []  # the short tail of a longer section, not its whole own text
    prefix, out, seen = c.section + " > ", [], set()
    for r in range(row + 1, min(len(chunks), row + 1 + MAX_SCAN)):
        d = chunks[r]
        if d.doc_id != c.doc_id or not d.section.startswith(prefix):
            break
        child = d.section[len(prefix):].split(" > ")[0]
        if child not in seen:
            seen.add(child)
            out.append(r)
            if len(out) == MAX_SUBSECTIONS:
                break
    return out if len(out) >= 2 else []


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
