"""Parallel passages: the same numbered Q&A item in two languages.

Two documents in different languages are parallel when they share numbered Q&A items
whose questions embed close together (a translation pair). Each chunk of item N in one
gets ``parallel`` = the first chunk of item N in the other, and back.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict

import numpy as np

from rag.types import Chunk

MIN_SHARED_ITEMS = 3
MIN_DOC_SIMILARITY = 0.6  # mean question similarity of a translated document pair
MIN_ITEM_SIMILARITY = 0.45


def link_parallel(chunks: list[Chunk], heads: np.ndarray) -> list[Chunk]:
    """Return ``chunks`` with ``parallel`` set for translated Q&A items (inputs unchanged).

    ``heads[i]`` is the unit vector of chunk ``i``'s question text.
    """
    first: dict[str, dict[int, int]] = defaultdict(dict)  # doc -> qnum -> first chunk index
    lang: dict[str, str] = {}
    for i, c in enumerate(chunks):
        if c.kind == "qa" and c.qnum is not None and c.qnum not in first[c.doc_id]:
            first[c.doc_id][c.qnum] = i
            lang.setdefault(c.doc_id, c.lang)
    link: dict[tuple[str, int], int] = {}
    docs = sorted(first)
    for a_pos, a in enumerate(docs):
        for b in docs[a_pos + 1 :]:
            if lang[a] == lang[b]:
                continue
            shared = sorted(set(first[a]) & set(first[b]))
            if len(shared) < MIN_SHARED_ITEMS:
                continue
            sims = np.array([float(heads[first[a][q]] @ heads[first[b][q]]) for q in shared])
            if sims.mean() < MIN_DOC_SIMILARITY:
                continue
            for q, s in zip(shared, sims):
                if s >= MIN_ITEM_SIMILARITY:
                    link[(a, q)] = first[b][q]
                    link[(b, q)] = first[a][q]
    out = []
    for c in chunks:
        j = link.get((c.doc_id, c.qnum)) if c.kind == "qa" and c.qnum is not None else None
        out.append(dataclasses.replace(c, parallel=chunks[j].id) if j is not None else c)
    return out
