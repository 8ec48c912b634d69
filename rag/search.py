"""The search pipeline: BM25 and dense legs, fusion, reranking, parallel-passage order.

``mode`` sets how deep a query goes: ``bm25`` | ``dense`` | ``hybrid`` (fused) |
``rerank`` (fused, then reranked). Every hit carries the score each stage gave it. The
tuned values (fusion weights, dense mix, reranker, default mode) come from one file,
``rag/tuned.json`` (:mod:`rag.tuned`), chosen per encoder by ``python -m eval tune``.
"""

from __future__ import annotations

import dataclasses
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Sequence
from pathlib import Path

import numpy as np

from rag.analyze import get_analyzer, loanword_names
from rag.bm25 import top_n
from rag.encoders import Encoder, load_encoder
from rag.errors import EncoderMismatchError, QueryError
from rag.fusion import rrf, wsum
from rag.index import Index
from rag.lang import detect_lang
from rag.rerank import CrossEncoderReranker, FeatureReranker, Reranker
from rag.rules.names import topic_names
from rag.rules.script import notes_languages
from rag.rules.structure import without_diagrams
from rag.safety import has_content, invalid_text
from rag.text import search_text, squash
from rag.tuned import MODES, Tuned, load_tuned
from rag.types import Chunk, Hit, Query

MAX_QUERY_CHARS = 2000
MAX_K = 200
QUERY_CACHE = 256


def _remember(cache: OrderedDict, key, value):
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > QUERY_CACHE:
        cache.popitem(last=False)
    return value

__all__ = ["MODES", "MAX_K", "MAX_QUERY_CHARS", "Searcher", "check_query", "is_empty_question", "fuse", "fusion_weights", "names_first",
           "prefer_query_language"]


CENTRE_SAMPLE = 2000  # passages per language whose mean score centres that language (centre_languages)
MIN_CENTRE = 8  # a language of fewer passages is not centred: the mean of one or two scores is their own


def is_empty_question(text: str) -> bool:
    """The empty-question rule: nothing but spaces, invisible or control characters (zero-width
    spaces, bidi controls, a BOM), symbols or emoji — no letter, digit or CJK character."""
    return not has_content(text)


def check_query(query: str) -> str:
    """Return the stripped query or raise :class:`QueryError`."""
    if not isinstance(query, str):
        raise QueryError(f"query must be text, got {type(query).__name__}")
    q = query.strip()
    why = invalid_text(q)
    if why:
        raise QueryError(f"query is not valid text: {why}")
    if is_empty_question(q):
        raise QueryError("query is empty: type a question or keywords (it has no letters, digits or CJK characters)")
    if len(q) > MAX_QUERY_CHARS:
        raise QueryError(f"query is {len(q):,} characters; the limit is {MAX_QUERY_CHARS:,}. Shorten it to the question itself")
    return q


def prefer_query_language(hits: list[Hit], qlang: str) -> list[Hit]:
    """Where a passage and its translation are both hit, put the asker's language first."""
    out = list(hits)
    pos = {h.chunk.id: i for i, h in enumerate(out)}
    for i in range(len(out)):
        h = out[i]
        j = pos.get(h.chunk.parallel) if h.chunk.parallel else None
        if j is not None and j > i and h.chunk.lang != qlang and out[j].chunk.lang == qlang:
            out[i], out[j] = out[j], out[i]
            pos[out[i].chunk.id], pos[out[j].chunk.id] = i, j
    return [dataclasses.replace(h, rank=r) for r, h in enumerate(out, start=1)]


def names_first(chunks: Sequence[Chunk], order: list[int], query: Query) -> list[int]:
    """``order`` (chunk rows, best first) with the passages that contain every name the
    question asks about (:func:`rag.rules.names.topic_names`: RAG, LoRA, GPT-4 …, not the
    field's own LLM or NLP) — in their text, section path or document title (a slide
    「路由机制与负载均衡」 of the deck 「MoE与分布式训练」 is about MoE) — moved to the front, each
    group in its order. "RAGの仕組み" wants a
    passage on RAG before one on how LLMs work, however often the latter says 仕組み. A name
    counts as written in katakana too ("Multi-Head Attention": マルチヘッドアテンション,
    :func:`rag.analyze.loanword_names`), but not as a label in a diagram
    (:func:`rag.rules.structure.without_diagrams`). Unchanged when no candidate has every name."""
    names = [t for t in (squash(n) for n in topic_names(query.text, query.lang)) if t]
    if not names:
        return order
    texts = chunks.many(order) if hasattr(chunks, "many") else [chunks[i] for i in order]  # an engine's: one read

    def names_all(text: str) -> bool:
        # each name written as the question writes it, or as a katakana loanword (マルチヘッドアテンション),
        # outside a diagram: 「Multi-Head Attentionとは？」 went to the overview whose diagram labels a box with it
        text = without_diagrams(text)
        flat = squash(text)
        return all(t in flat or any(t in w for w in loanword_names(text)) for t in names)

    named = [i for i, c in zip(order, texts) if names_all(f"{c.title}\n{c.section}\n{c.text}")]
    if not named or named[0] == order[0]:
        return order
    first = set(named)
    return named + [i for i in order if i not in first]


def fusion_weights(tuned: Tuned, query: Query) -> tuple[float, float]:
    """(bm25, dense) weights for ``query``: with ``tuned.adaptive`` the keyword leg gets its
    weight times the share of the query it can see, and the dense leg the rest."""
    w = tuned.bm25_weight * (query.coverage if tuned.adaptive else 1.0)
    return w, 1.0 - w


def fuse(tuned: Tuned, query: Query, bm25: dict[int, float], dense: dict[int, float], *,
         other_language: Collection[int] = frozenset()) -> dict[int, float]:
    """The fused run of the two legs (weighted min-max sum, or weighted RRF). The rows in
    ``other_language`` (passages in another language than the question's, with
    ``tuned.language_fusion``) get the dense leg's score alone, with both legs' weight: the
    keyword leg is weighted by the question's coverage in its own language's notes and cannot
    see them, so its zero would rank every one of them below the question's own language."""
    weights = fusion_weights(tuned, query)
    combine = (lambda runs, w: rrf(runs, k=tuned.rrf_k, weights=w)) if tuned.fusion == "rrf" else wsum
    fused = combine([bm25, dense], weights)
    if other_language:
        alone = combine([{}, dense], (0.0, sum(weights)))
        for i in set(other_language) & fused.keys():
            fused[i] = alone.get(i, 0.0)
    return fused


class Searcher:
    """Query an :class:`Index`. Build with :meth:`open`; reuse across queries (it caches).

    ``tuned`` defaults to the index encoder's entry of ``rag/tuned.json``; ``reranker`` is
    ``"auto"`` (the tuned feature reranker, if the tuning kept one), ``"features"``,
    ``"none"``, ``"cross:<model>"`` or a :class:`~rag.rerank.Reranker`.
    """

    def __init__(self, index: Index, *, encoder: Encoder, tuned: Tuned | None = None, reranker: str | Reranker = "auto"):
        if encoder.id != index.encoder_id:
            raise EncoderMismatchError(
                f"the index was built with encoder {index.encoder_id!r} but the query encoder is {encoder.id!r}; "
                f"search with the same encoder, or rebuild: python -m ingest --rebuild --encoder {encoder.id.split('@')[0]}"
            )
        self.index = index
        self.encoder = encoder
        self.tuned = tuned if tuned is not None else load_tuned(index.encoder_id)
        self.analyze: Callable[[str], list[str]] = get_analyzer(index.manifest["analyzer"])
        self.reranker: Reranker | None = self._make_reranker(reranker)
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._tokens: OrderedDict[str, tuple[str, ...]] = OrderedDict()
        self._lang_codes: tuple[np.ndarray, list[str], np.ndarray] | None = None
        self._twins = np.zeros(0, dtype=np.int64)
        self._members: list[list[str]] = []  # the detected languages that count as each notes language
        self.default_mode = self.tuned.default_mode if (self.tuned.default_mode != "rerank" or self.reranker) else "hybrid"

    def _make_reranker(self, spec: str | Reranker) -> Reranker | None:
        if not isinstance(spec, str):
            return spec
        if spec in ("auto", "features"):
            r = self.tuned.reranker
            if not r:
                if spec == "features":
                    raise ValueError(f"no feature reranker is tuned for encoder {self.index.encoder_id!r}")
                return None
            return FeatureReranker(self.index, features=r["features"], weights=r["weights"])
        if spec == "none":
            return None
        if spec.startswith("cross:"):
            return CrossEncoderReranker(spec[len("cross:") :])
        raise ValueError(f"reranker must be 'auto', 'features', 'none' or 'cross:<model>', got {spec!r}")

    @classmethod
    def open(cls, index_dir: str | Path, *, encoder: str | None = None, **kwargs) -> Searcher:
        """Load the index at ``index_dir`` (a folder or an engine URI, :mod:`rag.backends`) and
        the encoder that built it (or ``encoder``)."""
        from rag.backends import open_index

        index = open_index(index_dir)
        return cls(index, encoder=load_encoder(encoder or index.encoder_id), **kwargs)

    # --- the query, computed once ------------------------------------------------------------

    def query_vector(self, text: str) -> np.ndarray:
        """The encoder's vector for ``text`` (kept for the last :data:`QUERY_CACHE` queries)."""
        v = self._vectors.get(text)
        if v is None:
            v = self.encoder.encode([text], query=True)[0]
            v.setflags(write=False)
            _remember(self._vectors, text, v)
        return v

    def query_tokens(self, text: str) -> tuple[str, ...]:
        t = self._tokens.get(text)
        if t is None:
            t = _remember(self._tokens, text, tuple(self.analyze(text)))
        return t

    def clear_query_cache(self) -> None:
        """Forget cached query vectors and tokens (benchmarks time each mode from scratch)."""
        self._vectors.clear()
        self._tokens.clear()

    def vocabulary_coverage(self, text: str) -> float:
        """Share of the query's distinct tokens that occur in the notes written in the query's
        own language. An English question over Japanese and Chinese notes shares only stray
        English words with them: its keyword leg should count for little (chosen on the dev
        halves, eval/results/tuning.md)."""
        toks = set(self.query_tokens(text))
        if not toks:
            return 0.0
        vocab = self.index.vocabulary_of(detect_lang(text))
        return sum(1 for t in toks if t in vocab) / len(toks)

    def make_query(self, text: str, *, dense: bool = True) -> Query:
        """The :class:`Query` record every stage reads (the vector only when ``dense``). Both
        legs search for what the question asks about: a request wrapper (「…を教えてください」,
        "Tell me about …") is left out (:func:`rag.text.search_text`)."""
        q = check_query(text)
        core = search_text(q)
        return Query(
            text=q,
            lang=detect_lang(q),
            tokens=self.query_tokens(core),
            coverage=self.vocabulary_coverage(core),
            vector=self.query_vector(core) if dense else None,
        )

    # --- the stages ----------------------------------------------------------------------------

    def bm25_leg(self, query: Query, n: int) -> tuple[dict[int, float], np.ndarray]:
        """Top-``n`` BM25 chunks (positive scores only) and every chunk's score."""
        return self.index.bm25.leg(list(query.tokens), n)

    def dense_leg(self, query: Query, n: int) -> dict[int, float]:
        """Multi-vector dense retrieval: nearest chunks and nearest units (pooled to their
        chunks), each candidate scored by :meth:`Index.passage_similarity`; top ``n``."""
        qv = query.vector
        ci, _ = self.index.dense.top(qv, n)
        ui, _ = self.index.unit_dense.top(qv, 3 * n)
        rows = np.unique(np.concatenate([ci, self.index.unit_owner[ui]]))
        langs = self._languages()[1] if self.tuned.centre_languages else []
        if len(langs) > 1 and query.lang in langs:
            # each passage against its own language: its score less the mean score of that
            # language's passages (from at most CENTRE_SAMPLE of them) for this query; the best n
            # of every language by whole-passage cosine are candidates too. Only for a question
            # written in one of the notes languages: the encoder's pull towards the question's
            # own language is what it corrects. A passage whose translation is in the question's
            # language counts as that language (:meth:`counts_as`)
            codes, langs, sample = self._languages()
            ref = self.passage_similarity(sample, qv)
            means = self.language_means(ref, codes[sample], len(langs))
            group = self.counts_as(query)
            rows = np.unique(np.concatenate([rows, self.centred_top(qv, means, group, n)]))
            sims = self.passage_similarity(rows, qv) - means[group[rows]] + float(ref.mean())
        else:
            sims = self.passage_similarity(rows, qv)
        best = np.argsort(-sims, kind="stable")[:n]
        return {int(rows[j]): float(sims[j]) for j in best}

    @staticmethod
    def language_means(ref: np.ndarray, codes: np.ndarray, n_langs: int) -> np.ndarray:
        """Each language's mean score over the centring sample (``ref``, languages ``codes``);
        the sample's mean for a language of fewer than :data:`MIN_CENTRE` passages (notes with a
        single Chinese table: centred on itself, that passage lost every advantage it had)."""
        return np.array([ref[codes == k].mean() if (codes == k).sum() >= MIN_CENTRE else ref.mean()
                         for k in range(n_langs)])

    def centred_top(self, qv: np.ndarray, means: np.ndarray, group: np.ndarray, n: int) -> np.ndarray:
        """The rows of the ``n`` best passages by whole-passage cosine less the mean of their
        language (``means[group]``, ``group`` from :meth:`counts_as`), positive only. With the
        vectors in memory, from every passage's cosine. On an engine, from each language's
        nearest passages (a search limited to that language; a language small enough to be all
        in the pinned sample is scored whole), plus the passages counted as the question's
        language through their translation — the shift is the same within a language, so the
        ``n`` best overall are among those — so no question reads every vector."""
        dense = self.index.dense
        if dense.in_memory:
            return top_n(dense.vectors @ qv - means[group], n)[0]
        codes = self._languages()[0]
        moved = np.flatnonzero(group != codes)  # counted as their translation's language
        sizes = np.bincount(codes, minlength=len(means))
        cand = [moved]
        for k in range(len(means)):
            if sizes[k] <= 2 * CENTRE_SAMPLE:  # every passage of this language is in the sample
                cand.append(np.flatnonzero(codes == k))
            else:  # its n best, and room for those of its passages that count as another language
                cand.append(dense.top(qv, n + int((codes[moved] == k).sum()), langs=self._members[k])[0])
        cand = np.unique(np.concatenate(cand)).astype(np.int64)
        idx = top_n(dense.vectors[cand] @ qv - means[group[cand]], n)[0]
        return cand[idx]

    def counts_as(self, query: Query) -> np.ndarray:
        """Each passage's notes language for ``query`` (a code into :meth:`_languages`): its own,
        or the question's when its translation (``Chunk.parallel``) is in the question's language —
        a Chinese Q&A item with a Japanese twin is judged, for a Japanese question, as that twin
        is, so the language rules lift only what is written in another language alone."""
        codes, langs, _ = self._languages()
        if query.lang not in langs:
            return codes
        own = langs.index(query.lang)
        return np.where(self._twins == own, own, codes)

    def other_language(self, query: Query, *runs: dict[int, float]) -> frozenset[int]:
        """The rows of ``runs`` in another notes language than ``query``'s (:meth:`counts_as`),
        with ``tuned.language_fusion``, notes in more than one language and the question in one
        of them; else none (an English question over Japanese and Chinese notes keeps the plain
        fusion: its keyword leg already weighs nothing)."""
        if not self.tuned.language_fusion:
            return frozenset()
        langs = self._languages()[1]
        if len(langs) < 2 or query.lang not in langs:
            return frozenset()
        own, codes = langs.index(query.lang), self.counts_as(query)
        return frozenset(i for run in runs for i in run if codes[i] != own)

    def _languages(self) -> tuple[np.ndarray, list[str], np.ndarray]:
        """Each passage's notes language (:func:`rag.rules.script.notes_languages`) as a code
        into the index's languages, and the rows whose scores give a language's mean: all of
        them, or every k-th up to CENTRE_SAMPLE (cached)."""
        if self._lang_codes is None or len(self._lang_codes[0]) != len(self.index.chunks):
            own = self.index.chunk_languages()
            of = notes_languages(own)
            langs = sorted(set(of))
            at = {lang: k for k, lang in enumerate(langs)}
            codes = np.array([at[lang] for lang in of], dtype=np.int8)
            self._members = [sorted({a for a, b in set(zip(own, of)) if b == lang}) for lang in langs]
            del own, of
            sample = np.concatenate([rows[:: max(1, len(rows) // CENTRE_SAMPLE)]
                                     for rows in (np.flatnonzero(codes == k) for k in range(len(langs)))])
            self._lang_codes = (codes, langs, np.sort(sample))
            self.index.pin(self._lang_codes[2])  # every centred question scores these passages
            self._twins = np.full(len(codes), -1, dtype=np.int8)  # the language code of each passage's translation
            for i, j in self.index.parallel_rows().items():
                self._twins[i] = codes[j]
        return self._lang_codes

    def passage_similarity(self, rows: np.ndarray, qv: np.ndarray) -> np.ndarray:
        return self.index.passage_similarity(rows, qv, whole_weight=self.tuned.whole_weight)

    def search(self, query: str, *, k: int = 10, mode: str | None = None, doc_ids=None) -> list[Hit]:
        """The ``k`` best chunks for ``query``, best first (``mode`` defaults to the tuned one;
        ``doc_ids`` limits the search to those documents)."""
        mode = mode if mode is not None else self.default_mode
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
        if not 1 <= k <= MAX_K:
            raise ValueError(f"k must be between 1 and {MAX_K}, got {k}")
        q = self.make_query(query, dense=mode != "bm25")
        return self.search_query(q, k=k, mode=mode, doc_ids=doc_ids)

    def search_query(self, q: Query, *, k: int, mode: str, doc_ids=None) -> list[Hit]:
        """:meth:`search` for a ready :class:`Query`."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
        if self.index.manifest.get("pending"):  # a keyword-only build: new documents not embedded yet
            mode = "bm25"
        n = max(k, self.tuned.candidates)
        bm25, all_bm25 = self.bm25_leg(q, n) if mode != "dense" else ({}, None)
        dense = self.dense_leg(q, n) if mode != "bm25" else {}
        if doc_ids is not None:
            rows_in = self.index.rows_of_documents(doc_ids)
            inside = set(rows_in.tolist())
            keep = lambda run: {i: s for i, s in run.items() if i in inside}  # noqa: E731
            if mode != "dense":
                bm25, all_bm25 = self.index.bm25.leg(list(q.tokens), n, rows=rows_in)
            if mode != "bm25":
                dense = keep(self.dense_leg(q, 4 * n)) or keep(self.dense_leg(q, len(self.index.chunks)))
        primary = (bm25 if mode == "bm25" else dense if mode == "dense"
                   else fuse(self.tuned, q, bm25, dense, other_language=self.other_language(q, bm25, dense)))
        order = sorted(primary, key=lambda i: -primary[i])
        fused = mode in ("hybrid", "rerank")
        if fused and self.tuned.names_first:
            order = names_first(self.index.chunks, order, q)
        reranking = mode == "rerank" and self.reranker is not None
        keep = order[: n if reranking else k]
        self.index.prefetch(keep)
        dense_of = (
            dict(zip(keep, self.passage_similarity(np.array(keep, dtype=np.int64), q.vector).tolist()))
            if mode != "bm25" and keep
            else {}
        )
        hits = [
            Hit(
                chunk=self.index.chunks[i],
                rank=r,
                score=float(primary[i]),
                scores={
                    "bm25": None if all_bm25 is None else float(all_bm25[i]),
                    "dense": dense_of.get(i),
                    "fused": primary[i] if fused else None,
                    "rerank": None,
                },
            )
            for r, i in enumerate(keep, start=1)
        ]
        if reranking:
            hits = self.reranker.rerank(q, hits, k)
        return prefer_query_language(hits, q.lang)

    def timed_search(self, query: str, **kwargs) -> tuple[list[Hit], float]:
        """``search`` plus its wall time in milliseconds."""
        t = time.perf_counter()
        hits = self.search(query, **kwargs)
        return hits, (time.perf_counter() - t) * 1000
