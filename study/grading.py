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
point's nor another point's, and the answer never states the point's: QLoRA with "8ビット" where
the notes say 4), or whose closest sentence states its opposite (negates a term they share:
「QLoRA 不使用量化」; or says more where the point says less: 「内存开销很大」 against 「最小」), is
contradicted: missed, and the grade is at most partial; stating a point's opposite makes it
wrong unless the rest covers a good answer's share. The verdict: ``good`` when the share of covered points
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


def numbers_differ(point_text: str, sentence: str, answer: str, others: Sequence[str] = ()) -> bool:
    """The answer sentence closest to the point states numbers — not those of the ``others``
    key points, which it may be stating — and the whole answer never states any of the point's.

    >>> numbers_differ("例：4ビット精度", "8ビットに量子化します", "8ビットに量子化します")
    True
    >>> numbers_differ("700亿参数的模型", "量化到4位精度", "量化到4位精度", others=["量化(如4位精度)"])
    False
    """
    p = numbers(point_text)
    stated = numbers(sentence) - {n for o in others for n in numbers(o)}
    return bool(p and stated and not (p & numbers(answer)))


# Size words of one direction and the other (ja / zh / en): a sentence saying "large" of what the
# point says "small" states the opposite (「内存开销很大」 against 「内存开销最小」).
_MORE = re.compile(r"大き|多い|多く|高い|増え|増加|很大|较大|更大|大量|很多|更多|增加|提高|large|big|\ba lot\b|\bmore\b|"
                   r"\bmuch\b|high|increase", re.I)
_LESS = re.compile(r"小さ|少な|低い|減ら|削減|最小|很小|较小|更小|最小|很少|更少|减少|降低|small|little|\bless\b|\bfew|"
                   r"low|reduc|decrease|cut", re.I)
# A negation right before a term (不使用量化, 量子化しない, "without quantization").
_NEG_BEFORE = r"(?:不|没有|没|无|未|非)(?:使用|用|需要|需|会|是|做|进行)?\s*"
_NEG_AFTER = r"\s*(?:を|は|が|も)?(?:[^\s、。,.]{0,3}?(?:ません|(?<!少)ない|せず)|なし|不要)"


def polarity(text: str) -> int:
    """+1 when ``text`` speaks of more/larger only, -1 of less/smaller only, else 0.

    >>> polarity("内存开销最小"), polarity("LoRA 内存开销很大"), polarity("higher, but lower")
    (-1, 1, 0)
    """
    more, less = bool(_MORE.search(text)), bool(_LESS.search(text))
    return (1 if more else -1) if more != less else 0


def negates(sentence: str, terms: Collection[str]) -> bool:
    """Whether ``sentence`` negates one of ``terms`` (不使用量化, 量子化しない, "no quantization").

    >>> negates("QLoRA 不使用量化。", {"量化", "qlora"}), negates("QLoRA使用量化。", {"量化"})
    (True, False)
    >>> negates("強化学習は使いません", {"学習"}), negates("学習データが少ない", {"学習"})
    (True, False)
    """
    for t in terms:
        if len(t) < 2 or t.startswith("~"):
            continue
        e = re.escape(t)
        if re.search(_NEG_BEFORE + e, sentence, re.I) or re.search(e + _NEG_AFTER, sentence, re.I) or \
                re.search(r"\b(?:not|no|without|never)\s+(?:\w+\s+){0,2}" + e, sentence, re.I):
            return True
    return False


def opposes(point_text: str, sentence: str, shared_terms: Collection[str]) -> bool:
    """The sentence closest to a point states its opposite: it negates a term the two share, or
    speaks of more where the point speaks of less (or the reverse).

    >>> opposes("QLoRAは4ビット量子化でメモリを削減", "QLoRA 不使用量化", {"量化"})
    True
    """
    p, s = polarity(point_text), polarity(sentence)
    return negates(sentence, shared_terms) or (p != 0 and s == -p)


def point_status(
    share: float, margin: float, same_language: bool, numbers_differ: bool, params: Params, opposite: bool = False
) -> tuple[bool, bool]:
    """``(covered, contradicted)`` for one point: the answer *says* the point when it uses enough
    of its terms (same language) or its closest sentence is closer to it than to the question by
    ``margin_at`` (another language); saying it with other numbers is a contradiction, not coverage;
    so is stating its ``opposite`` (:func:`opposes`), said or not.

    >>> p = Params(share_at=0.2, margin_at=0.01)
    >>> point_status(0.5, 0.0, True, False, p), point_status(0.1, 0.5, True, False, p), point_status(0.0, 0.02, False, True, p)
    ((True, False), (False, False), (False, True))
    >>> point_status(0.5, 0.0, True, False, p, opposite=True)
    (False, True)
    """
    says = share >= params.share_at if same_language else margin >= params.margin_at
    return says and not (numbers_differ or opposite), (says and numbers_differ) or opposite


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


def verdict_code(share, *, same_language, precision, best_margin, contradicted, params: Params, opposed=False):
    """:func:`verdict` as an index into :data:`VERDICTS` (0 good, 1 partial, 2 wrong). Works
    elementwise on numpy arrays too, parameters included, so the tuner scores a whole grid at
    once with the very rule the grader uses. ``opposed``: some point's opposite is stated
    (:func:`opposes`) — partial only when the answer covers a good answer's share of the rest."""
    faithful = np.asarray(precision) >= params.precision_good
    good = (
        (np.asarray(share) >= params.good_at)
        & ~np.asarray(contradicted, dtype=bool)
        & (faithful | ~np.asarray(same_language, dtype=bool))
    )
    # stating the opposite of the notes is wrong, however many of their words it reuses
    part = ~(np.asarray(opposed, dtype=bool) & (np.asarray(share) < params.good_at)) & (
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
    share: float, *, same_language: bool, precision: float, best_margin: float, contradicted: bool, params: Params,
    opposed: bool = False,
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
        opposed=opposed,
    )
    return VERDICTS[int(code)]
