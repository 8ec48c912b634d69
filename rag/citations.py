"""Citations: the numbered passages an answer quotes, the ``[n]`` markers that point to them,
and the check that every answer sentence carries a valid marker and is supported.

Pure functions over records; the text rules (marker pattern, sentence ends) live in
:mod:`rag.rules`.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from rag.origin import Location
from rag.rules.normalize import squash_markup
from rag.rules.script import CJK, CLOSERS
from rag.rules.sentences import SENTENCE_END, STOPS, answer_sentences, ends_sentence, markers_in, strip_markers, unmark
from rag.rules.structure import BULLET, is_list_item
from rag.types import Chunk, Hit


@dataclass(frozen=True)
class Citation:
    """Passage ``number`` of an answer.

    ``chunk`` is the passage shown and quoted; ``hit`` the retrieved hit behind it;
    ``translated`` says ``chunk`` is the parallel (translation) of ``hit.chunk``;
    ``parallel`` is the same passage in the other language, when the notes have it;
    ``quotes`` are the document spans of the sentences quoted from it; ``location`` where
    they are in the original file (page and boxes, slide), when it is not a text file.
    """

    number: int
    chunk: Chunk
    hit: Hit
    translated: bool = False
    parallel: Chunk | None = None
    quotes: tuple[tuple[int, int], ...] = ()
    location: Location | None = None

    def to_dict(self) -> dict:
        c = self.chunk
        where = self.location.to_dict() if self.location is not None else Location.empty_dict()
        return {
            "n": self.number,
            "chunk_id": c.id,
            "doc_id": c.doc_id,
            "title": c.title,
            "section": c.section,
            "lang": c.lang,
            "start": c.start,
            "end": c.end,
            "text": c.text,
            "parallel_text": self.parallel.text if self.parallel is not None else None,
            "quotes": [list(q) for q in self.quotes],
            "heading": c.heading,
            "qnum": c.qnum,
            "kind": c.kind,
            "parallel_id": c.parallel,
            "translated": self.translated,
            "hit": self.hit.to_dict(),
            "parallel_chunk": None if self.parallel is None else self.parallel.to_dict(),
            **where,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Citation:
        chunk = Chunk(id=d["chunk_id"], doc_id=d["doc_id"], text=d["text"], start=int(d["start"]), end=int(d["end"]),
                      lang=d["lang"], title=d.get("title", ""), section=d.get("section", ""),
                      heading=d.get("heading", ""), qnum=d.get("qnum"), kind=d.get("kind", "text"),
                      parallel=d.get("parallel_id"))
        par = d.get("parallel_chunk")
        return cls(int(d["n"]), chunk, Hit.from_dict(d["hit"]), bool(d.get("translated", False)),
                   None if par is None else Chunk.from_dict(par), tuple((int(s), int(e)) for s, e in d.get("quotes", ())),
                   Location.from_dict(d) if d.get("location") else None)


@dataclass(frozen=True)
class SentenceCheck:
    """One answer sentence: its markers, and whether they are valid (and, where checked,
    whether the cited passage supports the sentence)."""

    text: str
    markers: tuple[int, ...]
    ok: bool
    problem: str = ""

    def to_dict(self) -> dict:
        return {"text": self.text, "markers": list(self.markers), "ok": self.ok, "problem": self.problem}

    @classmethod
    def from_dict(cls, d: dict) -> SentenceCheck:
        return cls(str(d["text"]), tuple(int(m) for m in d["markers"]), bool(d["ok"]), str(d.get("problem", "")))


def cite(sentence: str, number: int) -> str:
    """``sentence`` with ``[number]`` before its final punctuation (or at its end).

    Bracketed numbers inside the quoted text would read as markers: they become ``［n］``.

    >>> cite("LoRAは低ランク行列を追加します。", 1), cite("It adds matrices.", 2), cite("- 手順を確認", 3)
    ('LoRAは低ランク行列を追加します[1]。', 'It adds matrices [2].', '- 手順を確認[3]')
    """
    s = sentence.strip()
    s = s if s.startswith("```") else unmark(s)  # a quoted code block as written: its "[0]" is code
    m = SENTENCE_END.search(s)
    if m:
        head, tail = s[: m.start()].rstrip(), s[m.start() :]
        sep = "" if CJK.search(head[-1:]) or head.endswith(tuple(CLOSERS)) else " "
        return f"{head}{sep}[{number}]{tail}"
    sep = "" if CJK.search(s[-1:]) or s.endswith(tuple(CLOSERS)) else " "
    return f"{s}{sep}[{number}]"


def supported(sentence: str, passage_texts: Collection[str]) -> bool:
    """Whether ``sentence`` (markers and list marks removed) occurs in one of the passages,
    compared after NFKC, lower-casing and dropping whitespace and Markdown emphasis."""
    core = BULLET.sub("", squash_markup(strip_markers(sentence)), count=1)
    core = core.rstrip("。.!！?？")
    if not core:
        return False
    return any(core in squash_markup(p) for p in passage_texts)


def check_citations(text: str, numbers: Collection[int], passages: Mapping[int, Collection[str]] | None = None,
                    *, skip: Collection[str] = ()) -> list[SentenceCheck]:
    """Check every sentence of ``text`` carries a marker naming one of ``numbers``; with
    ``passages`` (number -> the passage and its translation), also that a cited passage
    contains the sentence. Sentences in ``skip`` (a lead-in line) are not checked."""
    valid = set(numbers)
    checks = []
    for s in answer_sentences(text):
        if s in skip:
            continue
        marks = tuple(markers_in(s))
        if not marks:
            checks.append(SentenceCheck(s, marks, False, "no citation marker"))
            continue
        bad = sorted({m for m in marks if m not in valid})
        if bad:
            names = ", ".join(f"[{m}]" for m in bad)
            checks.append(SentenceCheck(s, marks, False, f"cites {names}, which is not one of the passages"))
            continue
        if passages is not None and not any(supported(s, passages.get(m, ())) for m in marks):
            checks.append(SentenceCheck(s, marks, False, "the cited passage does not contain this sentence"))
            continue
        checks.append(SentenceCheck(s, marks, True))
    return checks


def _is_formula(s: str) -> bool:
    return bool(re.search(r"[=∑Σ√]", s)) and not re.search("[" + re.escape(STOPS) + r"](?:\s*\[\d+\])?$", s)


def join_sentences(sentences: list[str]) -> str:
    """Sentences as one text: CJK sentences run on, others get a space; list items, the
    sentence after a list, a line that closes no sentence (a title, 「学習データの規模」) and
    the one after it, and the first sentence quoted from another passage (another marker) start
    a line."""
    out, prev = "", ""
    for s in sentences:
        if out:
            unended = not ends_sentence(prev) or not ends_sentence(s)  # "…使うことで[1]", a title
            code = s.startswith("```") or prev.startswith("```")
            other = markers_in(s)[-1:] != markers_in(prev)[-1:]  # 「…活用されています[1]。」 then 「RAG涉及: [2]」
            if code or is_list_item(s) or is_list_item(prev) or unended or _is_formula(s) or other:
                out += "\n"
            elif not (CJK.search(out[-1]) or out[-1] in "。！？」』）】]"):
                out += " "
            elif out.endswith("]") and not CJK.search(s[:1]):
                out += " "
        out += s
        prev = s
    return out
