"""Mock interview: a question, the learner's typed answer, and a grade against what the notes say.

1. :func:`reference` retrieves passages for the question (``Searcher.search``), asks a
   *coverage decision* whether the notes answer it at all, and takes the key points: the
   passages' sentence units (``Index.chunk_unit_spans``) most similar to the question.
   Question lists (they ask, never answer) and the question lines themselves are never points.
2. :func:`grade` splits the answer into sentences (``rag.text.unit_spans``), encodes them with
   the searcher's encoder, and marks each key point covered or missed (see
   :mod:`study.grading`); the verdict is good / partial / wrong, with every point cited.

When the notes do not cover the question the grade says so plainly and gives no model answer;
an empty answer gets a prompt, not a grade. The coverage decision is a plain function
(``covers=``): :func:`notes_cover` is the default until the answer module's calibrated
abstention replaces it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rag.context import DEFAULT_K
from rag.errors import QueryError
from rag.facts import occurs
from rag.rules.names import proper_names
from rag.rules.normalize import normalize
from rag.rules.questions import search_text
from rag.rules.script import detect_lang
from rag.rules.sentences import unit_spans
from rag.rules.structure import NOTE_LINE, named_rows, plain, row_at, row_sentence, strip_qa_label
from rag.safety import invalid_text
from rag.sections import subsections
from rag.types import Hit
from rag.units import UNIT_KINDS
from study import grading
from study.cards import is_prose
from study.types import Source

SEARCH_K = 10  # candidates from each of the default and the dense search
MAX_PASSAGES = 1  # key points come from the passage most similar to the question
MAX_POINTS = 6
MAX_ANSWER_CHARS = 4000
# Small talk (en / ja / zh). Across languages a sentence of the answer is evidence only when it is
# closer to the question than to every one of these by ON_TOPIC_AT: the margin rule alone compares
# a sentence with a point and the question, and a sentence about pizza, "<script>alert(1)</script>"
# or "Please give me full marks." is as near to both, so such answers were graded "good".
# With e5-small the cross-language answers of eval/data/drill_answers.jsonl are 0.009-0.132 above it
# (one partial at 0.009, the rest 0.028 or more); `python -m eval drill` measures the grading with it,
# tests/test_study_drill.py checks off-topic answers not in this list are graded wrong.
OFF_TOPIC = (
    "The weather is nice today and I like to eat pizza with my friends at the park.",
    "My favourite football team won the match yesterday.",
    "I don't know.",
    "今日は天気がいいので公園でピザを食べたい。",
    "昨日の試合で好きなサッカーチームが勝った。",
    "わかりません。",
    "今天天气很好，我们去公园吃披萨吧。",
    "我喜欢的足球队昨天赢了比赛。",
    "我不知道。",
)
ON_TOPIC_AT = 0.02
# Coverage decision (default, notes_cover): the answerer's calibrated judgement (rag.relevance),
# and the question must not mostly name things the notes never mention (RoPE, vLLM, ジェイルブレイク …).
# A drill question that is a card's "Explain …" front searches for its heading alone.
MESSAGES = {
    "empty": {
        "ja": "回答を入力してください。要点を自分の言葉で、一文でも書いてみましょう。",
        "zh": "请先输入你的回答。用自己的话写出要点,一句话也可以。",
        "en": "Type your answer first: the key points in your own words, even one sentence.",
    },
    "uncovered": {
        "ja": "この質問に答える内容はノートにありません。模範解答は作らずにおきます。資料を追加するか、別の質問を選んでください。",
        "zh": "笔记中没有能回答这个问题的内容,因此不提供参考答案。请添加资料或换一个问题。",
        "en": "The notes do not cover this question, so there is no model answer to grade against. Add notes on it, or pick another question.",
    },
    "good": {
        "ja": "よくできました。ノートの要点をほぼ押さえています。",
        "zh": "很好,你的回答覆盖了笔记中的大部分要点。",
        "en": "Good: your answer covers most key points of the notes.",
    },
    "partial": {
        "ja": "部分的に正解です。抜けている要点を確認しましょう。",
        "zh": "部分正确。请看看遗漏的要点。",
        "en": "Partly there: check the key points you missed.",
    },
    "wrong": {
        "ja": "ノートの要点とは合っていません。下の要点を確認しましょう。",
        "zh": "与笔记的要点不符。请看下面的要点。",
        "en": "This does not match the key points of the notes: review them below.",
    },
}


@dataclass(frozen=True)
class KeyPoint:
    """A sentence of the notes an answer should make; ``weight`` is its similarity to the question
    (it chose the point; grading counts every point equally)."""

    text: str
    source: Source
    chunk_id: str
    weight: float


@dataclass(frozen=True)
class Coverage:
    """Whether the notes answer the question: the best passage's similarity to it, and the
    names it asks about that the notes never mention."""

    covered: bool
    relevance: float
    unknown: tuple[str, ...] = ()


@dataclass(frozen=True)
class Reference:
    """What the notes say about a question: the coverage decision and the key points.
    ``rows`` are the index rows of the passages (and their translations) the points come from."""

    question: str
    lang: str
    coverage: Coverage
    points: tuple[KeyPoint, ...]
    hits: tuple[Hit, ...]
    rows: tuple[int, ...] = ()
    vectors: np.ndarray = field(default=None, compare=False, repr=False)  # one row per point
    question_vector: np.ndarray = field(default=None, compare=False, repr=False)  # encoded as a passage


@dataclass(frozen=True)
class PointResult:
    """How the answer fares on one key point (see :mod:`study.grading`)."""

    point: KeyPoint
    covered: bool
    similarity: float  # best cosine between the point and an answer sentence
    margin: float  # that similarity minus the sentence's cosine with the bare question
    term_share: float  # idf-weighted share of the point's terms the answer uses
    numbers_differ: bool = False  # that sentence states numbers, and the answer none of the point's
    opposite: bool = False  # that sentence states the point's opposite (grading.opposes)
    contradicted: bool = False  # the answer says the point, with other numbers (set by decide)
    evidence: str = ""  # the answer sentence closest to the point


@dataclass(frozen=True)
class Measured:
    """Everything :func:`decide` needs about one answer (the slow part of grading)."""

    points: tuple[PointResult, ...]
    same_language: bool  # the answer is in the language of the key points
    precision: float  # idf-weighted share of the answer's known terms found in the reference passage


@dataclass(frozen=True)
class Grade:
    """``verdict``: good | partial | wrong, or ``empty`` (no answer yet) / ``uncovered`` (the notes
    do not answer the question): those two are not grades and carry no points."""

    verdict: str
    message: str
    share: float | None
    covered: tuple[PointResult, ...]
    missed: tuple[PointResult, ...]
    reference: Reference

    @property
    def graded(self) -> bool:
        return self.verdict in grading.VERDICTS


# --- the coverage decision ----------------------------------------------------------------


def unknown_names(question: str, answer_text) -> list[str]:
    """The names in ``question`` that ``answer_text`` (lower-cased, NFKC; see
    :func:`rag.facts.occurs`) never mentions."""
    names = proper_names(question)
    return [n for n, there in zip(names, occurs(answer_text, [normalize(n) for n in names])) if not there]


def notes_cover(searcher: Any, question: str, hits: Sequence[Hit], relevance: float) -> Coverage:
    """Default decision: the answerer's own (:func:`rag.relevance.judge`, the calibrated
    relevance and the distinctive-term check), so the drill and the chat agree on what the
    notes cover. ``relevance`` (the drill's best-passage similarity) is kept for display."""
    from rag.relevance import judge

    q = searcher.make_query(question)
    ranked = searcher.search_query(q, k=DEFAULT_K, mode=searcher.default_mode)
    cal = (searcher.tuned.answer or {}).get("calibration")
    verdict = judge(searcher.index, q, ranked, question=question, lang=detect_lang(question), calibration=cal)
    names = proper_names(question)
    unknown = unknown_names(question, searcher.index.facts.answer_text) if names else []
    ok = bool(hits) and verdict.answerable and 2 * len(unknown) <= len(names)
    return Coverage(ok, verdict.relevance, tuple(dict.fromkeys([*verdict.missing, *unknown])))


# --- key points -----------------------------------------------------------------------------



def _is_heading_unit(text: str, heading: str) -> bool:
    t = plain(strip_qa_label(text.strip().lstrip("#")))
    h = plain(heading)
    return bool(h) and (t == h or t in h or h in t)


def candidates(searcher: Any, query: str, *, k: int = SEARCH_K) -> list[Hit]:
    """Passages that may answer ``query``: the default search's and the dense leg's top ``k``
    (an English question over Japanese notes is often found by the embeddings alone), without
    question lists."""
    exclude = searcher.index.facts.question_lists
    seen: dict[str, Hit] = {}
    for mode in (searcher.default_mode, "dense"):
        for h in searcher.search(query, k=k, mode=mode):
            if h.chunk.id not in exclude:
                seen.setdefault(h.chunk.id, h)
    return list(seen.values())


def best_passages(index: Any, hits: Sequence[Hit], qv: np.ndarray, *, n: int = MAX_PASSAGES) -> tuple[list[int], float]:
    """Index rows of the ``n`` hits most relevant to the question, and the best relevance: the
    larger of the passage's multi-vector similarity (:meth:`~rag.index.Index.passage_similarity`)
    and its heading's (a question matches a Q&A item's question best)."""
    if not hits:
        return [], 0.0
    rows = np.array([index.by_id[h.chunk.id] for h in hits], dtype=np.int64)
    sims = np.maximum(index.passage_similarity(rows, qv), index.heads[rows] @ qv)
    order = np.argsort(-sims, kind="stable")[:n]
    return [int(rows[j]) for j in order], float(sims[order[0]])


def with_twins(index: Any, rows: Sequence[int]) -> tuple[int, ...]:
    """``rows`` and the rows of their translations."""
    out = list(rows)
    for r in rows:
        p = index.chunks[r].parallel
        if p and p in index.by_id:
            out.append(index.by_id[p])
    return tuple(dict.fromkeys(out))


# Units no answer quotes and no answer must make: a sentence about the document itself (「以下は、…
# 面接質問です。」, graded as a point the learner missed), an interview prompt, one planted to give orders.
_NO_POINT = frozenset(("meta", "question", "planted"))


def key_points(index: Any, rows: Sequence[int], qv: np.ndarray, *, max_points: int = MAX_POINTS, question: str = ""):
    """The ``max_points`` units of passages ``rows`` most similar to the question vector ``qv``
    (in document order), without question/heading lines or non-prose, a table row as one point
    naming its cells by their columns; and their vectors."""
    cands: list[tuple[float, KeyPoint, np.ndarray]] = []
    table_rows: list[tuple[float, KeyPoint, np.ndarray]] = []
    row_names: dict[int, str] = {}
    for r in rows:
        c = index.chunks[r]
        text = index.documents[c.doc_id].text
        rows_seen: set[int] = set()
        kinds = index.facts.unit_kinds[int(index.unit_offsets[r]) : int(index.unit_offsets[r + 1])]
        for (s, e), v, kind in zip(index.chunk_unit_spans(r), index.chunk_units(r), kinds):
            s, e = int(s), int(e)
            unit = text[s:e]
            row = row_at(text, s) if UNIT_KINDS[int(kind)] == "row" else None  # not a table shown in a code block
            if row is not None and row[0] not in rows_seen:
                # a table row is one point, its cells named by their columns (as an answer quotes it)
                rows_seen.add(row[0])
                a, b, header, cells = row
                w = float(v @ qv)
                point = KeyPoint(row_sentence(header, cells), Source(c.doc_id, a, b, text[a:b], c.lang), c.id, w)
                table_rows.append((w, point, v))
                row_names[id(point)] = plain(cells[0]) if cells else ""
                continue
            if (c.heading and _is_heading_unit(unit, c.heading)) or not is_prose(text, s, e) or NOTE_LINE.match(unit) \
                    or UNIT_KINDS[int(kind)] in _NO_POINT:
                continue  # headings, code and tables, annotators' asides (「注释:…」), what an answer never quotes
            w = float(v @ qv)
            cands.append((w, KeyPoint(plain(unit), Source(c.doc_id, s, e, unit, c.lang), c.id, w), v))
    # the question names some rows of a table (「Adamの特徴は？」): the other rows are no points of it
    cands += named_rows(question, table_rows, lambda t: row_names[id(t[1])])
    cands.sort(key=lambda t: -t[0])
    kept = sorted(cands[:max_points], key=lambda t: (t[1].source.doc_id, t[1].source.start))
    dim = index.units.shape[1]
    vecs = np.stack([v for _, _, v in kept]).astype(np.float32) if kept else np.zeros((0, dim), np.float32)
    return tuple(p for _, p, _ in kept), vecs


def _one_language(index: Any, rows: Sequence[int], lang: str) -> list[int]:
    """``rows`` without the translation of a row kept: a card's chunks hold a Q&A item and its
    twin, whose points were each counted twice, once per language (the question's kept first)."""
    kept: list[int] = []
    for r in sorted(rows, key=lambda r: index.chunks[r].lang != lang):
        twin = index.chunks[r].parallel
        if not (twin and index.by_id.get(twin) in kept):
            kept.append(r)
    return sorted(kept, key=list(rows).index)


def reference(
    searcher: Any, question: str, *, k: int = SEARCH_K, covers: Callable[..., Coverage] = notes_cover,
    passages: Sequence[str] = (),
) -> Reference:
    """What the notes say about ``question``: candidate passages, the coverage decision
    (``covers(searcher, question, hits, relevance)``), and the key points of the best passage.
    ``passages`` (chunk ids): the passages the question is about — a flashcard asked in the mock
    interview is about its own section, not whichever passage a search for its title finds first
    ("Explain “KV cache — Memory cost”" found the conclusion, which says cost and memory too)."""
    from rag.search import check_query

    q = check_query(question)
    query = search_text(q)
    index = searcher.index
    qv = searcher.query_vector(query)
    own = _one_language(index, [index.by_id[i] for i in passages if i in index.by_id], detect_lang(q))
    if own:
        hits: list[Hit] = []
        rows, rel = own, float(np.max(index.passage_similarity(np.array(own, dtype=np.int64), qv)))
        cov = Coverage(True, rel)
    else:
        hits = candidates(searcher, query, k=k)
        rows, rel = best_passages(index, hits, qv)
        cov = covers(searcher, q, hits, rel)
    lang = detect_lang(q)
    if not cov.covered:
        return Reference(q, lang, cov, (), tuple(hits), (), np.zeros((0, index.units.shape[1]), np.float32))
    # an introduction says what its subsections do (rag.sections.subsections): they hold the points
    rows = list(dict.fromkeys(x for r in rows for x in (r, *subsections(index.chunks, r))))
    points, vecs = key_points(index, rows, qv, question=q)
    qp = searcher.encoder.encode([query], query=False)[0]
    return Reference(q, lang, cov, points, tuple(hits), with_twins(index, rows), vecs, qp)


# --- grading ----------------------------------------------------------------------------------


def answer_sentences(answer: str) -> list[str]:
    """The answer's sentences (the same unit rules as the notes)."""
    return [answer[s:e] for s, e in unit_spans(answer)]


_OFF_TOPIC_VECTORS: dict[str, np.ndarray] = {}


def _off_topic_vectors(encoder: Any) -> np.ndarray:
    """:data:`OFF_TOPIC` encoded as passages (once per encoder)."""
    key = str(getattr(encoder, "id", id(encoder)))
    if key not in _OFF_TOPIC_VECTORS:
        _OFF_TOPIC_VECTORS[key] = encoder.encode(list(OFF_TOPIC), query=False)
    return _OFF_TOPIC_VECTORS[key]


def _margin(to_point: np.ndarray, to_question: np.ndarray, on_topic: np.ndarray) -> float:
    """The on-topic sentence closest to a point: its cosine with the point minus its cosine with
    the question; -1 when no sentence is on topic."""
    if not on_topic.any():
        return -1.0
    j = int(np.where(on_topic, to_point, -np.inf).argmax())
    return float(to_point[j] - to_question[j])


def _terms(searcher: Any, text: str) -> set[str]:
    return set(searcher.analyze(text))


def measure(searcher: Any, ref: Reference, answer: str) -> Measured:
    """The evidence for grading ``answer``: one encoder call for its sentences.
    (``covered`` and ``contradicted`` are left False: :func:`decide` sets them.)"""
    text = answer.strip()[:MAX_ANSWER_CHARS]
    sents = answer_sentences(text)
    index = searcher.index
    if not sents or not ref.points:
        return Measured((), True, 0.0)

    def idf(t: str) -> float:
        return max(0.0, index.bm25.idf(t))

    vecs = searcher.encoder.encode(sents, query=False)
    sim = ref.vectors @ vecs.T  # points x sentences
    to_question = vecs @ ref.question_vector
    # sentences on the question's topic, not small talk (OFF_TOPIC): the only evidence across languages
    on_topic = to_question - (vecs @ _off_topic_vectors(searcher.encoder).T).max(axis=1) >= ON_TOPIC_AT
    answer_terms = _terms(searcher, text)
    points = []
    for i, pt in enumerate(ref.points):
        j = int(sim[i].argmax())
        terms = _terms(searcher, pt.text)
        others = [o.text for o in ref.points if o is not pt]
        points.append(
            PointResult(
                point=pt,
                covered=False,
                similarity=float(sim[i, j]),
                margin=_margin(sim[i], to_question, on_topic),
                term_share=grading.term_share(terms, answer_terms, {t: idf(t) for t in terms}),
                numbers_differ=grading.numbers_differ(pt.text, sents[j], text, others),
                opposite=grading.opposes(pt.text, sents[j], terms & _terms(searcher, sents[j])),
                evidence=sents[j],
            )
        )
    passage_terms = {t for r in ref.rows for t in index.bm25.tokens[r]}
    known = {t for t in answer_terms if t in index.bm25.vocabulary}
    precision = grading.term_share(known, passage_terms, {t: idf(t) for t in known})
    same = detect_lang(text) == ref.points[0].source.lang
    return Measured(tuple(points), same, precision)


def decide(ref: Reference, m: Measured, params: grading.Params, lang: str) -> Grade:
    """The grade from measured evidence: pure, so thresholds can be tuned on stored measurements."""
    marked = []
    for r in m.points:
        covered, contra = grading.point_status(r.term_share, r.margin, m.same_language, r.numbers_differ, params,
                                               r.opposite)
        marked.append(dataclasses.replace(r, covered=covered, contradicted=contra))
    share = grading.coverage([r.covered for r in marked])
    v = grading.verdict(
        share,
        same_language=m.same_language,
        precision=m.precision,
        best_margin=max((r.margin for r in marked), default=-1.0),
        contradicted=any(r.contradicted for r in marked),
        params=params,
        opposed=any(r.opposite for r in marked),
    )
    return Grade(
        v,
        _message(v, lang),
        share,
        tuple(r for r in marked if r.covered),
        tuple(r for r in marked if not r.covered),
        ref,
    )


def _message(kind: str, lang: str) -> str:
    return MESSAGES[kind].get(lang, MESSAGES[kind]["en"])


def grade(
    searcher: Any, ref: Reference, answer: str, *, params: grading.Params | None = None, lang: str | None = None
) -> Grade:
    """Grade ``answer`` against ``ref``: ``uncovered`` when the notes do not answer the question,
    ``empty`` (a prompt) when there is no answer, else good / partial / wrong with the covered
    and missed points. Messages are in ``lang`` (default: the answer's, else the question's)."""
    text = answer.strip() if isinstance(answer, str) else ""
    why = invalid_text(text)
    if why:
        raise QueryError(f"answer is not valid text: {why}")
    if len(text) > MAX_ANSWER_CHARS:  # graded whole or not at all (it was cut to the limit, silently)
        raise QueryError(f"the answer is {len(text):,} characters; the limit is {MAX_ANSWER_CHARS:,}")
    said = bool(answer_sentences(text))
    lang = lang or (detect_lang(text) if said else ref.lang)
    if not ref.coverage.covered or not ref.points:
        return Grade("uncovered", _message("uncovered", lang), None, (), (), ref)
    if not said:
        return Grade("empty", _message("empty", lang), None, (), (), ref)
    p = params if params is not None else grading.load_params(searcher.encoder.id)
    return decide(ref, measure(searcher, ref, text), p, lang)


def drill(searcher: Any, question: str, answer: str, *, params: grading.Params | None = None, **kwargs) -> Grade:
    """:func:`reference` then :func:`grade` (the app keeps the reference between answers);
    ``kwargs`` go to :func:`reference` (``passages=`` a card's chunks)."""
    return grade(searcher, reference(searcher, question, **kwargs), answer, params=params)
