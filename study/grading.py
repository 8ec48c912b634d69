"""Grading a spoken-style answer against key points: pure functions over measured evidence.

Two kinds of evidence, because term overlap means nothing across languages:

* **Same language** as the notes: a key point is covered when the answer uses at least
  ``share_at`` of the point's terms (idf-weighted; words and CJK bigrams from the index
  analyzer). The answer's *precision* — the idf-weighted share of its terms (those the notes
  know) that occur in the reference passage — tells a short but faithful answer (partial) from
  one that brings in other ideas (wrong), and must reach ``precision_good`` for a good grade.
* **Another language** (an English answer to Japanese notes): a point is covered when the
  answer sentence closest to it is closer to it than to the bare question by ``margin_at``
  (embedding cosines; the question is the baseline of "on topic, says nothing").

A point the answer says with other numbers (its closest sentence states numbers, none of the
point's, and the answer never states the point's: QLoRA with "8ビット" where the notes say 4)
is contradicted: missed, and the grade is at most partial. The verdict: ``good`` when the share of covered points
reaches ``good_at``; ``partial`` when it reaches ``partial_at``, or the answer is faithful
(precision ≥ ``precision_partial``) or, across languages, its best margin reaches
``margin_partial``; else ``wrong``.

The thresholds are tuned per encoder by ``python -m eval drill --tune`` on the dev half of
``eval/data/drill_answers.jsonl`` and stored in ``study/grading.json`` (the one file the tuner
writes and this module reads); an encoder never tuned gets the defaults below.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from rag.tuned import encoder_key

PARAMS_FILE = Path(__file__).resolve().parent / "grading.json"
VERDICTS = ("good", "partial", "wrong")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_TENTHS = re.compile(r"(\d{1,2})割")


@dataclass(frozen=True)
class Params:
    share_at: float = 0.25
    margin_at: float = 0.0
    good_at: float = 0.4
    partial_at: float = 0.1
    precision_good: float = 0.3
    precision_partial: float = 0.5
    margin_partial: float = -0.025

    def __post_init__(self):
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"{f.name} must be a number, got {v!r}")
        for name in ("share_at", "precision_good", "precision_partial"):
            if not 0.0 <= getattr(self, name) <= 1.5:
                raise ValueError(
                    f"{name} must be within [0, 1.5] (above 1 switches the rule off), got {getattr(self, name)}"
                )
        if not 0.0 < self.partial_at <= self.good_at <= 1.0:
            raise ValueError(f"need 0 < partial_at <= good_at <= 1, got {self.partial_at}, {self.good_at}")
        for name in ("margin_at", "margin_partial"):
            if not -1.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within [-1, 1], got {getattr(self, name)}")

    def to_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, float]) -> Params:
        return cls(**{k: float(v) for k, v in d.items()})


@functools.lru_cache(maxsize=8)
def _table(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("encoders", {})
    except FileNotFoundError:
        return {}


def forget_params() -> None:
    """Drop the cached parameter files (after the tuner wrote a new one)."""
    _table.cache_clear()


def load_params(encoder_id: str, path: Path = PARAMS_FILE) -> Params:
    """The tuned parameters for ``encoder_id`` (defaults when it was never tuned)."""
    d = _table(path).get(encoder_key(encoder_id))
    return Params.from_dict(d["params"]) if d else Params()


def term_share(point_terms: Collection[str], answer_terms: Collection[str], idf: Mapping[str, float]) -> float:
    """The idf-weighted share of ``point_terms`` found in ``answer_terms`` (0 when there are none):
    how much of a point an answer uses, or (swapped) how much of an answer the notes contain.

    >>> term_share({"lora", "rank"}, {"lora"}, {"lora": 3.0, "rank": 1.0})
    0.75
    """
    total = sum(idf.get(t, 0.0) for t in point_terms)
    if total <= 0:
        return 0.0
    return sum(idf.get(t, 0.0) for t in point_terms if t in answer_terms) / total


def numbers(text: str) -> set[str]:
    """The numbers written in ``text`` (thousands separators dropped, 割 as tens of percent).

    >>> sorted(numbers("32,000トークン、0.95、1割"))
    ['0.95', '10', '32000']
    """
    text = _TENTHS.sub(lambda m: f"{int(m.group(1)) * 10}%", text)  # 1割 = 10%
    return {re.sub(r",(?=\d{3}\b)", "", n) for n in _NUMBER.findall(text)}


def numbers_differ(point_text: str, sentence: str, answer: str) -> bool:
    """The answer sentence closest to the point states numbers, and the whole answer never
    states any of the point's numbers.

    >>> numbers_differ("例：4ビット精度", "8ビットに量子化します", "8ビットに量子化します")
    True
    """
    p = numbers(point_text)
    return bool(p and numbers(sentence) and not (p & numbers(answer)))


def point_status(
    share: float, margin: float, same_language: bool, numbers_differ: bool, params: Params
) -> tuple[bool, bool]:
    """``(covered, contradicted)`` for one point: the answer *says* the point when it uses enough
    of its terms (same language) or its closest sentence is closer to it than to the question by
    ``margin_at`` (another language); saying it with other numbers is a contradiction, not coverage.

    >>> p = Params(share_at=0.2, margin_at=0.01)
    >>> point_status(0.5, 0.0, True, False, p), point_status(0.1, 0.5, True, False, p), point_status(0.0, 0.02, False, True, p)
    ((True, False), (False, False), (False, True))
    """
    says = share >= params.share_at if same_language else margin >= params.margin_at
    return says and not numbers_differ, says and numbers_differ


def coverage(covered: Sequence[bool], weights: Sequence[float] | None = None) -> float:
    """(Weighted) share of covered points; negative weights count as 0, all-zero weights as equal.
    The drill counts every key point equally: the encoders' question-to-sentence similarities
    are too compressed (e5) or too noisy to rank the points by importance.

    >>> coverage([True, False, True]), coverage([True, False, True], [2.0, 1.0, 1.0]), coverage([True, False], [-0.1, -0.2])
    (0.6666666666666666, 0.75, 0.5)
    """
    if len(covered) == 0:
        return 0.0
    w = np.ones(len(covered)) if weights is None else np.clip(np.asarray(weights, dtype=np.float64), 0.0, None)
    if w.sum() <= 0:
        w = np.ones(len(w))
    return float(w[np.asarray(covered, dtype=bool)].sum() / w.sum())


def verdict_code(share, *, same_language, precision, best_margin, contradicted, params: Params):
    """:func:`verdict` as an index into :data:`VERDICTS` (0 good, 1 partial, 2 wrong). Works
    elementwise on numpy arrays too, parameters included, so the tuner scores a whole grid at
    once with the very rule the grader uses."""
    faithful = np.asarray(precision) >= params.precision_good
    good = (
        (np.asarray(share) >= params.good_at)
        & ~np.asarray(contradicted, dtype=bool)
        & (faithful | ~np.asarray(same_language, dtype=bool))
    )
    part = (
        (np.asarray(share) >= params.partial_at)
        | np.asarray(contradicted, dtype=bool)
        | np.where(
            same_language,
            np.asarray(precision) >= params.precision_partial,
            np.asarray(best_margin) >= params.margin_partial,
        )
    )
    return np.where(good, 0, np.where(part, 1, 2))


def verdict(
    share: float, *, same_language: bool, precision: float, best_margin: float, contradicted: bool, params: Params
) -> str:
    """``good`` / ``partial`` / ``wrong`` from the weighted share of covered points and the
    answer-level evidence (see the module docstring).

    >>> p = Params()
    >>> verdict(0.8, same_language=True, precision=0.6, best_margin=0.0, contradicted=False, params=p)
    'good'
    >>> verdict(0.8, same_language=True, precision=0.6, best_margin=0.0, contradicted=True, params=p)
    'partial'
    >>> verdict(0.0, same_language=True, precision=0.2, best_margin=0.0, contradicted=False, params=p)
    'wrong'
    >>> verdict(0.0, same_language=False, precision=0.0, best_margin=0.0, contradicted=False, params=p)
    'partial'
    """
    code = verdict_code(
        share,
        same_language=same_language,
        precision=precision,
        best_margin=best_margin,
        contradicted=contradicted,
        params=params,
    )
    return VERDICTS[int(code)]
