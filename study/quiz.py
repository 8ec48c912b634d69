"""Multiple-choice quizzes from the Q&A cards.

Each question shows a card's front; the options are its answer and three distractors: the
answers of the nearest *other* Q&A items by embedding (the index's chunk vectors, unit
vectors, so no model runs), hence close in meaning but wrong. Never the right answer, never
its translation (a card already holds its twin), never two options with the same text.
Options are shuffled by a seed, so the same seed gives the same quiz. After answering, the
explanation is the full answer with its citation; :func:`score` sums up per topic.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rag.text import sentence_spans
from study.types import Card, Source

N_OPTIONS = 4
MAX_OPTION_CHARS = 200


@dataclass(frozen=True)
class Option:
    card_id: str
    text: str


@dataclass(frozen=True)
class QuizQuestion:
    card_id: str
    lang: str
    prompt: str
    options: tuple[Option, ...]
    answer: int  # index of the right option
    explanation: str  # the full answer
    source: Source  # where the explanation comes from
    topic: str


@dataclass(frozen=True)
class QuizAnswer:
    question: QuizQuestion
    chosen: int

    @property
    def correct(self) -> bool:
        return self.chosen == self.question.answer


@dataclass(frozen=True)
class QuizScore:
    total: int
    correct: int
    by_topic: dict[str, dict[str, int]]  # topic -> {"correct", "total"}

    @property
    def ratio(self) -> float:
        return self.correct / self.total if self.total else 0.0


def card_vectors(cards: Sequence[Card], index) -> np.ndarray:
    """One unit vector per card: the mean of its chunks' vectors in ``index`` (zeros when the
    index has none of them, e.g. cards from an older index)."""
    dim = index.dense.vectors.shape[1]
    out = np.zeros((len(cards), dim), dtype=np.float32)
    for k, c in enumerate(cards):
        rows = [index.by_id[i] for i in c.chunk_ids if i in index.by_id]
        if rows:
            v = index.dense.vectors[rows].mean(axis=0)
            n = float(np.linalg.norm(v))
            out[k] = v / n if n > 0 else v
    return out


def option_text(card: Card, lang: str) -> str:
    """The first sentences of the card's answer in ``lang``, at most :data:`MAX_OPTION_CHARS`."""
    text = " ".join(card.back[card.pick(lang)].split("\n"))
    out = ""
    for s, e in sentence_spans(text):
        piece = text[s:e].strip()
        if out and len(out) + len(piece) > MAX_OPTION_CHARS:
            break
        out = f"{out} {piece}".strip() if out and not _cjk_end(out) else out + piece
    if len(out) > MAX_OPTION_CHARS:
        out = out[: MAX_OPTION_CHARS - 1].rstrip() + "…"
    return out


def _cjk_end(s: str) -> bool:
    return bool(re.search(r"[\u3000-\u30ff\u3400-\u9fff\uff00-\uffef]$", s))


def _norm(text: str) -> str:
    return re.sub(r"\W+", "", text.lower())


def distractors(i: int, cards: Sequence[Card], vectors: np.ndarray, lang: str, k: int = N_OPTIONS - 1) -> list[int]:
    """Indices of the ``k`` cards nearest to card ``i`` that make fair wrong options: another
    item (no shared chunk), with an answer in ``lang``, and an option text unlike any chosen."""
    right = cards[i]
    sims = vectors @ vectors[i]
    taken = {_norm(option_text(right, lang))}
    out: list[int] = []
    for j in np.argsort(-sims, kind="stable"):
        j = int(j)
        c = cards[j]
        if j == i or c.kind != right.kind or set(c.chunk_ids) & set(right.chunk_ids) or lang not in c.back:
            continue
        key = _norm(option_text(c, lang))
        if not key or key in taken:
            continue
        taken.add(key)
        out.append(j)
        if len(out) == k:
            break
    return out


def make_question(
    i: int, cards: Sequence[Card], vectors: np.ndarray, *, lang: str, seed: int | str = 0
) -> QuizQuestion:
    """A question on card ``i`` in ``lang`` (the card's own language when it lacks ``lang``)."""
    right = cards[i]
    lang = right.pick(lang)
    wrong = distractors(i, cards, vectors, lang)
    if len(wrong) < N_OPTIONS - 1:
        raise ValueError(f"too few other Q&A items in {lang!r} to make {N_OPTIONS - 1} distractors for {right.id}")
    picks = [i, *wrong]
    random.Random(f"{seed}|{right.id}").shuffle(picks)
    options = tuple(Option(cards[j].id, option_text(cards[j], lang)) for j in picks)
    return QuizQuestion(
        card_id=right.id,
        lang=lang,
        prompt=right.front[lang],
        options=options,
        answer=picks.index(i),
        explanation=right.back[lang],
        source=right.sources[lang],
        topic=right.topic,
    )


def make_quiz(
    cards: Sequence[Card], vectors: np.ndarray, *, n: int = 10, lang: str = "ja", seed: int | str = 0
) -> list[QuizQuestion]:
    """``n`` questions on Q&A cards chosen by ``seed`` (all of them if fewer)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if len(vectors) != len(cards):
        raise ValueError(f"{len(cards)} cards but {len(vectors)} vectors")
    qa = [k for k, c in enumerate(cards) if c.kind == "qa"]
    chosen = sorted(random.Random(f"{seed}|pick").sample(qa, min(n, len(qa))))
    return [make_question(k, cards, vectors, lang=lang, seed=seed) for k in chosen]


def check(question: QuizQuestion, chosen: int) -> QuizAnswer:
    if not 0 <= chosen < len(question.options):
        raise ValueError(f"chosen must be an option number 0-{len(question.options) - 1}, got {chosen}")
    return QuizAnswer(question, chosen)


def score(answers: Sequence[QuizAnswer]) -> QuizScore:
    """Right answers overall and per topic (the card's section)."""
    by: dict[str, dict[str, int]] = {}
    for a in answers:
        t = by.setdefault(a.question.topic, {"correct": 0, "total": 0})
        t["total"] += 1
        t["correct"] += int(a.correct)
    return QuizScore(len(answers), sum(a.correct for a in answers), by)
