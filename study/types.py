"""The records of study mode: a :class:`Card` and a :class:`DrillQuestion`, each with the
document span it came from (a :class:`Source`), made once from the index's chunks.

A card's ``front``/``back`` map a language ("ja", "zh", "en") to text: a Q&A item and its
translation are one card holding both. ``id`` is stable across re-ingests (document + Q&A
number, or document + heading path), so edits elsewhere in a document keep a card's progress.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

CARD_KINDS = ("qa", "section")


@dataclass(frozen=True)
class Source:
    """Where a text came from: ``document.text[start:end] == text``."""

    doc_id: str
    start: int
    end: int
    text: str
    lang: str

    def to_dict(self) -> dict[str, Any]:
        return {"doc_id": self.doc_id, "start": self.start, "end": self.end, "text": self.text, "lang": self.lang}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Source:
        return cls(str(d["doc_id"]), int(d["start"]), int(d["end"]), str(d["text"]), str(d.get("lang", "")))


@dataclass(frozen=True)
class Card:
    """A flashcard. ``sources`` maps each language of the card to the passage behind its back;
    ``key_spans`` are the document offsets (in the primary source's document) of the sentences
    a section card's back quotes; ``chunk_ids`` the index chunks behind the card (for vectors).
    ``topic`` groups cards for per-topic summaries (the heading the card sits under)."""

    id: str
    kind: str  # "qa" | "section"
    front: dict[str, str]
    back: dict[str, str]
    sources: dict[str, Source]
    topic: str = ""
    qnum: int | None = None
    key_spans: tuple[tuple[int, int], ...] = ()
    chunk_ids: tuple[str, ...] = ()

    def __post_init__(self):
        if self.kind not in CARD_KINDS:
            raise ValueError(f"kind must be one of {CARD_KINDS}, got {self.kind!r}")
        if not self.front or set(self.front) != set(self.back) or set(self.back) != set(self.sources):
            raise ValueError(f"card {self.id!r}: front, back and sources must name the same languages")

    @property
    def langs(self) -> tuple[str, ...]:
        return tuple(self.front)

    @property
    def source(self) -> Source:
        """The primary source (the card's first language)."""
        return self.sources[self.langs[0]]

    def pick(self, lang: str) -> str:
        """The card's language closest to ``lang``: itself, else the primary one."""
        return lang if lang in self.front else self.langs[0]

    def to_dict(self) -> dict[str, Any]:
        """The card as JSON-ready data (``source`` is the primary source, ``sources`` all)."""
        return {
            "id": self.id,
            "kind": self.kind,
            "front": dict(self.front),
            "back": dict(self.back),
            "source": self.source.to_dict(),
            "sources": {lang: s.to_dict() for lang, s in self.sources.items()},
            "topic": self.topic,
            "qnum": self.qnum,
            "key_spans": [list(s) for s in self.key_spans],
            "chunk_ids": list(self.chunk_ids),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Card:
        return cls(
            id=str(d["id"]),
            kind=str(d["kind"]),
            front={str(k): str(v) for k, v in d["front"].items()},
            back={str(k): str(v) for k, v in d["back"].items()},
            sources={str(k): Source.from_dict(v) for k, v in d["sources"].items()},
            topic=str(d.get("topic", "")),
            qnum=None if d.get("qnum") is None else int(d["qnum"]),
            key_spans=tuple((int(a), int(b)) for a, b in d.get("key_spans", ())),
            chunk_ids=tuple(str(c) for c in d.get("chunk_ids", ())),
        )

    def content_hash(self) -> str:
        """Hash of what a learner sees (front and back): tells an edited card from an unchanged one."""
        blob = json.dumps([self.kind, self.front, self.back], ensure_ascii=False, sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class DrillQuestion:
    """A question to answer aloud (mock interview): from a question list, or a card's front."""

    id: str
    text: str
    lang: str
    topic: str = ""
    source: Source | None = None
    card_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "text": self.text,
            "lang": self.lang,
            "topic": self.topic,
            "source": None if self.source is None else self.source.to_dict(),
            "card_id": self.card_id,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DrillQuestion:
        return cls(
            id=str(d["id"]),
            text=str(d["text"]),
            lang=str(d["lang"]),
            topic=str(d.get("topic", "")),
            source=None if d.get("source") is None else Source.from_dict(d["source"]),
            card_id=None if d.get("card_id") is None else str(d["card_id"]),
        )
