"""Shared fixtures: a deterministic fake encoder, small corpora and indexes in tmp folders.

Unit tests use :class:`FakeEncoder` (no model, no torch). Tests marked ``model`` use the
real bundled encoders; the index they need is built once per session with
``python -m ingest`` into a temporary folder.
"""

from __future__ import annotations

import os

# Tests never download anything: make the Hugging Face stack fail fast instead of
# trying the network (must be set before huggingface_hub is first imported).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "corpus"
JA_TOP50 = "llm-interview-top50-ja.md"
ZH_TOP50 = "llm-interview-top50-zh.txt"
NUMBERED_DOC = "llm-technical-foundations-ja.txt"


class FakeEncoder:
    """Deterministic stand-in for a sentence encoder.

    Character 1-, 2- and 3-grams of the lower-cased text are hashed (a fixed polynomial
    hash, not Python's salted ``hash``) into ``dim`` signed buckets; rows are
    L2-normalised, so inner product is cosine similarity and texts sharing n-grams are
    close. Every call is recorded in ``calls`` (one list of texts per call).
    """

    def __init__(self, dim: int = 64, id: str = "fake-ngram-64"):
        self.dim = dim
        self.id = id
        self.calls: list[tuple[list[str], bool]] = []

    @property
    def texts(self) -> list[str]:
        return [t for texts, _ in self.calls for t in texts]

    def reset(self) -> None:
        self.calls.clear()

    def _vector(self, text: str) -> np.ndarray:
        cps = np.frombuffer(text.lower().encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
        v = np.zeros(self.dim, dtype=np.float64)
        for n in (1, 2, 3):
            m = len(cps) - n + 1
            if m <= 0:
                break
            h = np.full(m, n, dtype=np.int64)
            for j in range(n):
                h = h * 1_000_003 + cps[j : j + m]
            h = h % 2_147_483_647
            sign = np.where((h // self.dim) % 2 == 0, 1.0, -1.0)
            v += np.bincount(h % self.dim, weights=sign, minlength=self.dim)
        norm = np.linalg.norm(v)
        return (v / norm if norm > 0 else v).astype(np.float32)

    def encode(self, texts: Sequence[str], *, query: bool) -> np.ndarray:
        texts = list(texts)
        self.calls.append((texts, query))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            out[i] = self._vector(t)
        return out


@pytest.fixture
def fake_encoder() -> FakeEncoder:
    return FakeEncoder()


# --- small synthetic corpus -----------------------------------------------------------

SMALL_CORPUS = {
    "ja-qa.md": """---
title: "LLM面接メモ"
source: "https://example.com/ja"
tags: ["LLM", "面接"]
---

# LLM面接メモ

## 質問と回答

1. **トークナイゼーションとは何か？**

    トークナイゼーションは、テキストを単語やサブワードに分割する処理です。語彙サイズとモデルの効率に影響します。

2. **LoRAとQLoRAの違いは？**

    LoRAは低ランク行列を追加して効率よく微調整します。QLoRAはさらに4ビット量子化を使い、メモリを節約します。

3. **温度パラメータの役割は？**

    温度はサンプリングのランダム性を調整します。低い温度は決定的な出力、高い温度は多様な出力になります。
""",
    "zh-notes.txt": """向量检索笔记

引言

本文介绍稠密检索与关键词检索的区别。稠密检索使用向量表示文本,关键词检索使用倒排索引。

混合检索

混合检索把BM25分数和向量相似度融合在一起。常见方法包括倒数排名融合和加权求和。

重排序

重排序模型对候选段落重新打分,通常比第一阶段检索更准确,但速度更慢。
""",
    "en-guide.md": """# Retrieval guide

## Chunking

Documents are split into chunks along headings and paragraphs. Each chunk keeps exact character offsets into its document.

## Fusion

Reciprocal rank fusion adds one over k plus rank for every run. Weighted sum fusion adds min-max normalised scores.

## Evaluation

Recall at k and MRR measure how often the right passage is retrieved near the top of the ranking.
""",
}


def write_corpus(folder: Path, files: dict[str, str | bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        p = folder / name
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content, encoding="utf-8")
    return folder


@pytest.fixture
def small_corpus(tmp_path) -> Path:
    return write_corpus(tmp_path / "corpus", SMALL_CORPUS)


@pytest.fixture
def small_index(small_corpus, tmp_path, fake_encoder):
    """(corpus dir, index dir, encoder) for a freshly ingested small corpus."""
    from ingest.pipeline import ingest

    index_dir = tmp_path / "index"
    report = ingest(small_corpus, index_dir, encoder=fake_encoder)
    assert report.written
    return small_corpus, index_dir, fake_encoder


# The fake encoder's cosines run far below a real model's: its own small relevance model.
FAKE_CALIBRATION = {"weights": {"passage": 12.0, "unit": 12.0, "term_missing": -6.0}, "bias": -6.0, "threshold": 0.5}


def fake_tuned(**kw):
    """Tuned values for the fake encoder (it has no entry in rag/tuned.json): a small
    feature reranker so every mode has something to do."""
    from rag.tuned import Tuned

    base = dict(
        encoder="fake-ngram-64",
        bm25_weight=0.8,
        adaptive=True,
        whole_weight=0.5,
        default_mode="rerank",
        reranker={"features": ["fused", "unit", "coverage", "fused*unknown"], "weights": [2.0, 1.0, 1.0, 0.5]},
        answer={"calibration": FAKE_CALIBRATION},
    )
    return Tuned(**{**base, **kw})


@pytest.fixture(scope="session")
def small_searcher(tmp_path_factory):
    """A read-only Searcher over the small corpus (shared; do not mutate)."""
    from ingest.pipeline import ingest
    from rag.index import open_index
    from rag.search import Searcher

    base = tmp_path_factory.mktemp("small")
    corpus = write_corpus(base / "corpus", SMALL_CORPUS)
    enc = FakeEncoder()
    ingest(corpus, base / "index", encoder=enc)
    return Searcher(open_index(base / "index"), encoder=enc, tuned=fake_tuned())


@pytest.fixture(scope="session")
def corpus_fake_index(tmp_path_factory):
    """(index dir, encoder): the real corpus indexed with the fake encoder (read-only)."""
    from ingest.pipeline import ingest

    index_dir = tmp_path_factory.mktemp("corpus-fake") / "index"
    enc = FakeEncoder()
    ingest(CORPUS, index_dir, encoder=enc)
    return index_dir, enc


# --- real model session index (tests using it are marked `model`) --------------------


def run_cli(module: str, *args: str, cwd: Path | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    """Run ``python -m <module> args…`` in a fresh interpreter with this checkout importable."""
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=str(cwd or ROOT),
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def real_index(tmp_path_factory) -> Path:
    """The real corpus indexed once with the bundled default encoder (e5-small), with room for a
    busy machine; ``STUDYRAG_TEST_REAL_INDEX`` names one already built from ./corpus to reuse."""
    index_dir = tmp_path_factory.mktemp("real") / "index"
    prebuilt = os.environ.get("STUDYRAG_TEST_REAL_INDEX", "").strip()
    if prebuilt:
        shutil.copytree(prebuilt, index_dir)
        return index_dir
    proc = run_cli("ingest", "--corpus", str(CORPUS), "--index", str(index_dir), "--quiet", timeout=900)
    assert proc.returncode == 0, proc.stderr
    return index_dir


def copy_of_real_index(real_index: Path, tmp_path_factory, name: str) -> Path:
    """A module's own copy of the session's real index (built once), free to change."""
    index_dir = tmp_path_factory.mktemp(name) / "index"
    shutil.copytree(real_index, index_dir)
    return index_dir


@pytest.fixture(scope="session")
def real_searcher(real_index):
    from rag.search import Searcher

    return Searcher.open(real_index)


@pytest.fixture
def corpus_copy(tmp_path) -> Path:
    dst = tmp_path / "corpus"
    shutil.copytree(CORPUS, dst)
    return dst


# --- PostgreSQL: one fresh database per test run, one fresh schema per test -------------------------


def pytest_configure(config):
    """The app and CLI under test keep progress in their tmp data folders, never in a developer's
    server (tests that want PostgreSQL ask for ``pg_url``; tests/replica.py is given it)."""
    os.environ.pop("STUDYRAG_STORE", None)


PG_ENV = "STUDYRAG_TEST_PG"  # an admin URL of a running server (.ci/run starts one and sets it)


@pytest.fixture(scope="session")
def pg_database():
    """The URL of a database created for this run and dropped after it, on the server at
    ``$STUDYRAG_TEST_PG``, else on a throwaway cluster started here (Debian's ``postgresql``);
    the tests that need it are skipped, with the reason, only when neither is possible."""
    import secrets
    import tempfile
    from urllib.parse import urlsplit, urlunsplit

    import pg_server

    try:
        import psycopg
    except ImportError:
        pytest.skip("psycopg is not installed (pip install -e '.[postgres]')")
    admin, base = os.environ.get(PG_ENV, "").strip(), None
    if not admin:
        base = Path(tempfile.mkdtemp(prefix="studyrag-pg-"))  # not under pytest's 0700 tmp: the server user reads it
        try:
            admin = pg_server.start(base)
        except RuntimeError as e:
            shutil.rmtree(base, ignore_errors=True)
            pytest.skip(f"no PostgreSQL server: {e}")
    name = f"studyrag_test_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(admin)._replace(path=f"/{name}", query=""))
    finally:
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if base is not None:
            pg_server.stop(base)
            shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def pg_url(pg_database) -> str:
    """A URL whose ``search_path`` is a new, empty schema of the run's database."""
    import secrets

    import psycopg

    schema = f"t_{secrets.token_hex(5)}"
    with psycopg.connect(pg_database, autocommit=True) as c:
        c.execute(f"CREATE SCHEMA {schema}")
    return f"{pg_database}?options=-csearch_path%3D{schema}"


@pytest.fixture
def milvus_server(tmp_path):
    """``milvus-lite server`` on a free local port, in a process of its own: the gRPC server
    protocol of ``milvus://`` (skipped with the reason when it cannot start here)."""
    import importlib.util

    from eval.scale import milvus_lite_server

    exe = Path(sys.executable).with_name("milvus-lite")
    if importlib.util.find_spec("milvus_lite") is None or not exe.exists():
        pytest.skip("milvus-lite is not installed (pip install -e '.[dev]')")
    try:
        server = milvus_lite_server(tmp_path / "milvus")
        address, _ = server.__enter__()
    except RuntimeError as e:
        pytest.skip(f"milvus-lite server cannot start here: {e}")
    try:
        yield address
    finally:
        server.__exit__(None, None, None)
