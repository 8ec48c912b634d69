"""Answers with citations, built from retrieved passages.

Two answerers share one output, :class:`Answer`: a short text whose every sentence
ends with a marker ``[n]`` that points to ``citations[n]``.

* :func:`extractive_answer` (the default, offline): quotes the first sentences of the
  best passages — for a Q&A item the answer body after its question line — in the
  asker's language when a translated (``parallel``) passage exists.
* :func:`generative_answer`: asks an OpenAI-compatible ``/v1/chat/completions``
  endpoint to answer from the numbered passages with the same markers, then checks the
  reply with :func:`check_citations` (every sentence needs a marker that names a passage).

When nothing retrieved is similar enough to the question (:data:`MIN_RELEVANCE`), both
say so plainly instead of answering. :func:`ask` ties retrieval and answering together
for the app. Everything here except :func:`chat_completion` and :func:`ask` is a pure
function of its arguments.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from rag.lang import detect_lang
from rag.llm import LLM_TIMEOUT_S, AnswererError, chat_completion, endpoint_url  # noqa: F401
from rag.types import Chunk, Hit

# --- When to answer ---------------------------------------------------------------------
#
# A passage's relevance is the cosine similarity of the query and the passage's chunk
# vector (the index's vectors.npy), plus TERM_MATCH_BONUS when the passage contains every
# distinctive word of the query (analyzer word tokens found in at most
# COMMON_TERM_FRACTION of the chunks, or in none). The bonus rescues short keyword
# questions (ハルシネーション, 微调), whose embedding is far from any long passage; an
# off-topic question nearly always has a word the corpus lacks (天気, bread, 野球).
# The answer's relevance is the best among the retrieved passages.
#
# The fused and rerank scores cannot tell on- from off-topic: fused is min-max normalised
# per query (the best hit always gets 1.0), and the reranker's scale moves whenever its
# weights are refitted (with the first weights: on-topic 5th percentile 2.14, off-topic
# maximum 3.42). The similarity is computed here, not read from ``hit.scores``, so it means
# the same in every mode.
#
# Calibration, bundled use-m3 encoder, seed corpus: the 234 labelled questions of
# eval/data/seed_questions.jsonl, 20 short keyword questions (RAGとは, 微调, hallucination …)
# and 50 off-topic ones in ja/zh/en (今日の天気は？, how to bake bread, 怎么做红烧肉,
# 富士山の高さは？ …). Best relevance over the whole index (an upper bound for any mode):
#
#   on-topic (seed):   min 0.197, 1st pct 0.237, 5th pct 0.274, median 0.409
#   short keywords:    0.118 (幻觉是什么: the Chinese notes never define it), 0.188
#                      (量化是什么), 0.198, then 0.238 … median 0.37
#   off-topic:         max 0.280 (野球のルール), 0.273 (how to learn guitar),
#                      0.251 (サッカーのルール…), 0.249 (如何学习游泳), 0.214 (Tesla cost),
#                      then 0.172, 0.169 … median 0.129
#
# At 0.19: no seed question and 2/20 keyword questions are refused; 5/50 off-topic ones
# pass (all above 0.21, inside the on-topic range: no threshold separates them). 0.22
# refuses a seed question and still passes 4 off-topic ones. Through the app's default
# pipeline (rerank, k=5) the answer rate is 234/234 seed, 18/20 keyword, 4/50 off-topic.
MIN_RELEVANCE = 0.19
TERM_MATCH_BONUS = 0.10
COMMON_TERM_FRACTION = 0.2
SECOND_PASSAGE_RATIO = 0.85  # quote another passage only if nearly as relevant as the best

MAX_CITED_PASSAGES = 2  # passages the extractive answer quotes
FIRST_PASSAGE_SENTENCES = 2
OTHER_PASSAGE_SENTENCES = 1
CANDIDATE_HITS = 3  # the extractive answer quotes only from the top hits
MAX_SENTENCE_CHARS = 280

LANG_NAMES = {"ja": "日本語", "zh": "中文", "en": "English"}
ANSWER_LANGS = ("auto", "ja", "zh", "en")
ANSWERERS = ("extractive", "endpoint")

NO_ANSWER = {
    "ja": "資料の中に、この質問に答えられるほど関連する箇所は見つかりませんでした。質問を言い換えるか、資料を追加してください。",
    "zh": "资料中没有找到与这个问题足够相关的内容。请换一种问法，或添加相关资料。",
    "en": "I found nothing in the documents relevant enough to answer this. Try rephrasing the question, or add documents that cover it.",
}


@dataclass(frozen=True)
class Citation:
    """Passage ``number`` of an answer.

    ``chunk`` is the passage shown (and quoted); ``hit`` is the retrieved hit behind it.
    ``translated`` means ``chunk`` is the parallel (translation) of ``hit.chunk``.
    """

    number: int
    chunk: Chunk
    hit: Hit
    translated: bool = False


@dataclass(frozen=True)
class SentenceCheck:
    """One answer sentence and whether its citation markers are valid."""

    text: str
    markers: tuple[int, ...]
    ok: bool
    problem: str = ""


@dataclass
class Answer:
    text: str
    citations: list[Citation]
    answered: bool
    lang: str
    answerer: str  # "extractive" | "endpoint" | "none"
    checks: list[SentenceCheck] = field(default_factory=list)
    relevance: float | None = None
    note: str = ""  # shown under the answer (e.g. the endpoint's error, a language note)

    @property
    def flagged(self) -> list[SentenceCheck]:
        return [c for c in self.checks if not c.ok]

    def cited(self) -> list[Citation]:
        """Citations whose marker appears in the text, in marker order."""
        used = {n for c in self.checks for n in c.markers} if self.checks else set(markers_in(self.text))
        return [c for c in self.citations if c.number in used]


# --- Sentences and markers --------------------------------------------------------------

_MARKER = re.compile(r"\[(\d+(?:\s*[,，、]\s*\d+)*)\]")
_MARKERS_TAIL = r"(?:\s*\[\d+(?:\s*[,，、]\s*\d+)*\])*"
_CLOSERS = "」』）)\"'”’】"
# A sentence ends at 。！？!? (any run), at a full stop followed by space or the end, or at
# a line break. Closing quotes and citation markers right after the stop belong to it.
_SENT_END = re.compile(r"(?:[。！？!?]+|\.(?=\s|$|\[\d))[" + re.escape(_CLOSERS) + r"]*" + _MARKERS_TAIL + r"|\n+")
_WORDY = re.compile(r"[^\W_]", re.UNICODE)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f]")


def markers_in(text: str) -> list[int]:
    """Every passage number cited in ``text`` (``[2]``, ``[1, 3]``), in order."""
    out: list[int] = []
    for m in _MARKER.finditer(text):
        out.extend(int(n) for n in re.split(r"\s*[,，、]\s*", m.group(1)))
    return out


def split_sentences(text: str) -> list[str]:
    """Split an answer on 。！？.!? and line breaks; markers stay with their sentence.

    >>> split_sentences("AはBです[1]。Cです。[2] It is D [3]. E")
    ['AはBです[1]。', 'Cです。[2]', 'It is D [3].', 'E']
    """
    out: list[str] = []
    pos = 0
    for m in _SENT_END.finditer(text):
        seg = text[pos : m.end()].strip()
        pos = m.end()
        if seg:
            out.append(seg)
    tail = text[pos:].strip()
    if tail:
        out.append(tail)
    merged: list[str] = []
    for s in out:
        if not _WORDY.search(_MARKER.sub("", s)):
            # Markers or punctuation alone ("[2]" on its own line) belong to the sentence before.
            if merged and _MARKER.search(s):
                merged[-1] = f"{merged[-1]} {s}"
            continue
        merged.append(s)
    return merged


def check_citations(text: str, numbers: Collection[int]) -> list[SentenceCheck]:
    """Check every sentence of ``text`` carries a marker naming one of ``numbers``."""
    valid = set(numbers)
    checks = []
    for s in split_sentences(text):
        marks = tuple(markers_in(s))
        if not marks:
            checks.append(SentenceCheck(s, marks, False, "no citation marker"))
            continue
        bad = sorted({m for m in marks if m not in valid})
        if bad:
            names = ", ".join(f"[{m}]" for m in bad)
            checks.append(SentenceCheck(s, marks, False, f"cites {names}, which is not one of the passages"))
            continue
        checks.append(SentenceCheck(s, marks, True))
    return checks


# --- Language ---------------------------------------------------------------------------


def answer_language(question: str, setting: str = "auto") -> str:
    """The language to answer in: the sidebar's choice, or the question's (``auto``)."""
    if setting in LANG_NAMES:
        return setting
    return detect_lang(question)


def chunk_lookup(index: Any) -> Callable[[str], Chunk | None]:
    """``id -> Chunk`` over an :class:`~rag.index.Index` (``None`` for an unknown id)."""

    def get(chunk_id: str) -> Chunk | None:
        i = index.by_id.get(chunk_id)
        return None if i is None else index.chunks[i]

    return get


def localize(chunk: Chunk, lang: str, lookup: Callable[[str], Chunk | None] | None) -> tuple[Chunk, bool]:
    """``chunk``'s translation in ``lang`` when it has one, else ``chunk``; and whether it swapped."""
    if chunk.lang == lang or not chunk.parallel or lookup is None:
        return chunk, False
    other = lookup(chunk.parallel)
    if other is not None and other.lang == lang:
        return other, True
    return chunk, False


# --- Extractive answers -----------------------------------------------------------------

_FENCE = re.compile(r"^\s*(```|~~~)")
_BULLET = re.compile(r"^\s*(?:[-*+•・]|\d{1,3}[.)、]|[（(]\d{1,3}[)）])\s+")
_QPREFIX = re.compile(r"^\s*(?:问题|問題|质问|質問|Q|Question)\s*\d*\s*[:：.．]\s*", re.I)
_APREFIX = re.compile(r"^\s*(?:回答|答案|答|A|Answer)\s*[:：]\s*", re.I)
_EMPH = re.compile(r"(\*\*|__|\*|`)")
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")


def _plain(line: str) -> str:
    """A line without Markdown decoration: bullets, numbering, emphasis, links, heading marks."""
    line = line.strip()
    line = re.sub(r"^#{1,6}\s*", "", line)
    line = re.sub(r"^>\s*", "", line)
    line = _BULLET.sub("", line)
    line = _LINK.sub(r"\1", line)
    line = _EMPH.sub("", line)
    return re.sub(r"\s+", " ", line).strip()


def _same_heading(line: str, heading: str) -> bool:
    a = _QPREFIX.sub("", _plain(line)).strip()
    b = _plain(heading).strip()
    if not a or not b:
        return False
    return a == b or b in a or (len(a) >= 4 and a in b)


def answer_body(chunk: Chunk) -> str:
    """The passage's text without its question/heading line, code blocks and Markdown.

    For a Q&A item this is the answer after the question line; lines keep their breaks.
    """
    lines = chunk.text.split("\n")
    out: list[str] = []
    in_code = False
    first = True
    for raw in lines:
        if _FENCE.match(raw):
            in_code = not in_code
            continue
        if in_code or not raw.strip():
            continue
        if first:
            first = False
            if raw.lstrip().startswith("#") or (chunk.heading and _same_heading(raw, chunk.heading)):
                continue
            if chunk.kind == "qa" and _QPREFIX.match(raw):
                continue
        if raw.lstrip().startswith("|") or raw.lstrip().startswith("#"):
            continue  # table rows, sub-headings
        line = _APREFIX.sub("", _plain(raw))
        if line:
            out.append(line)
    return "\n".join(out)


def _candidate_sentences(body: str) -> list[str]:
    """Quotable sentences: not questions, not fragments, Markdown gone."""
    out = []
    for s in split_sentences(body):
        s = s.strip()
        core = s.rstrip(_CLOSERS)
        if len(_WORDY.findall(s)) < 6:
            continue
        if core.endswith(("？", "?")):
            continue  # a question is not an answer
        if core.endswith((":", "：")):
            continue  # an introduction to a list or code block
        visible = re.sub(r"\s", "", s)
        if "=" in s or len(_WORDY.findall(s)) < 0.6 * len(visible):
            continue  # a formula or a row of symbols, not prose
        if len(s) > MAX_SENTENCE_CHARS:
            s = s[: MAX_SENTENCE_CHARS - 1].rstrip() + "…"
        out.append(s)
    return out


def cite(sentence: str, number: int) -> str:
    """``sentence`` with ``[number]`` before its final punctuation (or at its end)."""
    # Numbers in brackets inside a quoted document would read as citation markers.
    s = _MARKER.sub(lambda m: f"［{m.group(1)}］", sentence.strip())
    m = re.search(r"(?:[。！？!?]+|\.)[" + re.escape(_CLOSERS) + r"]*$", s)
    if m:
        head, tail = s[: m.start()].rstrip(), s[m.start() :]
        sep = "" if _CJK.search(head[-1:]) or head.endswith(tuple(_CLOSERS)) else " "
        return f"{head}{sep}[{number}]{tail}"
    if _CJK.search(s):
        return f"{s}[{number}]。"
    return f"{s} [{number}]."


def relevance(hits: Sequence[Hit], similarities: Sequence[float | None] | None = None) -> float | None:
    """The best query–passage similarity among ``hits`` (``None`` if none is known)."""
    sims = similarities if similarities is not None else [h.scores.get("dense") for h in hits]
    known = [float(s) for s in sims if s is not None]
    return max(known) if known else None


def no_answer(lang: str, rel: float | None = None, hits: Sequence[Hit] = ()) -> Answer:
    return Answer(NO_ANSWER.get(lang, NO_ANSWER["en"]), [], False, lang, "none", [], rel)


def extractive_answer(
    hits: Sequence[Hit],
    *,
    lang: str,
    lookup: Callable[[str], Chunk | None] | None = None,
    similarities: Sequence[float | None] | None = None,
    min_relevance: float = MIN_RELEVANCE,
    max_passages: int = MAX_CITED_PASSAGES,
) -> Answer:
    """A short answer quoted from the best passages, every sentence cited.

    ``similarities[i]`` is hit ``i``'s query similarity (default: its ``dense`` score);
    passages below ``min_relevance`` are not quoted, and if none reaches it the answer
    says so.
    """
    sims = list(similarities) if similarities is not None else [h.scores.get("dense") for h in hits]
    rel = relevance(hits, sims)
    if not hits or rel is None or rel < min_relevance:
        return no_answer(lang, rel, hits)
    citations: list[Citation] = []
    sentences: list[str] = []
    used: set[str] = set()
    for i, hit in enumerate(hits[:CANDIDATE_HITS]):
        if len(citations) >= max_passages:
            break
        sim = sims[i] if i < len(sims) else None
        if citations and (sim is None or sim < max(min_relevance, SECOND_PASSAGE_RATIO * rel)):
            continue
        chunk, translated = localize(hit.chunk, lang, lookup)
        if {chunk.id, hit.chunk.id, chunk.parallel, hit.chunk.parallel} & used:
            continue  # the same passage, or its translation, is already quoted
        if citations and chunk.lang != citations[0].chunk.lang:
            continue  # one language per answer
        wanted = FIRST_PASSAGE_SENTENCES if not citations else OTHER_PASSAGE_SENTENCES
        picked = _candidate_sentences(answer_body(chunk))[:wanted]
        if not picked:
            continue
        number = len(citations) + 1
        citations.append(Citation(number, chunk, hit, translated))
        sentences.extend(cite(s, number) for s in picked)
        used |= {chunk.id, hit.chunk.id}
    if not citations:
        return no_answer(lang, rel, hits)
    text = _join(sentences)
    note = ""
    if citations[0].chunk.lang != lang:
        note = (
            f"No passage in {LANG_NAMES.get(lang, lang)} answers this; "
            f"quoted from {LANG_NAMES.get(citations[0].chunk.lang, citations[0].chunk.lang)} sources."
        )
    answer = Answer(text, citations, True, lang, "extractive", relevance=rel, note=note)
    answer.checks = check_citations(text, [c.number for c in citations])
    return answer


def _join(sentences: list[str]) -> str:
    out = ""
    for s in sentences:
        if out and not (_CJK.search(out[-1]) or out[-1] in "。！？」』）】"):
            out += " "
        out += s
    return out


# --- Generative answers -----------------------------------------------------------------


def build_messages(question: str, citations: Sequence[Citation], lang: str) -> list[dict[str, str]]:
    """The chat prompt: numbered passages, the question, and the citation rule."""
    language = {"ja": "Japanese", "zh": "Chinese (simplified)", "en": "English"}.get(lang, "English")
    system = (
        "You are a study assistant. Answer the question using ONLY the numbered passages. "
        f"Write a short answer (2 to 4 sentences) in {language}. "
        "Every sentence must end with the marker of the passage it is based on, written like [1] or [2], "
        "placed just before the sentence's final punctuation. Use only passage numbers that exist. "
        "Do not write headings, lists or anything without a marker. "
        "If the passages do not answer the question, say so in one sentence."
    )
    parts = []
    for c in citations:
        where = " > ".join(x for x in (c.chunk.title, c.chunk.section) if x)
        parts.append(f"[{c.number}] ({where})\n{c.chunk.text.strip()}")
    user = "Passages:\n\n" + "\n\n".join(parts) + f"\n\nQuestion: {question.strip()}"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def generative_answer(
    question: str,
    hits: Sequence[Hit],
    *,
    lang: str,
    complete: Callable[[list[dict[str, str]]], str],
    lookup: Callable[[str], Chunk | None] | None = None,
    similarities: Sequence[float | None] | None = None,
    min_relevance: float = MIN_RELEVANCE,
) -> Answer:
    """Ask ``complete(messages)`` (an LLM) to answer from the passages, then check its markers.

    Sentences without a valid marker are kept and listed in ``Answer.flagged``.
    """
    sims = list(similarities) if similarities is not None else [h.scores.get("dense") for h in hits]
    rel = relevance(hits, sims)
    if not hits or rel is None or rel < min_relevance:
        return no_answer(lang, rel, hits)
    citations = []
    for i, h in enumerate(hits):
        chunk, translated = localize(h.chunk, lang, lookup)
        citations.append(Citation(i + 1, chunk, h, translated))
    text = complete(build_messages(question, citations, lang))
    answer = Answer(text, citations, True, lang, "endpoint", relevance=rel)
    answer.checks = check_citations(text, [c.number for c in citations])
    return answer


# --- Follow-ups -------------------------------------------------------------------------

_FOLLOWUP_CUES = (
    "それ",
    "その",
    "これ",
    "この",
    "あれ",
    "じゃあ",
    "では",
    "他に",
    "ほかに",
    "もっと",
    "詳しく",
    "具体",
    "例えば",
    "なぜ",
    "どうして",
    "它",
    "这",
    "那",
    "还有",
    "更多",
    "具体",
    "比如",
    "例如",
    "为什么",
    "怎么",
    "it",
    "its",
    "it's",
    "that",
    "this",
    "those",
    "these",
    "they",
    "them",
    "and",
    "also",
    "what about",
    "how about",
    "why",
    "more",
    "example",
    "examples",
    "details",
)
FOLLOWUP_MAX_CJK_CHARS = 16
FOLLOWUP_MAX_WORDS = 6
MAX_COMBINED_CHARS = 400


def is_followup(question: str, analyze: Callable[[str], list[str]] | None = None) -> bool:
    """A short question that leans on the previous one (它/それ/"what about…", or no topic words)."""
    q = question.strip()
    low = q.lower()
    cjk = len(_CJK.findall(q))
    words = len(re.findall(r"[A-Za-z0-9][\w\-+.]*", q))
    short = cjk <= FOLLOWUP_MAX_CJK_CHARS and words <= FOLLOWUP_MAX_WORDS and (cjk or words)
    if not short:
        return False
    starts = any(
        low.startswith(c) and (not c.isascii() or len(low) == len(c) or not low[len(c)].isalnum())
        for c in _FOLLOWUP_CUES
    )
    if starts:
        return True
    if analyze is not None:
        # Nothing to search for on its own ("どうして？", "and?"): lean on the previous question.
        return not [t for t in analyze(q) if not t.startswith("~")]
    return False


def retrieval_query(
    question: str, previous: str | None, analyze: Callable[[str], list[str]] | None = None
) -> tuple[str, bool]:
    """The text to search for: a short follow-up is joined to the previous question."""
    q = question.strip()
    if not previous or not is_followup(q, analyze):
        return q, False
    return f"{previous.strip()[-MAX_COMBINED_CHARS:]} {q}", True


# --- The app's entry point --------------------------------------------------------------


@dataclass
class Settings:
    mode: str = "rerank"
    k: int = 5
    answer_lang: str = "auto"
    answerer: str = "extractive"
    llm_url: str = ""
    llm_model: str = ""
    llm_timeout: float = LLM_TIMEOUT_S
    llm_api_key: str | None = None


@dataclass
class Turn:
    """One question and everything the app shows for it."""

    question: str
    query: str  # what was searched (the question, or previous + follow-up)
    combined: bool
    hits: list[Hit]
    answer: Answer
    terms: list[str]
    mode: str
    ms: float


def similarities(searcher: Any, query: str, hits: Sequence[Hit]) -> list[float]:
    """Cosine similarity of the query and each hit's chunk vector.

    Computed here from the index's chunk vectors rather than read from ``hit.scores``, so
    the no-answer threshold means the same in every mode and whatever the search stages
    put in their scores.
    """
    if not hits:
        return []
    qv = searcher.query_vector(query)
    rows = [searcher.index.by_id[h.chunk.id] for h in hits]
    return [float(x) for x in searcher.index.dense.vectors[rows] @ qv]


_DF_CACHE: dict[int, tuple[Any, Counter, list[frozenset[str]]]] = {}


def _token_sets(index: Any) -> tuple[Counter, list[frozenset[str]]]:
    hit = _DF_CACHE.get(id(index))
    if hit is None or hit[0] is not index:
        sets = [frozenset(t) for t in index.bm25.tokens]
        df = Counter(t for st in sets for t in st)
        if len(_DF_CACHE) >= 4:
            _DF_CACHE.clear()
        hit = _DF_CACHE[id(index)] = (index, df, sets)
    return hit[1], hit[2]


def term_matches(searcher: Any, query: str, hits: Sequence[Hit]) -> list[bool]:
    """Whether each hit contains every distinctive word of ``query`` (see :data:`TERM_MATCH_BONUS`)."""
    df, sets = _token_sets(searcher.index)
    limit = COMMON_TERM_FRACTION * len(sets)
    words = {t for t in searcher.query_tokens(query) if not t.startswith("~") and df[t] <= limit}
    if not words:
        return [False] * len(hits)
    return [words <= sets[searcher.index.by_id[h.chunk.id]] for h in hits]


def effective_relevance(sims: Sequence[float], matches: Sequence[bool]) -> list[float]:
    """Similarity plus :data:`TERM_MATCH_BONUS` where the passage has all distinctive query words."""
    return [float(s) + (TERM_MATCH_BONUS if m else 0.0) for s, m in zip(sims, matches, strict=True)]


def ask(searcher: Any, question: str, settings: Settings, *, previous_query: str | None = None) -> Turn:
    """Retrieve for ``question`` (joined to ``previous_query`` if it is a follow-up) and answer it."""
    from rag.highlight import query_terms
    from rag.search import check_query

    t0 = time.perf_counter()
    question = check_query(question)
    query, combined = retrieval_query(question, previous_query, searcher.analyze)
    hits = searcher.search(query, k=settings.k, mode=settings.mode)
    sims = effective_relevance(similarities(searcher, query, hits), term_matches(searcher, query, hits))
    lang = answer_language(question, settings.answer_lang)
    lookup = chunk_lookup(searcher.index)
    if settings.answerer == "endpoint":
        try:
            answer = generative_answer(
                question,
                hits,
                lang=lang,
                lookup=lookup,
                similarities=sims,
                complete=lambda msgs: chat_completion(
                    settings.llm_url,
                    settings.llm_model,
                    msgs,
                    timeout=settings.llm_timeout,
                    api_key=settings.llm_api_key,
                ),
            )
        except AnswererError as e:
            answer = extractive_answer(hits, lang=lang, lookup=lookup, similarities=sims)
            answer = dataclasses.replace(answer, note=f"{e} — showing the extractive answer instead.")
    else:
        answer = extractive_answer(hits, lang=lang, lookup=lookup, similarities=sims)
    terms = query_terms(question, searcher.analyze)
    return Turn(question, query, combined, list(hits), answer, terms, settings.mode, (time.perf_counter() - t0) * 1000)
