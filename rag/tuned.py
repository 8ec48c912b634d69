"""The tuned values of the search pipeline: one file, written by ``python -m eval tune``
and read by :class:`rag.search.Searcher` (nothing is copied by hand into code).

``rag/tuned.json`` holds one entry per encoder (``e5-small``, ``use-m3`` …), because the
weights that suit one encoder's scores do not suit another's. An index built with an
encoder that has no entry is searched with :data:`FALLBACK` and a note saying so.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.files import atomic_write

TUNED_FILE = Path(__file__).with_name("tuned.json")
MODES = ("bm25", "dense", "hybrid", "rerank")


@dataclass(frozen=True)
class Tuned:
    """Settings fitted on the dev halves for one encoder.

    * ``bm25_weight``: weight of the min-max normalised BM25 leg in the fused score; with
      ``adaptive`` it is scaled by the query's vocabulary coverage and the dense leg gets
      the rest.
    * ``whole_weight``: the dense score of a passage is ``whole_weight`` x its whole-passage
      cosine plus the rest x the best cosine among its units (lines, sentences) and heading.
    * ``names_first``: fused candidates that contain every name the question asks about
      (RAG, LoRA, GPT-4 …) go first (:func:`rag.search.names_first`).
    * ``centre_languages``: the dense leg scores each passage against the passages of its own
      language (its cosine less the mean cosine of that language's passages for this query):
      the encoder ranks a Chinese question's Chinese passages above the Japanese passage that
      answers it, whatever they say (:meth:`rag.search.Searcher.dense_leg`). Only for a question
      written in one of the notes languages (an English question over Japanese and Chinese
      notes is not pulled towards either).
    * ``language_fusion``: a passage in another language than the question's is scored by the
      dense leg alone: the keyword leg, weighted by the question's coverage in the notes of its
      own language, cannot see it (:func:`rag.search.fuse`). Languages as in
      :func:`rag.rules.script.notes_languages`, for this and ``centre_languages``.
    * ``reranker``: ``{"features": [...], "weights": [...]}`` of the feature reranker, or
      ``None`` when no reranker beat ``hybrid`` on questions it was not fitted to.
    * ``answer``: ``{"calibration": {...}}``, the relevance model the answerer abstains by
      (written by ``python -m eval answers --calibrate``).
    """

    encoder: str
    fusion: str = "wsum"
    bm25_weight: float = 0.5
    adaptive: bool = True
    rrf_k: int = 60
    whole_weight: float = 0.5
    candidates: int = 50
    names_first: bool = False
    centre_languages: bool = False
    language_fusion: bool = False
    default_mode: str = "hybrid"
    reranker: dict[str, Any] | None = None
    answer: dict[str, Any] | None = None
    note: str = ""
    evidence: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self):
        if self.fusion not in ("wsum", "rrf"):
            raise ValueError(f"fusion must be 'wsum' or 'rrf', got {self.fusion!r}")
        if not 0.0 <= self.bm25_weight <= 1.0:
            raise ValueError(f"bm25_weight must be in [0, 1], got {self.bm25_weight}")
        if not 0.0 <= self.whole_weight <= 1.0:
            raise ValueError(f"whole_weight must be in [0, 1], got {self.whole_weight}")
        if self.candidates < 1:
            raise ValueError(f"candidates must be >= 1, got {self.candidates}")
        if self.default_mode not in MODES:
            raise ValueError(f"default_mode must be one of {MODES}, got {self.default_mode!r}")
        if self.default_mode == "rerank" and not self.reranker:
            raise ValueError("default_mode 'rerank' needs reranker weights")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


FALLBACK = Tuned(encoder="*", note="no tuned values for this encoder: untuned defaults")


def encoder_key(encoder_id: str) -> str:
    """``e5-small@0.3.0`` -> ``e5-small``; ``st:intfloat/x`` stays as it is."""
    return encoder_id.split("@", 1)[0]


def read_all(path: Path = TUNED_FILE) -> dict[str, dict[str, Any]]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold an object of encoder entries")
    return data


def load_tuned(encoder_id: str, path: Path = TUNED_FILE) -> Tuned:
    """The tuned values for ``encoder_id`` (or :data:`FALLBACK`)."""
    entry = read_all(path).get(encoder_key(encoder_id))
    if entry is None:
        return FALLBACK
    known = {f.name for f in dataclasses.fields(Tuned)}
    return Tuned(**{k: v for k, v in entry.items() if k in known})


def save_tuned(tuned: Tuned, path: Path = TUNED_FILE) -> None:
    """Write ``tuned`` as its encoder's entry, keeping the other encoders' entries."""
    data = read_all(path)
    data[tuned.encoder] = tuned.to_dict()
    atomic_write(path, json.dumps(data, ensure_ascii=False, indent=1) + "\n")
