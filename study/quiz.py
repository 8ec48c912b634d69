"""Multiple-choice quizzes from the Q&A cards and the sections' "Explain …" cards.

Each question shows a card's front; the options are its answer and three distractors: the
answers of the nearest *other* cards of its kind (Q&A items; sections — notes with no Q&A at
all, a learner's lecture PDF or slides, still make a quiz) by embedding (the index's chunk
vectors, unit vectors, so no model runs), hence close in meaning but wrong. Never the right answer, never
its translation (a card already holds its twin), never two options with the same text.
Options are shuffled by a seed, so the same seed gives the same quiz. After answering, the
explanation is the full answer with its citation; :func:`score` sums up per topic.

Not guessable by matching words: the right option of 「什么是分词？」 starts 「分词是…」. So every
option hides the distinctive words of its *own* question and of the one asked (「＿＿是将文本分解为…」),
as a cloze: the learner must know which explanation belongs to the term asked, and blanks
appear in the distractors too. A question's Latin terms in its other language count as its words
(the Japanese twin of 「什么是掩码语言建模」 names MLM: 「＿＿(＿＿)涉及…」, not 「＿＿(MLM)涉及…MLM促进…」). Words common to many answers (LLM, 模型) stay. Among the nearest :data:`POOL`
items, distractors that share the question's key terms go first. Measured by
``python -m eval.quiz`` (:func:`giveaway`, and a word-overlap guesser).
A question's topic is the section of the notes' articles nearest to it (the Q&A lists have
no sections of their own: their topic would be the document's title for every question).
"""

from __future__ import annotations

import base64
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rag.text import sentence_spans
from study.types import Card, Source

N_OPTIONS = 4
MAX_OPTION_CHARS = 200
POOL = 12  # distractors are chosen among this many nearest fair items
COMMON_SHARE = 0.2  # a word in more than this share of a language's answers is not distinctive
QUIZ_KINDS = ("qa", "section")  # the cards a quiz asks; each question's distractors are of its own kind
BLANK = {"ja": "＿＿", "zh": "＿＿", "en": "___"}
_LATIN_WORD = re.compile(r"[0-9A-Za-z\u00c0-\u024f]+(?:[.\-+][0-9A-Za-z]+)*")


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
    rows_of = [[index.by_id[i] for i in c.chunk_ids if i in index.by_id] for c in cards]
    wanted = sorted({r for rows in rows_of for r in rows})
    # one read of the rows the deck uses (an engine index fetches them; a folder's are in memory)
    got = dict(zip(wanted, index.dense.vectors[np.array(wanted, dtype=np.int64)])) if wanted else {}
    for k, rows in enumerate(rows_of):
        if rows:
            v = np.stack([got[r] for r in rows]).mean(axis=0)
            n = float(np.linalg.norm(v))
            out[k] = v / n if n > 0 else v
    return out


def card_vector_table(index) -> dict:
    """:func:`card_vectors` of an in-memory index's cards as a table (:mod:`rag.pages`): float32
    bytes in base64 (exact), in card order."""
    from study.cards import build_cards

    v = card_vectors(build_cards(index.chunks, index.documents), index)
    return {"shape": list(v.shape), "float32": base64.b64encode(np.ascontiguousarray(v, np.float32).tobytes()).decode("ascii")}


def deck_vectors(index) -> np.ndarray:
    """:func:`card_vectors` of :func:`~study.cards.cards_from_index` (an engine index's: its stored table)."""
    t = index.table("card_vectors")
    return np.frombuffer(base64.b64decode(t["float32"]), dtype=np.float32).reshape(t["shape"]).copy()


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


def _terms(text: str) -> set[str]:
    from rag.analyze import word_tokens
    from rag.text import EN_STOP, QUESTION_WORDS

    return {t for t in word_tokens(text) if len(t) >= 2 and t not in QUESTION_WORDS and t not in EN_STOP}


def key_terms(prompt: str, right: str) -> set[str]:
    """The question's words that its right option repeats (analyzer words: MeCab / jieba /
    stemmed English; question words and stop words left out)."""
    return _terms(prompt) & _terms(right)


def named_terms(card: Card, lang: str) -> set[str]:
    """The words a card's question names its topic by: its ``lang`` question's, and the Latin
    ones of its questions in other languages — 「什么是掩码语言建模」's Japanese twin asks about
    「マスクドランゲージモデリング（MLM）」, so an option showing "MLM" gives the answer away."""
    own = card.front.get(lang) or card.front[card.pick(lang)]
    return _terms(own) | {t for text in card.front.values() for t in _terms(text) if t.isascii()}


def giveaway(prompt: str, options: Sequence[str], answer: int) -> set[str]:
    """The key terms only the right option contains: a learner matching words picks it."""
    keys = key_terms(prompt, options[answer])
    for k, text in enumerate(options):
        if k != answer:
            keys -= _terms(text)
    return keys


def common_terms(cards: Sequence[Card], lang: str, share: float = COMMON_SHARE, kind: str = "qa") -> frozenset[str]:
    """Words in more than ``share`` of the ``kind`` cards' answers in ``lang``: they give nothing away."""
    texts = [option_text(c, lang) for c in cards if c.kind == kind and lang in c.back]
    counts: dict[str, int] = {}
    for t in texts:
        for w in _terms(t):
            counts[w] = counts.get(w, 0) + 1
    return frozenset(w for w, n in counts.items() if n > share * max(1, len(texts)))


def mask(text: str, terms: set[str] | frozenset[str], lang: str) -> str:
    """``text`` with every occurrence of ``terms`` (analyzer words) blanked out: CJK words as
    written, English words by their stem ("tokenization" also hides "Tokenization").

    >>> mask("GPT-4はGPT-3よりも：大規模で", {"gpt"}, "ja")
    '＿＿は＿＿よりも：大規模で'
    """
    from rag.analyze import word_tokens

    blank = BLANK.get(lang, BLANK["en"])
    latin = {t for t in terms if t.isascii()}
    for t in sorted(terms - latin, key=len, reverse=True):
        text = re.sub(re.escape(t), blank, text, flags=re.IGNORECASE)
    if latin:
        # "GPT-4" is one word alone and two ("gpt", "4") in a Japanese sentence: either hides it
        text = _LATIN_WORD.sub(lambda m: blank if (set(word_tokens(m.group(0)))
                                                   | set(word_tokens(re.sub(r"[.\-+]", " ", m.group(0))))) & latin
                               else m.group(0), text)
    return re.sub(f"(?:{re.escape(blank)}\\s*)+{re.escape(blank)}", blank, text)


def _fair(i: int, cards: Sequence[Card], vectors: np.ndarray, lang: str, n: int) -> list[int]:
    """The ``n`` nearest cards to card ``i`` that make fair wrong options: another item (no
    shared chunk), with an answer in ``lang``, and an option text unlike any before it."""
    right = cards[i]
    sims = vectors @ vectors[i]
    taken = {_norm(option_text(right, lang))}
    out: list[int] = []
    for j in np.argsort(-sims, kind="stable"):
        j = int(j)
        c = cards[j]
        if (j == i or c.kind != right.kind or set(c.chunk_ids) & set(right.chunk_ids) or lang not in c.back
                or _nested(c.id, right.id)):
            continue
        key = _norm(option_text(c, lang))
        if not key or key in taken:
            continue
        taken.add(key)
        out.append(j)
        if len(out) == n:
            break
    return out


_SECTION_ID = re.compile(r"^section:([^#]*)#(.*?)(?: #\d+)?$")


def _nested(a: str, b: str) -> bool:
    """Whether section cards ``a`` and ``b`` are a section and one of its subsections ("KV cache"
    and "KV cache > Memory cost"): what a subsection says is said of its section too, so it is
    no wrong option for it, nor the section's for the subsection."""
    ma, mb = _SECTION_ID.match(a), _SECTION_ID.match(b)
    if not (ma and mb) or ma[1] != mb[1]:
        return False
    pa, pb = ma[2] + " > ", mb[2] + " > "
    return pa.startswith(pb) or pb.startswith(pa)


def distractors(
    i: int, cards: Sequence[Card], vectors: np.ndarray, lang: str, k: int = N_OPTIONS - 1, *, pool: int = POOL
) -> list[int]:
    """Indices of ``k`` fair wrong options for card ``i``, nearest first; among the ``pool``
    nearest, those sharing the question's key terms that the right option repeats go first
    (each such term covered by a distractor when one has it), so no word gives the answer away."""
    near = _fair(i, cards, vectors, lang, max(k, pool))
    right = cards[i]
    lang_r = right.pick(lang)
    keys = key_terms(right.front.get(lang_r, ""), option_text(right, lang_r)) if pool > k else set()
    out: list[int] = []
    if keys:
        terms = {j: _terms(option_text(cards[j], lang)) & keys for j in near}
        uncovered = set(keys)
        while uncovered and len(out) < k:
            best = max((j for j in near if j not in out), key=lambda j: len(terms[j] & uncovered), default=None)
            if best is None or not terms[best] & uncovered:
                break
            out.append(best)
            uncovered -= terms[best]
    out += [j for j in near if j not in out][: k - len(out)]
    return sorted(out, key=near.index)


def section_topics(cards: Sequence[Card], vectors: np.ndarray) -> dict[str, str]:
    """Q&A card id -> the topic of the nearest section card (the articles' headings), so a quiz
    is scored per subject rather than per interview list; empty when there are no sections."""
    sections = [k for k, c in enumerate(cards) if c.kind == "section" and c.topic]
    if not sections:
        return {}
    sims = vectors @ vectors[sections].T
    out = {}
    for k, c in enumerate(cards):
        if c.kind == "qa" and np.any(vectors[k]):
            out[c.id] = cards[sections[int(np.argmax(sims[k]))]].topic
    return out


def make_question(
    i: int,
    cards: Sequence[Card],
    vectors: np.ndarray,
    *,
    lang: str,
    seed: int | str = 0,
    topic: str | None = None,
    pool: int = POOL,
    hide: bool = True,
    common: frozenset[str] | None = None,
) -> QuizQuestion:
    """A question on card ``i`` in ``lang`` (the card's own language when it lacks ``lang``)."""
    right = cards[i]
    lang = right.pick(lang)
    wrong = distractors(i, cards, vectors, lang, pool=pool)
    if len(wrong) < N_OPTIONS - 1:
        raise ValueError(f"too few other {right.kind} cards in {lang!r} to make {N_OPTIONS - 1} distractors "
                         f"for {right.id}")
    picks = [i, *wrong]
    random.Random(f"{seed}|{right.id}").shuffle(picks)

    if hide and common is None:
        common = common_terms(cards, lang, kind=right.kind)

    asked = named_terms(right, lang)

    def shown(j: int) -> str:  # the option without its own question's or the asked one's distinctive words
        text = option_text(cards[j], lang)
        if not hide:
            return text
        return mask(text, ((named_terms(cards[j], lang) | asked) & _terms(text)) - common, lang)

    options = tuple(Option(cards[j].id, shown(j)) for j in picks)
    return QuizQuestion(
        card_id=right.id,
        lang=lang,
        prompt=right.front[lang],
        options=options,
        answer=picks.index(i),
        explanation=right.back[lang],
        source=right.sources[lang],
        topic=topic if topic is not None else right.topic,
    )


def make_quiz(
    cards: Sequence[Card],
    vectors: np.ndarray,
    *,
    n: int = 10,
    lang: str = "ja",
    seed: int | str = 0,
    pool: int = POOL,
    hide: bool = True,
) -> list[QuizQuestion]:
    """``n`` questions on Q&A and section cards chosen by ``seed`` (all of them if fewer), those
    in ``lang`` first, in the notes' order; a Q&A question under the topic of its nearest article
    section. A card whose kind has too few others in its language to make distractors is not
    asked. ``pool=N_OPTIONS - 1, hide=False`` gives the nearest items as distractors, words shown (the
    quiz before key terms were looked at)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if len(vectors) != len(cards):
        raise ValueError(f"{len(cards)} cards but {len(vectors)} vectors")
    askable = [k for k, c in enumerate(cards) if c.kind in QUIZ_KINDS]
    order = random.Random(f"{seed}|pick").sample(askable, len(askable))
    order.sort(key=lambda k: lang not in cards[k].langs)  # cards in the learner's language first
    topics = section_topics(cards, vectors)
    common: dict[tuple[str, str], frozenset[str]] = {}

    def common_for(k: int) -> frozenset[str]:
        key = (cards[k].pick(lang), cards[k].kind)
        if key not in common:
            common[key] = common_terms(cards, key[0], kind=key[1])
        return common[key]

    chosen: list[tuple[int, QuizQuestion]] = []
    for k in order:
        try:
            q = make_question(k, cards, vectors, lang=lang, seed=seed, topic=topics.get(cards[k].id), pool=pool,
                              hide=hide, common=common_for(k) if hide else None)
        except ValueError:  # too few other cards of its kind in its language
            continue
        chosen.append((k, q))
        if len(chosen) == n:
            break
    return [q for _, q in sorted(chosen, key=lambda kq: kq[0])]


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
