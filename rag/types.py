"""The records that flow from ingest to answer.

A :class:`Chunk` is made once by the chunker and carried unchanged to the answer
(new values are derived with :func:`dataclasses.replace`). Its ``start``/``end``
are character offsets into its document's text: ``doc.text[c.start:c.end] == c.text``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from rag.origin import Origin


def finite_or_none(x: float | None) -> float | None:
    """``float(x)``, or ``None`` for None, NaN and infinities (JSON has no NaN)."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


@dataclass(frozen=True)
class Document:
    """A loaded source document. ``text`` is the decoded file text all offsets refer to."""

    doc_id: str
    text: str
    title: str
    lang: str
    sha256: str
    source: str = ""
    tags: tuple[str, ...] = ()
    body_start: int = 0  # offset after YAML front matter
    # Where the text came from in a PDF, slide deck, Word or web page (None: the text is the file).
    origin: Origin | None = None
    # The reader that turned the file into ``text`` (``rag.corpus.reader_id``: "pdf/1"); "" for text files.
    reader: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["tags"] = list(self.tags)
        d["origin"] = None if self.origin is None else self.origin.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Document:
        origin = d.get("origin")
        return cls(**{**d, "tags": tuple(d.get("tags", ())), "origin": None if origin is None else Origin.from_dict(origin)})


@dataclass(frozen=True)
class Chunk:
    """A passage of a document, with where it came from.

    ``section`` is the heading path ("質問と回答 > Q12"); ``heading`` the item's own
    question or heading text; ``qnum`` the number of a numbered Q&A item;
    ``parallel`` the id of the same item in another language, when one exists.
    """

    id: str
    doc_id: str
    text: str
    start: int
    end: int
    lang: str
    title: str = ""
    section: str = ""
    heading: str = ""
    qnum: int | None = None
    kind: str = "text"  # "qa" | "section" | "list" | "text"
    parallel: str | None = None

    @property
    def section_title(self) -> str:
        """The last heading of ``section`` ("Q12" of "質問と回答 > Q12"), '' without one."""
        return self.section.split(" > ")[-1] if self.section else ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Chunk:
        return cls(**d)


@dataclass(frozen=True, eq=False)
class Query:
    """A question as the search stages see it, computed once by the searcher.

    ``tokens`` are the analyzer's terms; ``coverage`` the share of distinct terms the
    index knows (an English question over Japanese notes has a low one); ``vector`` the
    encoder's query vector (``None`` when no stage needs it, e.g. BM25 only).
    """

    text: str
    lang: str
    tokens: tuple[str, ...]
    coverage: float
    vector: Any = None


@dataclass(frozen=True)
class Hit:
    """One ranked search result: a chunk and the scores each stage gave it."""

    chunk: Chunk
    rank: int
    score: float
    scores: dict[str, float | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        c = self.chunk
        return {
            "rank": self.rank,
            "score": finite_or_none(self.score),
            "chunk_id": c.id,
            "doc_id": c.doc_id,
            "title": c.title,
            "lang": c.lang,
            "section": c.section,
            "heading": c.heading,
            "qnum": c.qnum,
            "start": c.start,
            "end": c.end,
            "text": c.text,
            "kind": c.kind,
            "parallel": c.parallel,
            "scores": {k: finite_or_none(v) for k, v in self.scores.items()},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Hit:
        """The hit :meth:`to_dict` made (a score JSON could not hold comes back as NaN)."""
        chunk = Chunk(id=d["chunk_id"], doc_id=d["doc_id"], text=d["text"], start=int(d["start"]), end=int(d["end"]),
                      lang=d["lang"], title=d.get("title", ""), section=d.get("section", ""),
                      heading=d.get("heading", ""), qnum=d.get("qnum"), kind=d.get("kind", "text"),
                      parallel=d.get("parallel"))
        score = d.get("score")
        return cls(chunk, int(d["rank"]), math.nan if score is None else float(score), dict(d.get("scores") or {}))
