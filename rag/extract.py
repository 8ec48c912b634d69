"""Query-focused extraction: which sentences of the retrieved passages answer the question.

Every unit (line or sentence, stored with its vector and document span at ingest) of the
top passages is classified (:func:`rag.units.unit_kind`, decided when the index is built: questions, headings, code and table rows
are never quoted) and scored against the question: its cosine with the query vector, plus
a bonus for the question's distinctive terms it contains. The answer is composed from the
units that score close to the best one, across passages, in document order within each
passage; a Q&A item whose own question matches the question is quoted whole (its answer
body is short), a list is kept together with its lead-in, a comparison question gets both of
its sides, a short fenced block whose line answers is quoted whole, as code (a code line
alone never is), and a section's introduction brings its subsections' titles and first
sentences. Pure functions of the index, the query and the hits.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import numpy as np

from rag.index import Index
from rag.rules.normalize import normalize, squash
from rag.rules.structure import (
    BOLD_LINE, DIAGRAM_LANGUAGES, facets_asked, heading_facet, named_rows, plain, row_at, row_sentence,
    strip_heading_number,
)
from rag.rules.names import is_generic
from rag.rules.questions import (
    DOCUMENT_FRAME, DOCUMENT_WORDS, EN_STOP, INTERVIEW_WORDS, QUESTION_WORDS, asks_for_code, asks_for_conclusion,
    asks_for_questions,
)
from rag.rules.sentences import ends_sentence, refers_back
from rag.sections import subsections
from rag.types import Query
from rag.units import QUOTABLE, UNIT_KINDS

MAX_LIST_ITEMS = 12
MAX_CHARS = 900
MAX_BLOCK_LINES = 6  # a fenced block quoted in an answer: at most this many lines …
MAX_BLOCK_CHARS = 300  # … and characters (an example or a formula, not a program or a diagram)
MAX_CODE_LINES = 40  # a block quoted to a question asking for code: at most this many lines …
MAX_CODE_CHARS = 2000  # … and characters


@dataclass(frozen=True)
class ExtractParams:
    """The extraction's tunable values; ``python -m eval answers --tune`` chooses them on the
    answer benchmark's dev half and writes them to ``rag/tuned.json`` (``answer.extract``)."""

    unit_margin: float = 0.035  # a unit is quoted when its score is within this of the best unit's
    term_bonus: float = 0.04  # added to a unit's cosine x the share of the question's terms it contains
    rank_penalty: float = 0.005  # subtracted from a unit's score per rank of its passage below the first
    second_passage: float = 0.02  # another passage is quoted only if its best unit is within this of the best
    qa_match: float = 0.0  # the best passage, a Q&A item, is quoted whole when its question's cosine reaches this
    qa_margin: float = 1.0  # … and its best unit is within this of the best unit of all passages
    paragraph_chars: int = 0  # a picked sentence brings the rest of its paragraph when that is this short
    max_passages: int = 4
    dense_extra: int = 0  # passages of the dense leg alone added as candidates (cross-language recall)
    section_match: float = 1.1  # the best passage, a short section, is quoted whole when its heading's cosine reaches this
    topic_gate: bool = False  # quote only passages (and headed blocks) naming the question's topic
    passage_ratio: float = 0.0  # a passage is a candidate only if its search score is this share of the first's
    whole_lists: bool = False  # a chosen list item brings its whole list, whatever the question asks
    list_closing: bool = False  # a kept-together list brings the paragraph that ends its passage (its conclusion)
    side_sentences: bool = False  # a comparison side found elsewhere is quoted only as a whole sentence or naming it
    code_blocks: bool = False  # a short fenced block of a quoted passage is quoted (as code) when it answers
    split_lists: bool = False  # a quoted list running to its passage's end brings the items the next passage continues it with
    qa_heading: bool = False  # a Q&A item after the first passage is quoted only if its question is as close as the first's heading
    outline: bool = False  # a quoted section introduction (「2段階に分かれます」) brings its subsections' headings and first sentences
    antecedents: bool = False  # a quoted sentence that points back (「この制限を…」) brings what it points at: its paragraph so far, or the short paragraph before
    max_units: int = 8
    side_margin: float = -1.0  # a side found elsewhere is quoted only if its unit scores, against the whole question, within this of the best unit (< 0: off)
    max_item_chars: int = 700  # a Q&A answer body up to this long can be quoted whole


DEFAULT_PARAMS = ExtractParams()

_STEPS = re.compile(r"手順|ステップ|方法|対策|やり方|流れ|段階|種類|仕組み|步骤|方法|策略|措施|阶段|流程|哪几|哪些|几种|原理|"
                    r"steps?|stages?|ways?|strateg|how to|list|types?|kinds?", re.I)
_COMPARE = (
    re.compile(r"(?P<a>[^、，,。？?\s]{1,30}?)\s*(?:と|や)\s*(?P<b>[^、，,。？?\s]{1,30}?)\s*(?:の|は)?\s*(?:違い|ちがい|差|比較|区別)"),
    re.compile(r"(?P<a>[^、，,。？?\s]{1,30}?)\s*(?:和|与|跟|同|及)\s*(?P<b>[^、，,。？?\s]{1,30}?)\s*(?:的|之间的|有)?\s*(?:什么)?\s*(?:区别|不同|差异|比较|对比|异同)"),
    re.compile(r"difference(?:s)?\s+between\s+(?P<a>.+?)\s+and\s+(?P<b>.+?)(?:\?|$|\s+in\b|\s+for\b)", re.I),
    re.compile(r"(?P<a>[\w\-.+ ]{1,40}?)\s+(?:vs\.?|versus)\s+(?P<b>[\w\-.+ ]{1,40})", re.I),
    re.compile(r"compare\s+(?P<a>.+?)\s+(?:and|with|to)\s+(?P<b>.+?)(?:\?|$)", re.I),
)


@dataclass(frozen=True)
class Unit:
    """A quotable piece of a passage: document span, text, kind, and how well it answers."""

    row: int  # the chunk's row in the index
    index: int  # position among the chunk's units
    start: int
    end: int
    text: str
    kind: str  # text | bullet | lead | formula | heading | question | code | table | meta | planted
    score: float = 0.0

    @property
    def quotable(self) -> bool:
        return self.kind in QUOTABLE


def chunk_units(index: Index, row: int) -> list[Unit]:
    """The units of chunk ``row`` with their kinds (computed when the index was built; scores 0)."""
    a, b = int(index.unit_offsets[row]), int(index.unit_offsets[row + 1])
    doc = index.documents[index.chunks[row].doc_id].text
    return [Unit(row, k, int(s), int(e), doc[int(s):int(e)], UNIT_KINDS[int(code)])
            for k, ((s, e), code) in enumerate(zip(index.unit_spans[a:b], index.facts.unit_kinds[a:b]))]


def quotable_units(index: Index, row: int, also: Collection[str] = ()) -> list[Unit]:
    """The units of chunk ``row`` an answer may quote, and those of the kinds ``also``: a list's
    interview questions when the learner asks which questions interviews ask, a document's
    sentences about itself when asked what it is about — which otherwise answer nothing."""
    return [u for u in chunk_units(index, row) if u.quotable or u.kind in also]


def content_terms(query: Query) -> set[str]:
    """The question's word tokens that name its topic (no bigrams, question words or stop words)."""
    return {t for t in query.tokens if not t.startswith("~") and t not in QUESTION_WORDS and len(t) > 1}


def score_units(index: Index, query: Query, units: list[Unit], analyze: Callable[[str], list[str]],
                term_bonus: float = DEFAULT_PARAMS.term_bonus) -> list[Unit]:
    """``units`` with ``score`` = cosine with the query + ``term_bonus`` x the idf-weighted
    share of the question's content terms the unit contains."""
    if not units:
        return []
    rows = np.array([index.unit_offsets[u.row] + u.index for u in units], dtype=np.int64)
    cos = index.units[rows] @ query.vector
    terms = content_terms(query)
    idf = {t: max(index.bm25.idf(t), 0.1) for t in terms}
    total = sum(idf.values())
    out = []
    for u, c in zip(units, cos):
        bonus = 0.0
        if total:
            toks = set(analyze(u.text))
            bonus = term_bonus * sum(w for t, w in idf.items() if t in toks) / total
        out.append(Unit(u.row, u.index, u.start, u.end, u.text, u.kind, float(c) + bonus))
    return out


def comparison_sides(question: str) -> tuple[str, str] | None:
    """The two things a comparison question compares (``AとBの違い``, ``A和B的区别``,
    ``difference between A and B``, ``A vs B``), or ``None``.

    >>> comparison_sides("LoRAとQLoRAの違いは？"), comparison_sides("What is RLHF?")
    (('LoRA', 'QLoRA'), None)
    """
    for pat in _COMPARE:
        m = pat.search(question)
        if m:
            a, b = _side(m.group("a")), _side(m.group("b"))
            if a and b and normalize(a) != normalize(b):
                return a, b
    return None


def _side(s: str) -> str:
    s = re.sub(r"^(?:what(?:'s| is| are)?|the|between|a|an)\s+", "", s.strip(), flags=re.I)
    # 「LoRAのファインチューニング」 compares LoRA; 「ファインチューニング」, 「预训练」 are the side itself
    s = re.sub(r"(?<=..)(?:の|的)?(?:ファインチューニング|事前学習|训练|微调)$", "", s)
    return s.strip(" 「」『』\"'“”（）()")


def mentions(text: str, side: str) -> bool:
    """Whether ``text`` names ``side`` (case- and width-insensitive)."""
    return bool(side) and normalize(side) in normalize(text)


@dataclass(frozen=True)
class Selection:
    """The units picked from one passage (document order) and why the passage was used."""

    row: int
    units: tuple[Unit, ...]
    whole_item: bool = False


def select(
    index: Index,
    query: Query,
    rows: Sequence[int],
    analyze: Callable[[str], list[str]],
    *,
    question: str,
    side_units: Callable[[str], list[Unit]] | None = None,
    params: ExtractParams = DEFAULT_PARAMS,
    about: str | None = None,
    whole: Collection[int] = (),
    also: Collection[str] = (),
) -> list[Selection]:
    """The units that answer ``query`` from the passages ``rows`` (best first), grouped by
    passage. ``side_units(side)`` finds candidate units for one side of a comparison that the
    picked units do not name (e.g. by searching for it). ``about``: what the question is
    about when it leans on an earlier one (a follow-up: both questions), for the topic gate.
    ``whole``: passages that answer as a whole (a list of interview questions titled with the
    topic, a document's conclusion or opening), past the topic gate, quoting units of the kinds
    ``also`` too; the first of ``rows``, if one, is quoted whole."""
    p = params
    rows = list(dict.fromkeys(rows))[: p.max_passages]
    topics = question_topics(about or question, index.facts.quotable_text) if p.topic_gate else []
    if topics:
        gated = on_topic(index, rows, topics)
        rows = [r for r in rows if r in whole] + [r for r in gated if r not in whole]
    if not rows:
        return []
    quotable: dict[int, list[Unit]] = {}
    for rank, r in enumerate(rows):
        us = quotable_units(index, r, also if r in whole else ())
        if topics and r not in whole:
            us = on_topic_blocks(index, r, us, topics)
        us = score_units(index, query, us, analyze, p.term_bonus)
        quotable[r] = [dataclasses.replace(u, score=u.score - p.rank_penalty * rank) for u in us]
    top = rows[0]
    first = index.chunks[top]
    top_head = float(index.heads[top] @ query.vector)
    every = quotable
    if p.qa_heading:
        # another question's answer is about something else than what the first passage answers:
        # never quoted, so its units set no bar for the others ("softmax in attention": the
        # formula of another item's answer scored best and kept the first item from being quoted whole)
        lead = next((r for r in rows if quotable[r]), top)  # the first passage quoted
        quotable = {r: us for r, us in quotable.items()
                    if r == lead or index.chunks[r].kind != "qa" or float(index.heads[r] @ query.vector) >= top_head}
    scored = [u for us in quotable.values() for u in us]
    if not scored:
        return []
    best = max(u.score for u in scored)
    steps = p.whole_lists or bool(_STEPS.search(question))
    if top in whole and quotable[top]:
        # a passage that answers as a whole: a list of interview questions, a conclusion
        picked = {top: list(quotable[top])}
    elif (
        first.kind == "qa"
        and quotable[top]
        and sum(len(u.text) for u in quotable[top]) <= p.max_item_chars
        and (not first.heading or float(index.heads[top] @ query.vector) >= p.qa_match)
        and max(u.score for u in quotable[top]) >= best - p.qa_margin
    ):
        # The best passage is a Q&A item whose question matches: its answer body is short, quote it whole.
        picked = {top: list(quotable[top])}
    elif (
        first.kind == "section"
        and first.heading
        and quotable[top]
        and sum(len(u.text) for u in quotable[top]) <= p.max_item_chars
        and float(index.heads[top] @ query.vector) >= p.section_match
    ):
        # a short section whose heading is the question ("why three: Q, K, V?"): its points and conclusion
        picked = {top: list(quotable[top])}
    else:
        picked = {}
        for r in rows:
            us = quotable.get(r)
            if not us:
                continue
            if picked and max(u.score for u in us) < best - p.second_passage:
                continue
            keep = [u for u in us if u.score >= best - p.unit_margin]
            if keep:
                picked[r] = keep
        picked = _cap(picked, p.max_units)
        picked = {r: _expand_lists(quotable[r], us, steps, _doc(index, r), p.list_closing)
                  for r, us in picked.items()}
        if p.antecedents:
            picked = {r: _with_antecedents(index, quotable[r], us, p.paragraph_chars or MAX_CHARS) for r, us in picked.items()}
        if p.paragraph_chars:
            picked = {r: _whole_paragraphs(index, quotable[r], us, p.paragraph_chars) for r, us in picked.items()}
            # a lead-in the paragraph brought (「…組み合わせる手法です。手順は次のとおりです。」) brings its list
            picked = {r: _expand_lists(quotable[r], us, steps, _doc(index, r), p.list_closing) if
                      any(u.kind == "lead" for u in us) else us for r, us in picked.items()}
        if p.split_lists:
            # a question asking for a list (steps, remedies, kinds) gets all of it, also the part
            # the chunker put in the next passage; a quoted lead-in gets the list it opens
            continued: dict[int, list[Unit]] = {}
            for r, us in picked.items():
                continued[r] = us
                nxt = continued_list(index, r, us, quotable[r], steps=bool(_STEPS.search(question)))
                if nxt and nxt[0] not in picked and nxt[0] not in continued:
                    continued[nxt[0]] = score_units(index, query, nxt[1], analyze, p.term_bonus)  # right after it
            picked = continued
    if p.outline:
        picked = _with_outline(index, query, picked, analyze, p.term_bonus)
    if p.code_blocks:
        picked = _with_blocks(index, query, picked, best - p.unit_margin, analyze, p.term_bonus,
                              asks_for_code(question))
    sides = comparison_sides(question)
    if sides:
        fits = None
        if p.side_margin >= 0:
            # a side found by searching for it alone must still be about the question: 「貪欲法」,
            # which the notes write グリーディ, found a sentence on RLHF
            fits = lambda u: score_units(index, query, [u], analyze, p.term_bonus)[0].score >= best - p.side_margin
        picked = _cover_sides(picked, every, rows, sides, side_units, p.side_sentences, fits)
    picked = {r: _whole_rows(index, _titles_with_their_text(index.chunks[r], us), question) for r, us in picked.items()}
    picked = _once(picked)
    out = [Selection(r, tuple(sorted(us, key=lambda u: u.start)), whole_item=(r == top and len(us) == len(quotable[r])))
           for r, us in picked.items() if us]
    # what is picked stays; the order is the reader's: a passage titled with the topic first
    return sorted(out, key=lambda s: not titled(index, s.row, topics)) if topics else out


def _once(picked: dict[int, list[Unit]]) -> dict[int, list[Unit]]:
    """Each sentence quoted once: a unit whose text a passage before it already quotes is left
    out (two copies of the same notes, a lecture uploaded as PDF and as slides), and a passage
    left with nothing is not cited."""
    seen: set[str] = set()
    out: dict[int, list[Unit]] = {}
    for r, us in picked.items():
        keep = [u for u in us if squash(u.text) not in seen]
        seen.update(squash(u.text) for u in us)
        out[r] = keep
    return out


def _whole_rows(index: Index, units: list[Unit], question: str) -> list[Unit]:
    """A quoted table row is its whole line, written as one line that names its cells by their
    columns (「Adam — 特徴: …; 学習率: 0.001」, :func:`rag.rules.structure.row_sentence`): a
    row alone, as the notes write it, is cells without their meaning. When the question names
    some of the quoted rows (their first cell: 「Adamの特徴は？」), the others are left out."""
    out, seen, names = [], set(), {}
    for u in units:
        if u.kind != "row":
            out.append(u)
            continue
        got = row_at(_doc(index, u.row), u.start)
        if got is not None and got[0] not in seen:
            seen.add(got[0])
            a, b, header, cells = got
            names[a] = plain(cells[0]) if cells else ""
            out.append(Unit(u.row, u.index, a, b, row_sentence(header, cells), "row", u.score))
    kept = {u.start for u in named_rows(question, [u for u in out if u.kind == "row"], lambda u: names[u.start])}
    return [u for u in out if u.kind != "row" or u.start in kept]


def _titles_with_their_text(chunk, units: list[Unit]) -> list[Unit]:
    """``units`` (of passage ``chunk``) without a bold title line (「**検索の流れ**」) whose text is
    not quoted with it — the next quoted unit is not the next thing in the passage (a fence
    opening a quoted block counts as nothing): a title over a diagram, or over text left out, is a
    fragment saying nothing."""
    def followed(u: Unit) -> bool:
        nxt = min((v.start for v in units if v.start >= u.end), default=None)
        if nxt is None:
            return False
        between = chunk.text[u.end - chunk.start : nxt - chunk.start]
        return not re.sub(r"```[^\n]*|~~~[^\n]*", "", between).strip()

    return [u for u in units if not BOLD_LINE.match(u.text) or followed(u)]


def _title_of(c) -> str:
    """A passage's own heading and its section's title, what a title match reads."""
    return f"{c.heading or ''}\n{c.section_title}"


def titled(index: Index, row: int, topics: Sequence[str]) -> bool:
    """Whether passage ``row``'s heading or section title names one of ``topics``: 「RAGの仕組み
    を例で説明して」 reads the section titled RAG before a passage naming RAG among remedies."""
    c = index.chunks[row]
    return _names(_title_of(c), topics)


def question_lists(index: Index, rows: Sequence[int], question: str) -> list[int]:
    """Of ``rows``, the lists of interview questions titled with a topic of ``question``: what
    answers 「面接でどんなシステム設計の質問が出る？」 is the list under 「システム設計とアーキテクチャ」,
    not the hot topics that mention system design."""
    from rag.analyze import loanword_names

    topics = question_topics(question, index.facts.quotable_text)
    # an English question's words name the topic too, met in a Japanese title as its
    # loanwords: "coding" in コーディング, "agents" in エージェント
    words = [w.lower().rstrip("s") for w in re.findall(r"[A-Za-z][A-Za-z\-]+", question)]
    words = [squash(w) for w in words if len(w) > 2 and w not in EN_STOP and w not in QUESTION_WORDS
             and w not in INTERVIEW_WORDS and not is_generic(w)]

    def names_topic(row: int) -> bool:
        if topics and titled(index, row, topics):
            return True
        head = _title_of(index.chunks[row])
        return any(w in t for w in words for t in (squash(head),) + loanword_names(head))

    return [r for r in rows if any(u.kind == "question" for u in chunk_units(index, r)) and names_topic(r)]


MIN_TITLE_RUN = 5  # characters a question shares with a title to name its document without its words
MAX_NAMED = 20  # more documents than this having a question's words in their titles: it names none


def title_words(question: str) -> list[str]:
    """The words of ``question`` that could name a document or a topic: its topics and Latin words,
    without the words for a document, for its conclusion and for what it says (squashed).

    >>> title_words("Summarize how LoRA works"), title_words("What does the conclusion say?"), title_words("結論は？")
    (['lora', 'works'], [], [])
    """
    words = question_topics(question) + [w for w in re.findall(r"[A-Za-z][A-Za-z0-9\-]{2,}", question)
                                         if w.lower() not in EN_STOP and not is_generic(w)]
    return [squash(w) for w in dict.fromkeys(words)
            if not DOCUMENT_WORDS.search(w) and not asks_for_conclusion(w) and w.lower() not in DOCUMENT_FRAME
            and len(squash(w)) > 1]


def named_documents(index: Index, question: str) -> set[str]:
    """The documents ``question`` names by their title or file name (「Zenn問答の記事」 names
    「Zenn問答第12回「LLM」」): those whose title holds every topic word of the question but the
    words for a document and for its conclusion (「RAGの仕組みの要点は？」 does not name 「RAG入門」)."""
    words = title_words(question)
    # the titles a learner sees too (a file-name title shows as its top headings); an engine index
    # reads them from the table stored with its version, not every document
    titles = {d["doc_id"]: squash(f"{d['title']} {d['shown']} {d['doc_id']}") for d in index.table("documents")}
    named = {d for d, t in titles.items() if words and all(w in t for w in words)}
    if len(named) == 1:
        return named
    # several titles, or none, with the question's words (or a title the tokenizers cut otherwise:
    # 「LLM面试50题」 in 「大语言模型(LLM)面试50题(含答案)」): those sharing the longest run of at
    # least MIN_TITLE_RUN characters with the question (「講義ノート第12回」, not 第120回)
    best = _longest_shared(squash(question), {d: titles[d] for d in (named or titles)})
    if 0 < len(best) <= MAX_NAMED:
        return best
    return named if len(named) <= MAX_NAMED else set()  # words every title has name none of them


def _longest_shared(q: str, titles: dict[str, str]) -> set[str]:
    """The keys of ``titles`` sharing the longest run (≥ :data:`MIN_TITLE_RUN` characters) with ``q``;
    each length tried only on the titles that shared the one before."""
    cands, best, n = set(titles), set(), MIN_TITLE_RUN
    while cands and n <= len(q):
        grams = {q[i : i + n] for i in range(len(q) - n + 1)}
        cands = {d for d in cands if any(titles[d][i : i + n] in grams for i in range(len(titles[d]) - n + 1))}
        best, n = (cands or best), n + 1
    return best


def document_part(index: Index, rows: Sequence[int], question: str, headings: Collection[str], *,
                  or_first: bool = False, chosen: Collection[str] | None = None) -> list[int]:
    """For a question about a part of a document — its conclusion (「Zenn問答の記事の結論は？」), what
    it is about (「Zenn問答の記事には何が書いてある？」) — the sections titled with one of
    ``headings`` (:data:`rag.rules.structure.CONCLUSION_HEADINGS`, ``OPENING_HEADINGS``) of the
    documents it names, else, when it names a document only by a word for one (「この記事」, "the
    article"), of the documents the search found (``rows``, best first). With ``or_first``, a named
    document without such a section answers with its first passage (it has no opening section).
    ``chosen``: the documents the learner asks (one: "this document" is that one, as named)."""
    from rag.analyze import topic_words
    from rag.followup import FACETS
    from rag.lang import detect_lang

    named = named_documents(index, question)
    if not named and chosen is not None and len(chosen) == 1 and DOCUMENT_WORDS.search(question):
        named = set(chosen)  # 「この資料は何について？」 with one document chosen: that one
    if not DOCUMENT_WORDS.search(question):
        # named by title alone, with a facet of a topic asked about (「RAGの仕組みの要点は？」 over
        # 「RAG入門」), it asks about the topic, not the document; naming nothing, it asks about the
        # notes' own part only when it names no topic either ("What does the conclusion say?", 「結論は？」)
        if named and any(FACETS.match(w) for w in topic_words(question, detect_lang(question))):
            return []
        if not named and title_words(question):
            return []
    cands = [int(r) for r in index.rows_of_documents(named)] if named else list(rows)

    found = [r for r in cands if plain(index.chunks[r].section_title).lower() in headings]
    if or_first and named:
        firsts: dict[str, int] = {}
        for r in cands:  # in index order: each named document's first passage
            firsts.setdefault(index.chunks[r].doc_id, r)
        found += [r for d, r in firsts.items() if not any(index.chunks[x].doc_id == d for x in found)]
    return found


def facet_sections(index: Index, rows: Sequence[int], question: str,
                   analyze: Callable[[str], list[str]]) -> list[int]:
    """For a question asking for a facet of a topic ("What are the steps of knowledge
    distillation?", 「知識蒸留の手順は？」), the sections among ``rows`` (best first) titled with
    that facet alone ("Steps", 「手順」, "The pipeline": :func:`rag.rules.structure.heading_facet`)
    under headings or in a document naming the topic: at least half of the question's other
    words are in the section's path or its document's title (or that title's initials: "RAG",
    "Retrieval-Augmented Generation"). The section says nothing of the topic itself, so the
    search seldom puts it first."""
    asked = facets_asked(question)
    if not asked:
        return []
    words = {t for t in analyze(question) if not t.startswith("~") and t not in QUESTION_WORDS and len(t) > 1
             and not facets_asked(t)}  # a facet word (a heading naming the facet alone says one too)
    if not words:
        return []
    found = []
    for r in rows:
        c = index.chunks[r]
        if heading_facet(c.section_title) not in asked:
            continue
        doc_title = index.documents[c.doc_id].title
        initials = "".join(w[0] for w in re.findall(r"[A-Za-z]+", doc_title) if w[0].isupper())
        context = set(analyze(f"{c.section.replace(' > ', ' ')} {doc_title} {initials}"))
        if 2 * len(words & context) >= len(words):
            found.append(r)
    return found


def term_sections(index: Index, rows: Sequence[int], term: str, lang: str) -> list[int]:
    """For a question asking what ``term`` is (「RAGとは？」), the sections among ``rows`` titled
    with it: the heading is the term, the term with a gloss in brackets, or the gloss
    (「RAG(Retrieval-Augmented Generation)」, 「Positional Encoding(位置エンコーディング)」 for
    位置エンコーディング; case and spaces aside) — in the question's language ``lang`` (a Chinese
    item on RAG answers 「什么是RAG?」 better than a Japanese section), in any for a question in a
    language the notes lack."""
    key = lambda t: "".join(t.split()).casefold()  # noqa: E731
    anywhere = not index.vocabulary_of(lang)
    found = []
    for r in rows:
        c = index.chunks[r]
        if c.kind == "qa" or not c.section_title or not (anywhere or c.lang == lang):
            continue
        heading = strip_heading_number(plain(c.section_title))
        m = re.match(r"^(.+?)\s*[(（](.+)[)）]$", heading)
        if key(term) in {key(heading), *(key(g) for g in (m.groups() if m else ()))}:
            found.append(r)
    return found


def question_topics(question: str, notes: str | None = None) -> list[str]:
    """What ``question`` is about: its nouns and names (ja/zh) or names (en), without question
    words and the facet it asks about (ハルシネーション, not 対策, in 「ハルシネーションへの対策を教えて」).
    With ``notes`` (the index's quotable text, squashed: a string or an engine's paged text,
    read through :func:`rag.facts.occurs`), an English question's hyphenated terms
    that the notes write are topics too: "chain-of-thought", "few-shot", "top-p" name techniques
    however they are cased, and the notes use those names (while "attention" is any word)."""
    from rag.analyze import topic_words
    from rag.facts import occurs
    from rag.followup import names_no_topic
    from rag.lang import detect_lang
    from rag.rules.names import LATIN_TERM
    from rag.text import distinctive_terms

    lang = detect_lang(question)
    words = topic_words(question, lang) if lang in ("ja", "zh") else distinctive_terms(question, lang)
    if lang == "en" and notes:
        hyphenated = [t for t in LATIN_TERM.findall(question) if "-" in t]
        words += [t for t, there in zip(hyphenated, occurs(notes, [squash(t) for t in hyphenated])) if there]
    # the field's own words (LLM, 模型) name no topic: 「LLMの評価方法」 put first a KL-divergence
    # item titled 「…LLMでどう使われるか？」, 「大模型…算力？」 kept only passages writing 模型
    # asking which questions interviews ask, 面接 and 質問 frame the question (rag.rules.questions)
    frame = INTERVIEW_WORDS if asks_for_questions(question) else frozenset()
    return [w for w in dict.fromkeys(words)
            if len(w) > 1 and not is_generic(w) and not names_no_topic(w) and w.lower() not in frame]


def _names(text: str, topics: Sequence[str]) -> bool:
    t = normalize(text)
    return any(normalize(w) in t for w in topics)


def on_topic(index: Index, rows: Sequence[int], topics: Sequence[str]) -> list[int]:
    """The passages worth quoting: of ``rows``, those naming one of the question's ``topics``
    (:func:`question_topics`). A passage naming none of them is padding after a right answer
    (overfitting remedies after hallucination's). ``rows`` unchanged when none names a topic,
    or none that does has anything to quote.
    (Quoting a passage after the first only when it names a topic or shares the first's section
    (or document) cut dev padding 0.198 -> 0.186 (0.194) but dropped held-out answers with every
    key point 0.762 -> 0.738 (0.750); only when its quoted sentences hold a question term, a
    stricter second-passage margin (0.0, 0.01), a higher passage_ratio (0.75, 0.85), or the
    first passage too held to the second-passage margin all lost dev answers. Keeping only the
    passages naming the most topics, or titled with one, or putting those
    titled with one first, lost answers on the dev half: 0.802 -> 0.753-0.790 with every key
    point. Keeping, further, only the passages using the words of the facet asked about —
    remedies, drawbacks — dropped the answering passage of three held-out questions (MoE's
    cost, kinds of foundation model, recent events) and helped none on either half. Holding a
    passage to the gate only when its language's notes use one of the topic words (a Japanese
    article cannot name 黑箱) left the dev answers unchanged and raised held-out padding 0.289 ->
    0.302; with the answering passage put first (``python -m eval answers --oracle-first``) dev
    half the key points 0.951 -> 0.963, test unchanged.)"""
    chunks = index.chunks
    named = [r for r in rows if _names(f"{chunks[r].section}\n{chunks[r].text}", topics)]
    if not any(quotable_units(index, r) for r in named):
        return list(rows)  # naming a topic with nothing to quote (a conclusion's title) answers nothing
    return named


def on_topic_blocks(index: Index, row: int, units: list[Unit], topics: Sequence[str]) -> list[Unit]:
    """Of a passage made of several headed blocks (「課題1: ハルシネーション」「課題2: …」), the
    units of the blocks that name one of ``topics``; all ``units`` when none or only one does."""
    blocks: list[list[Unit]] = [[]]
    for u in chunk_units(index, row):
        if u.kind == "heading" and blocks[-1]:
            blocks.append([])
        blocks[-1].append(u)
    hit = [b for b in blocks if _names(" ".join(u.text for u in b), topics)]
    if len(blocks) < 2 or not hit or len(hit) == len(blocks):
        return units
    keep = {u.index for b in hit for u in b}
    return [u for u in units if u.index in keep]


_FENCED = re.compile(r"^[ \t]*(```|~~~)[ \t]*(\w*)[^\n]*\n(.*?)(?:(^[ \t]*\1[ \t]*$)|\Z)", re.M | re.S)


def code_blocks(index: Index, row: int, max_lines: int = MAX_BLOCK_LINES,
                max_chars: int = MAX_BLOCK_CHARS) -> list[Unit]:
    """The short fenced blocks inside passage ``row`` (kind ``block``; span: the lines between
    the fences): at most ``max_lines`` non-blank lines and ``max_chars`` characters,
    not a diagram (```mermaid```). A fence never closed runs to the end of the document, as
    CommonMark reads it (a passage cut inside a longer block does not end there)."""
    c = index.chunks[row]
    out = []
    for m in _FENCED.finditer(c.text):
        if m.group(4) is None and _doc(index, row)[c.end :].strip():
            continue
        body = m.group(3).rstrip()
        lines = [x for x in body.splitlines() if x.strip()]
        if m.group(2).lower() in DIAGRAM_LANGUAGES or not lines:
            continue
        if len(lines) > max_lines or len(body) > max_chars:
            continue
        a = c.start + m.start(3)
        out.append(Unit(row, -1, a, a + len(body), body, "block"))
    return out


def _with_blocks(index: Index, query: Query, picked: dict[int, list[Unit]], floor: float,
                 analyze: Callable[[str], list[str]], term_bonus: float, code: bool = False) -> dict[int, list[Unit]]:
    """``picked`` with, in each quoted passage, the short fenced blocks (:func:`code_blocks`)
    whose best line scores at least ``floor`` (the score a sentence needs to be quoted): a
    key fact written only in an example block (「値の範囲: -1(正反対) 〜 1(完全一致)」). A question
    asking for ``code`` ("Show the RoPE code") gets every block of a quoted passage up to
    :data:`MAX_CODE_LINES` lines, whatever its lines score."""
    out = {}
    floor = float("-inf") if code else floor
    for r, us in picked.items():
        blocks = code_blocks(index, r, MAX_CODE_LINES, MAX_CODE_CHARS) if code else code_blocks(index, r)
        if blocks:
            lines = [u for u in chunk_units(index, r) if u.kind in ("code", "formula")]
            scored = score_units(index, query, lines, analyze, term_bonus)
            for b in blocks:
                inside = [u.score for u in scored if b.start <= u.start and u.end <= b.end]
                taken = [u for u in us if b.start <= u.start and u.end <= b.end]  # a formula line of it
                if inside and max(inside) >= floor:
                    us = [u for u in us if u not in taken] + [dataclasses.replace(b, score=max(inside))]
        out[r] = us
    return out


def _with_outline(index: Index, query: Query, picked: dict[int, list[Unit]],
                  analyze: Callable[[str], list[str]], term_bonus: float) -> dict[int, list[Unit]]:
    """``picked`` with, after the answer's first quoted passage when it is a section
    introduction (:func:`rag.sections.subsections`), each of its subsections' heading and first
    sentence (a subsection opening with a list, a table or code is left out: its heading alone
    says nothing): the introduction alone announces an answer («大きく2段階に分かれます») without
    giving it. An introduction quoted after another passage is not spread out: "How does
    distillation help LLMs?" answered from the distillation item went on with every challenge
    of LLMs, their section's introduction having come second."""
    out: dict[int, list[Unit]] = {}
    chunks = index.chunks
    intros = {r: subsections(chunks, r) for r in picked}
    lead = True  # the answer's first quoted passage: the only one spread out
    for r, us in picked.items():
        c = chunks[r]
        if intros[r] and any(intros[k] and k != r and chunks[k].doc_id == c.doc_id
                             and chunks[k].section.startswith(c.section + " > ") for k in picked):
            # a quoted subsection introduces its own parts: the question is about it (「LLMの学習」
            # in 「LLMの仕組み」), not about every part of the section above it
            continue
        out[r] = _merge(out.get(r, []), us)
        if not lead:
            continue
        lead = False
        for k in intros[r]:
            units = chunk_units(index, k)
            head = next((u for u in units if u.kind in ("heading", "question")), None)  # a Q&A item: its question
            # its opening sentence, not a list's first item: that says part of what the section
            # says ("1. Train the teacher model." of a section of steps)
            first = next((u for u in units if u.quotable), None)
            if first is None or first.kind not in ("text", "lead"):
                continue  # its heading alone says nothing ("- Code example", "- Comparison table")
            add = score_units(index, query, [u for u in (head, first) if u is not None], analyze, term_bonus)
            out[k] = _merge(out.get(k, []), add)
    return out


def _merge(a: list[Unit], b: list[Unit]) -> list[Unit]:
    have = {u.index for u in a}
    return a + [u for u in b if u.index not in have]


def _doc(index: Index, row: int) -> str:
    return index.documents[index.chunks[row].doc_id].text


def _line(doc: str, u: Unit) -> tuple[int, int]:
    """The span of the line (paragraph) of ``doc`` that unit ``u`` is on."""
    a = doc.rfind("\n", 0, u.start) + 1
    b = doc.find("\n", u.end)
    return a, (len(doc) if b < 0 else b)


def _whole_paragraphs(index: Index, units: list[Unit], chosen: list[Unit], max_chars: int) -> list[Unit]:
    """A picked sentence brings the other sentences of its paragraph (its line) when the
    paragraph is at most ``max_chars`` long: an explanation is not cut in half."""
    doc = index.documents[index.chunks[units[0].row].doc_id].text if units else ""
    keep = {u.index for u in chosen}
    for u in chosen:
        if u.kind not in ("text", "bullet", "lead"):
            continue
        a, b = _line(doc, u)
        line_units = [v for v in units if a <= v.start and v.end <= b]
        # a list item is quoted with the rest of its line; a paragraph when it is short
        if u.kind == "bullet" or (line_units and line_units[0].kind == "bullet") or b - a <= max_chars:
            keep |= {v.index for v in line_units if v.kind in ("text", "bullet", "lead")}
    return [u for u in units if u.index in keep]


def _with_antecedents(index: Index, units: list[Unit], chosen: list[Unit], max_chars: int) -> list[Unit]:
    """A chosen sentence that points back (:func:`rag.rules.sentences.refers_back`: 「RAGでは、この
    制限を以下の流れで克服します」) brings the sentences of its paragraph before it; when it opens its
    paragraph, the paragraph before it, if that is plain text of at most ``max_chars`` characters
    (「LLMは学習データまでの知識しか持たないため…」, which says what 「この制限」 is)."""
    if not units:
        return chosen
    doc = _doc(index, units[0].row)
    keep = {u.index for u in chosen}
    for u in chosen:
        if u.kind not in ("text", "lead") or not refers_back(u.text):
            continue
        a = _line(doc, u)[0]
        before = [v for v in units if a <= v.start < u.start]
        if not before:
            b = len(doc[:a].rstrip())  # the end of the paragraph before (blank lines skipped)
            pa = doc.rfind("\n", 0, b) + 1
            before = [v for v in units if pa <= v.start and v.end <= b]
            if not before or any(v.kind != "text" for v in before) or b - pa > max_chars:
                continue
        keep |= {v.index for v in before}
    return [u for u in units if u.index in keep]


def continued_list(index: Index, row: int, chosen: list[Unit], units: list[Unit], *,
                   steps: bool = True) -> tuple[int, list[Unit]] | None:
    """The list items with which the next passage continues a quoted list that runs to the end of
    passage ``row`` (the chunker cut it: 「技術的対策:」 then CoT / ToT here, the interpretability
    item in the next passage), or the whole list when the passage ends on its quoted lead-in
    (「…必ずしも最も確率が高い単語を選ぶわけではありません」 over the sampling strategies):
    ``(next row, its leading items)``, or ``None``. Items the passage has are continued only when
    the question asks for ``steps`` (or kinds); a lead-in always is: alone it says nothing. The
    next passage must follow in the same document and section and open with a list item."""
    if not chosen or not units or row + 1 >= len(index.chunks):
        return None
    doc = _doc(index, row)
    last = max(quotable_units(index, row), key=lambda u: u.index)  # the passage's own last unit
    group = list_groups(units, doc)
    opens = last.kind == "lead" and last.index not in group  # its list is all in the next passage
    if not (opens or (steps and last.index in group)) or all(u.index != last.index for u in chosen):
        return None
    here, there = index.chunks[row], index.chunks[row + 1]
    if there.doc_id != here.doc_id or there.section != here.section or doc[here.end:there.start].strip():
        return None
    nxt = quotable_units(index, row + 1)
    if not nxt or nxt[0].kind != "bullet" or nxt[0].index != 0:
        return None
    head = list_groups(nxt, doc)
    items = [u for u in nxt if head.get(u.index) == head[nxt[0].index]]
    return row + 1, items


def _cap(picked: dict[int, list[Unit]], max_units: int) -> dict[int, list[Unit]]:
    """At most ``max_units`` units and about :data:`MAX_CHARS` characters, best first."""
    flat = sorted(((u.score, r, u) for r, us in picked.items() for u in us), key=lambda x: -x[0])
    out: dict[int, list[Unit]] = {}
    chars = 0
    for _, r, u in flat:
        if sum(len(v) for v in out.values()) >= max_units or (chars and chars + len(u.text) > MAX_CHARS):
            break
        out.setdefault(r, []).append(u)
        chars += len(u.text)
    return {r: out[r] for r in picked if r in out}


_BLANK_LINE = re.compile(r"\n[ \t\u3000]*\n")


def list_groups(units: list[Unit], doc: str) -> dict[int, int]:
    """Which list each unit belongs to (unit index -> list number): contiguous bullets form a
    list; a line that continues an item's paragraph (「**Key** - 役割を表現」 then 「「動物」は
    名詞で…」 on the next line) belongs to it; a lead-in right before a list's first item too."""
    group: dict[int, int] = {}
    gid, prev = -1, None
    for u in sorted(units, key=lambda u: u.index):
        joined = prev is not None and u.index == prev.index + 1 and prev.index in group
        if u.kind == "bullet":
            if not joined:
                gid += 1
            group[u.index] = gid if not joined else group[prev.index]
        elif u.kind == "text" and joined and doc and not _BLANK_LINE.search(doc[prev.end:u.start]):
            group[u.index] = group[prev.index]
        prev = u
    for u in units:
        if u.kind == "lead" and u.index + 1 in group and u.index not in group:
            group[u.index] = group[u.index + 1]
    return group


def _expand_lists(units: list[Unit], chosen: list[Unit], steps: bool, doc: str = "",
                  closing: bool = False) -> list[Unit]:
    """Keep a list together: when its lead-in is chosen, two of its items are, or the question
    asks for steps or kinds, the lead-in and all items (with the lines continuing them) are
    quoted, up to :data:`MAX_LIST_ITEMS` items; a lone item that answers stays alone. With
    ``closing``, a paragraph that follows the list and ends the passage (its conclusion) too."""
    by_pos = {u.index: u for u in units}
    group = list_groups(units, doc)
    keep = {u.index for u in chosen}
    bullets = [u for u in chosen if u.kind == "bullet"]
    last = max(by_pos) if by_pos else -1
    for u in chosen:
        if u.kind not in ("lead", "bullet") or u.index not in group:
            continue
        if u.kind == "bullet" and not steps and len(bullets) < 2:
            continue
        members = sorted(i for i, g in group.items() if g == group[u.index])
        items = 0
        for i in members:
            items += by_pos[i].kind == "bullet"
            if items > MAX_LIST_ITEMS + 1:
                break
            keep.add(i)
        after = members[-1] + 1
        if closing and after == last and by_pos[after].kind in ("text", "lead"):
            keep.add(after)
    # a lead-in with nothing after it says nothing — unless it ends the passage: its list is in the
    # next one (:func:`continued_list`)
    out = [by_pos[i] for i in sorted(keep) if i in by_pos]
    return [u for k, u in enumerate(out)
            if u.kind != "lead" or u.index == last or (k + 1 < len(out) and out[k + 1].kind == "bullet")]


def _whole_sentence(u: Unit, side: str) -> bool:
    """Whether unit ``u``, found for one side of a comparison in a passage of its own, says something
    by itself: it names the side or is a whole sentence (not 「{ 0 otherwise」 or a step 「3. …」)."""
    return mentions(u.text, side) or ends_sentence(u.text.strip())


def _cover_sides(picked, quotable, rows, sides, side_units, whole: bool = False, fits=None) -> dict[int, list[Unit]]:
    """Make sure both sides of a comparison are answered: for a side no picked unit names,
    add the best unit naming it among the passages, else the best unit ``side_units`` finds
    that ``fits`` the question (``fits(unit)``; ``None``: any)."""
    out = {r: list(us) for r, us in picked.items()}
    for side in sides:
        if any(mentions(u.text, side) for us in out.values() for u in us):
            continue
        cands = [u for r in rows for u in quotable[r] if mentions(u.text, side)]
        if not cands and side_units is not None:
            cands = [u for u in side_units(side) if u.quotable and (not whole or _whole_sentence(u, side))
                     and (fits is None or fits(u))]
        if cands:
            u = max(cands, key=lambda u: u.score)
            if all((u.start, u.end) != (v.start, v.end) for us in out.values() for v in us):
                out.setdefault(u.row, []).append(u)
    return {r: out[r] for r in list(dict.fromkeys([*picked, *out]))}
