"""A conversation turn as a plain record (for the store) and back.

:func:`to_record` stores :meth:`Answer.to_dict <rag.answer.Answer.to_dict>` — everything the
chat shows, the quoted passages themselves and not only their ids, and the endpoint's error —
so a saved conversation still reads the same after the notes are re-indexed or edited.
:func:`from_record` rebuilds the ``Answer`` (the follow-up logic takes earlier answers as
``history``); records of version 1 are still read.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from rag.answer import Answer
from rag.citations import Citation
from rag.types import Chunk, Hit

RECORD_VERSION = 2  # 1: the fields written out here, before Answer.to_dict


def to_record(a: Answer) -> dict[str, Any]:
    """``a`` as JSON-ready data for the store: :meth:`Answer.to_dict` with a version."""
    return {"v": RECORD_VERSION, **a.to_dict()}


def from_record(d: dict[str, Any]) -> Answer:
    """The :class:`Answer` a record was made from. :class:`ValueError` when it is not one."""
    if not isinstance(d, dict):
        raise ValueError(f"not a saved answer (a {type(d).__name__})")
    if d.get("v") == 1:
        return _from_v1(d)
    return Answer.from_dict(d)


def _from_v1(d: dict[str, Any]) -> Answer:
    """Conversations saved before answers serialised themselves (read-only: never written)."""
    try:
        def hit(h):
            return Hit(Chunk.from_dict(h["chunk"]), int(h["rank"]), float(h["score"]), dict(h.get("scores") or {}))

        citations = tuple(
            Citation(int(c["number"]), Chunk.from_dict(c["chunk"]), hit(c["hit"]), bool(c.get("translated")),
                     None if c.get("parallel") is None else Chunk.from_dict(c["parallel"]),
                     tuple((int(s), int(e)) for s, e in c.get("quotes", ())))
            for c in d.get("citations", ())
        )
        v2 = {k: v for k, v in d.items() if k not in ("v", "text", "citations", "hits")}
        answer = Answer.from_dict({**v2, "answer": d["text"]})
        return dataclasses.replace(answer, citations=citations, hits=tuple(hit(h) for h in d.get("hits", ())))
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise ValueError(f"not a saved answer ({type(e).__name__}: {e})") from None


def title_for(question: str, limit: int = 60) -> str:
    """A conversation's title: its first question, on one line, shortened."""
    q = " ".join(question.split())
    return q if len(q) <= limit else q[: limit - 1].rstrip() + "…"
