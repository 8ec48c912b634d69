"""A conversation turn as a plain record (for the store) and back.

:func:`to_record` keeps everything the chat shows for an :class:`~rag.answer.Answer` —
the quoted passages themselves, not only their ids — so a saved conversation still reads
the same after the notes are re-indexed or edited. :func:`from_record` rebuilds the
``Answer`` (the follow-up logic takes earlier answers as ``history``).
"""

from __future__ import annotations

from typing import Any

from rag.answer import Answer
from rag.citations import Citation, SentenceCheck
from rag.origin import Location
from rag.types import Chunk, Hit

RECORD_VERSION = 1


def _hit(h: Hit) -> dict[str, Any]:
    return {
        "chunk": h.chunk.to_dict(),
        "rank": h.rank,
        "score": float(h.score),
        "scores": {k: (None if v is None else float(v)) for k, v in h.scores.items()},
    }


def _unhit(d: dict[str, Any]) -> Hit:
    return Hit(Chunk.from_dict(d["chunk"]), int(d["rank"]), float(d["score"]), dict(d.get("scores") or {}))


def to_record(a: Answer) -> dict[str, Any]:
    """``a`` as JSON-ready data (see :func:`from_record`)."""
    return {
        "v": RECORD_VERSION,
        "question": a.question,
        "text": a.text,
        "abstained": a.abstained,
        "lang": a.lang,
        "answerer": a.answerer,
        "relevance": None if a.relevance is None else float(a.relevance),
        "lead": a.lead,
        "reason": a.reason,
        "missing": list(a.missing),
        "suggestions": list(a.suggestions),
        "checks": [{"text": c.text, "markers": list(c.markers), "ok": c.ok, "problem": c.problem} for c in a.checks],
        "query": a.query,
        "followup": a.followup,
        "mode": a.mode,
        "ms": float(a.ms),
        "note": a.note,
        "citations": [
            {
                "number": c.number,
                "chunk": c.chunk.to_dict(),
                "hit": _hit(c.hit),
                "translated": c.translated,
                "parallel": None if c.parallel is None else c.parallel.to_dict(),
                "quotes": [list(q) for q in c.quotes],
                "location": None if c.location is None else c.location.to_dict(),
            }
            for c in a.citations
        ],
        "hits": [_hit(h) for h in a.hits],
    }


def from_record(d: dict[str, Any]) -> Answer:
    """The :class:`Answer` a record was made from. :class:`ValueError` when it is not one."""
    try:
        citations = tuple(
            Citation(
                int(c["number"]),
                Chunk.from_dict(c["chunk"]),
                _unhit(c["hit"]),
                bool(c.get("translated")),
                None if c.get("parallel") is None else Chunk.from_dict(c["parallel"]),
                tuple((int(s), int(e)) for s, e in c.get("quotes", ())),
                None if c.get("location") is None else Location.from_dict(c["location"]),
            )
            for c in d.get("citations", ())
        )
        checks = tuple(
            SentenceCheck(str(c["text"]), tuple(int(m) for m in c["markers"]), bool(c["ok"]), str(c.get("problem", "")))
            for c in d.get("checks", ())
        )
        return Answer(
            question=str(d["question"]),
            text=str(d["text"]),
            citations=citations,
            abstained=bool(d["abstained"]),
            lang=str(d.get("lang", "en")),
            answerer=str(d.get("answerer", "")),
            relevance=None if d.get("relevance") is None else float(d["relevance"]),
            lead=str(d.get("lead", "")),
            reason=str(d.get("reason", "")),
            missing=tuple(d.get("missing", ())),
            suggestions=tuple(d.get("suggestions", ())),
            checks=checks,
            query=str(d.get("query", "")),
            followup=bool(d.get("followup", False)),
            hits=tuple(_unhit(h) for h in d.get("hits", ())),
            mode=str(d.get("mode", "")),
            ms=float(d.get("ms", 0.0)),
            note=str(d.get("note", "")),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise ValueError(f"not a saved answer ({type(e).__name__}: {e})") from None


def title_for(question: str, limit: int = 60) -> str:
    """A conversation's title: its first question, on one line, shortened."""
    q = " ".join(question.split())
    return q if len(q) <= limit else q[: limit - 1].rstrip() + "…"
