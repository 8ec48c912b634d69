"""Do the notes answer this question? Calibrated relevance and the distinctive-term check.

Two signals, combined:

* **Similarity**, calibrated: a logistic model over the best passage's and the best
  quotable unit's cosine with the question, and the share of the question's content words
  (CJK, or English over English notes) that never occur in the notes, fitted on labelled
  on- and off-topic questions (``python -m eval answers --calibrate``; the weights live in ``rag/tuned.json``).
  Its output is the ``relevance`` shown with an answer: one scale for every question.
* **Distinctive terms**: names, versions and products in the question (``GPT-6``,
  ``Kubernetes``, ``Llama 5``) should occur in what the notes explain (not only in a list
  of interview questions). The share missing is a feature of the model; a versioned
  product name missing (``GPT-6`` when the notes know GPT-4) decides on its own: the notes
  do not cover the question, however similar the rest of it sounds.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from rag.extract import content_terms, quotable_units
from rag.facts import occurs
from rag.followup import FACETS
from rag.index import Index
from rag.text import CJK, distinctive_terms, squash
from rag.types import Hit, Query

# The features of the calibrated model (:func:`features`), in the order the calibration fits them.
FEATURES = ("passage", "unit", "words_missing", "other_language", "term_missing")
# Features under their former names (a calibration written before the rename still reads).
RENAMED = {"cjk_missing": "words_missing"}
# Defaults until `python -m eval answers --calibrate` has written calibrated values.
DEFAULT_CALIBRATION = {"weights": {"passage": 30.0, "unit": 30.0, "words_missing": -3.0, "other_language": 1.5,
                                   "term_missing": -3.0}, "bias": -50.0, "threshold": 0.5}
# A product or model with a version: GPT-6, Llama 5, Claude 4, Gemini 3.5. Absent from the
# notes, it means the notes cannot answer, however close the rest of the question is.
_VERSIONED = re.compile(r"^[A-Za-z]{2,}[A-Za-z]*[ -]?\d+(?:\.\d+)?$")


@dataclass(frozen=True)
class Judgement:
    """Whether to answer, with the evidence: ``relevance`` in [0, 1], the question's
    distinctive terms the notes lack, and the raw features."""

    relevance: float
    answerable: bool
    missing: tuple[str, ...] = ()
    features: Mapping[str, float] = field(default_factory=dict)


def missing_terms(index: Index, question: str, lang: str) -> list[str]:
    """The distinctive terms of ``question`` that the notes' quotable text does not contain."""
    terms = distinctive_terms(question, lang)
    return [t for t, there in zip(terms, occurs(index.facts.quotable_text, [squash(t) for t in terms])) if not there]


def missing_versions(index: Index, question: str, lang: str) -> list[str]:
    """Versioned product names in ``question`` (GPT-6, Llama 5) that the notes never explain."""
    return [t for t in missing_terms(index, question, lang) if _VERSIONED.match(t)]


def term_missing_share(index: Index, question: str, lang: str) -> float:
    """Share of the question's distinctive terms the notes do not explain (0 when it has none)."""
    terms = distinctive_terms(question, lang)
    return len(missing_terms(index, question, lang)) / len(terms) if terms else 0.0


def missing_word_share(index: Index, query: Query) -> float:
    """Share of the question's content words that occur nowhere in the notes: its CJK words
    (looked up in the notes' text), and an English question's words when the notes have
    English passages (looked up among the notes' analysed terms: "bake", "sourdough" and
    "bread" are in no English note about LLMs). A word naming the facet asked about
    (メリット, 欠点, 区别) is not one: the notes say it their own way."""
    words = [t for t in content_terms(query) if not FACETS.match(t)]
    cjk = [t for t in words if CJK.search(t)]
    latin = [t for t in words if not CJK.search(t)] if query.lang == "en" and "en" in index.notes_languages() else []
    if not cjk and not latin:
        return 0.0
    vocabulary = index.facts.vocabulary.values()
    missing = sum(not there for there in occurs(index.facts.squashed_notes, [squash(t) for t in cjk]))
    missing += sum(not any(t in terms for terms in vocabulary) for t in latin)
    return missing / (len(cjk) + len(latin))


def features(index: Index, query: Query, hits: Sequence[Hit], question: str | None = None,
             *, depth: int = 3) -> dict[str, float]:
    """The features of the calibrated model for ``query`` and its top ``hits``: the best
    passage and unit cosines, the share of the question's CJK words and of its distinctive
    terms the notes lack, and whether it is written in none of the notes' languages
    (cross-language cosines run lower)."""
    rows = np.array([index.by_id[h.chunk.id] for h in hits[:depth]], dtype=np.int64)
    # A question in none of the notes' languages (Chinese over Japanese notes alone) has lower
    # cosines with every passage, and its words are not the notes' words: whether its CJK words
    # occur in the notes says nothing about whether they answer. It is judged as an English
    # question is (the calibration's cross-language feature was fitted on English questions over
    # Japanese and Chinese notes; an English question keeps it over notes with some English too).
    foreign = query.lang not in index.notes_languages()
    other = foreign or query.lang == "en"
    base = {"words_missing": 0.0 if foreign else missing_word_share(index, query), "other_language": float(other),
            "term_missing": term_missing_share(index, question if question is not None else query.text, query.lang)}
    if not len(rows) or query.vector is None:
        return {"passage": 0.0, "unit": 0.0, **base}
    passage = float(index.passage_similarity(rows, query.vector).max())
    best = 0.0
    for r in rows:
        for u in quotable_units(index, int(r)):
            best = max(best, float(index.units[index.unit_offsets[r] + u.index] @ query.vector))
    return {"passage": passage, "unit": best, **base}


def calibrated(feats: Mapping[str, float], calibration: Mapping | None = None) -> float:
    """P(the notes answer it) from the features, by the calibrated logistic model. A weight for
    a feature this model does not compute is an error, not a weight of zero: a calibration
    written for other features would otherwise judge every question without it."""
    cal = calibration or DEFAULT_CALIBRATION
    weights = {RENAMED.get(k, k): w for k, w in cal["weights"].items()}
    unknown = sorted(set(weights) - set(FEATURES))
    if unknown:
        raise ValueError(f"the relevance calibration weighs features this model does not compute: {', '.join(unknown)} "
                         f"(known: {', '.join(FEATURES)}); calibrate again: python -m eval answers --calibrate")
    z = cal["bias"] + sum(w * feats.get(k, 0.0) for k, w in weights.items())
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


def judge(index: Index, query: Query, hits: Sequence[Hit], *, question: str, lang: str,
          calibration: Mapping | None = None) -> Judgement:
    """Answer or abstain: a versioned product name missing from the notes, or a calibrated
    relevance under the threshold, means the notes do not cover the question."""
    feats = features(index, query, hits, question)
    rel = calibrated(feats, calibration)
    missing = tuple(missing_versions(index, question, lang))
    threshold = (calibration or DEFAULT_CALIBRATION).get("threshold", 0.5)
    return Judgement(rel, bool(hits) and not missing and rel >= threshold, missing, feats)
