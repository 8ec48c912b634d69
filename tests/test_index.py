"""The on-disk index: round trip, atomic swap, staleness, incremental ingest, corruption."""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from conftest import CORPUS, SMALL_CORPUS, FakeEncoder, write_corpus
from ingest.loader import load_corpus
from ingest.pipeline import build, ingest
from rag.bm25 import BM25Index
from rag.corpus import stale_documents
from rag.dense import DenseIndex
from rag.errors import EncoderMismatchError, IndexCorruptError, IndexMissingError, ModelLoadError
from rag.index import Index, current_folder, open_index, write_index
from rag.search import MODES, Searcher

QUERIES = ["LoRAとQLoRAの違いは？", "混合检索 融合", "reciprocal rank fusion", "温度"]


def _assert_same_index(a: Index, b: Index) -> None:
    assert a.manifest == b.manifest
    assert a.documents == b.documents
    assert a.chunks == b.chunks
    assert a.bm25.tokens == b.bm25.tokens
    assert (a.bm25.analyzer, a.bm25.k1, a.bm25.b) == (b.bm25.analyzer, b.bm25.k1, b.bm25.b)
    for name in ("heads", "units", "unit_offsets"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and np.array_equal(x, y), name
    assert a.dense.kind == b.dense.kind
    assert np.array_equal(a.dense.vectors, b.dense.vectors)
    assert list(a.bm25.vocabulary) == list(b.bm25.vocabulary)
    assert (a.bm25._weights != b.bm25._weights).nnz == 0
    assert np.array_equal(a.facts.unit_kinds, b.facts.unit_kinds)
    assert a.facts.to_dict() == b.facts.to_dict()


def _results(index: Index, enc) -> list:
    s = Searcher(index, encoder=enc)
    return [[h.to_dict() for h in s.search(q, k=5, mode=m)] for q in QUERIES for m in MODES]


@pytest.mark.parametrize("faiss", ["flat", "hnsw"])
def test_save_load_round_trip(tmp_path, fake_encoder, faiss):
    docs = load_corpus(write_corpus(tmp_path / "corpus", SMALL_CORPUS))
    index = build(docs, fake_encoder, faiss=faiss)
    folder = write_index(index, tmp_path / "index")
    assert (folder / "dense.faiss").exists() == (faiss == "hnsw")
    loaded = open_index(tmp_path / "index")
    assert loaded.path == folder
    _assert_same_index(index, loaded)
    assert _results(loaded, fake_encoder) == _results(index, fake_encoder)
    # nothing is pickled: every array loads with allow_pickle=False
    for f in folder.glob("*.npy"):
        np.load(f, allow_pickle=False)


def test_round_trip_on_the_real_corpus(corpus_fake_index):
    index_dir, enc = corpus_fake_index
    loaded = open_index(index_dir)
    rebuilt = build(load_corpus(CORPUS), FakeEncoder())
    when = ("created", "stamps")  # the build's time and the files' sizes and times, not their content
    manifest = {k: v for k, v in loaded.manifest.items() if k not in when}
    assert manifest == {k: v for k, v in rebuilt.manifest.items() if k not in when}
    assert loaded.chunks == rebuilt.chunks
    assert np.array_equal(loaded.dense.vectors, rebuilt.dense.vectors)
    assert loaded.manifest["chunks"] == len(loaded.chunks) == len(loaded.dense)
    assert _results(loaded, enc) == _results(rebuilt, enc)


def test_index_layout_and_manifest(small_index):
    corpus, index_dir, enc = small_index
    folder = current_folder(index_dir)
    assert folder.parent == index_dir / "builds"
    assert (index_dir / "CURRENT").read_text().strip() == folder.name
    m = json.loads((folder / "manifest.json").read_text())
    assert m["encoder"] == {"id": enc.id, "dim": enc.dim}
    assert sorted(m["documents"]) == sorted(SMALL_CORPUS)
    import hashlib

    for name, info in m["documents"].items():
        assert info["sha256"] == hashlib.sha256((corpus / name).read_bytes()).hexdigest()
    idx = open_index(index_dir)
    # every chunk vector is the encoder's vector of the chunk text
    for i, c in enumerate(idx.chunks):
        assert np.allclose(idx.dense.vectors[i], enc._vector(c.text), atol=1e-6)
    assert idx.unit_offsets[0] == 0 and idx.unit_offsets[-1] == len(idx.units)


def test_passage_similarity_is_the_documented_mix(small_index):
    """Half the whole-chunk cosine, half the best of its heading's and its units' cosines."""
    from rag.text import plain, unit_spans

    _, index_dir, enc = small_index
    idx = open_index(index_dir)
    for q in ("LoRAとQLoRAの違いは？", "weighted sum fusion"):
        qv = enc._vector(q)
        sims = idx.passage_similarity(np.arange(len(idx.chunks)), qv)
        for i, c in enumerate(idx.chunks):
            whole = float(enc._vector(c.text) @ qv)
            parts = [float(enc._vector(c.heading) @ qv) if c.heading else 0.0]
            parts += [float(enc._vector(plain(c.text[a:b]) or c.text[a:b]) @ qv) for a, b in unit_spans(c.text)]
            assert sims[i] == pytest.approx(0.5 * whole + 0.5 * max(parts), abs=1e-5)


def test_write_index_swaps_current_and_prunes_old_builds(small_index):
    _, index_dir, enc = small_index
    first = current_folder(index_dir)
    index = open_index(index_dir)
    second = write_index(index, index_dir)
    assert second != first and current_folder(index_dir) == second
    assert not first.exists()  # keep=1: only the live build stays
    third = write_index(index, index_dir, keep=2)
    assert sorted(p.name for p in (index_dir / "builds").iterdir()) == sorted([second.name, third.name])
    assert not list(index_dir.glob("*.tmp"))


def test_failed_save_leaves_the_old_index_serving(small_index, monkeypatch):
    corpus, index_dir, enc = small_index
    old_folder = current_folder(index_dir)
    old = open_index(index_dir)
    (corpus / "en-guide.md").write_text("# Changed\n\nA completely different guide about vector databases.\n")

    def boom(self, folder):
        (folder / "bm25.json").write_text("{half written")
        raise OSError("disk full")

    monkeypatch.setattr(BM25Index, "save", boom)
    with pytest.raises(OSError, match="disk full"):
        ingest(corpus, index_dir, encoder=enc)
    monkeypatch.undo()

    assert current_folder(index_dir) == old_folder
    assert [p.name for p in (index_dir / "builds").iterdir()] == [old_folder.name]  # the partial build is gone
    still = open_index(index_dir)
    _assert_same_index(old, still)
    assert stale_documents(still.manifest, corpus) == ["en-guide.md"]

    # and the next successful ingest switches over
    report = ingest(corpus, index_dir, encoder=enc)
    assert report.written and report.embedded_documents == ["en-guide.md"]
    assert current_folder(index_dir) != old_folder
    assert stale_documents(open_index(index_dir).manifest, corpus) == []


def test_staleness(small_index):
    corpus, index_dir, enc = small_index
    index = open_index(index_dir)
    assert stale_documents(index.manifest, corpus) == []
    (corpus / "zh-notes.txt").write_text((corpus / "zh-notes.txt").read_text() + "\n新增一段。\n")
    assert stale_documents(index.manifest, corpus) == ["zh-notes.txt"]
    (corpus / "new.md").write_text("# New\n\nfresh text here\n")
    assert stale_documents(index.manifest, corpus) == ["new.md", "zh-notes.txt"]
    (corpus / "en-guide.md").unlink()
    assert stale_documents(index.manifest, corpus) == ["en-guide.md", "new.md", "zh-notes.txt"]


def test_files_ingest_skips_are_not_stale(small_index):
    corpus, index_dir, enc = small_index
    (corpus / "scan.md").write_bytes(b"\x00\x01binary")
    (corpus / "old.txt").write_bytes("Café notes: crème brûlée, naïve résumé.".encode("latin-1"))  # no encoding reads it
    with pytest.warns(UserWarning):
        report = ingest(corpus, index_dir, encoder=enc)
    assert not report.written  # nothing readable changed
    assert stale_documents(open_index(index_dir).manifest, corpus) == []


def test_incremental_ingest_embeds_only_changed_documents(small_index):
    corpus, index_dir, enc = small_index
    before = open_index(index_dir)
    enc.reset()

    report = ingest(corpus, index_dir, encoder=enc)  # nothing changed
    assert not report.written and enc.calls == []
    assert sorted(report.reused_documents) == sorted(SMALL_CORPUS)

    changed = corpus / "ja-qa.md"
    new_text = changed.read_text().replace("温度はサンプリング", "温度パラメータはサンプリング")
    changed.write_text(new_text)
    report = ingest(corpus, index_dir, encoder=enc)
    assert report.written
    assert report.embedded_documents == ["ja-qa.md"]
    assert sorted(report.reused_documents) == ["en-guide.md", "zh-notes.txt"]
    assert enc.calls, "the changed document must be embedded"
    # every text sent to the encoder comes from the changed document
    assert all(t in new_text for t in enc.texts), [t for t in enc.texts if t not in new_text]

    after = open_index(index_dir)
    for doc in ("en-guide.md", "zh-notes.txt"):
        rows_b = [i for i, c in enumerate(before.chunks) if c.doc_id == doc]
        rows_a = [i for i, c in enumerate(after.chunks) if c.doc_id == doc]
        assert [before.chunks[i] for i in rows_b] == [after.chunks[i] for i in rows_a]
        assert np.array_equal(before.dense.vectors[rows_b], after.dense.vectors[rows_a])
        assert np.array_equal(before.heads[rows_b], after.heads[rows_a])
        assert all(np.array_equal(before.chunk_units(i), after.chunk_units(j)) for i, j in zip(rows_b, rows_a))
    # the result equals a from-scratch build
    fresh = build(load_corpus(corpus), FakeEncoder())
    assert after.chunks == fresh.chunks
    assert np.allclose(after.dense.vectors, fresh.dense.vectors)
    assert np.allclose(after.units, fresh.units) and np.array_equal(after.unit_offsets, fresh.unit_offsets)


def test_ingest_reports_progress_per_stage(small_corpus, tmp_path, fake_encoder):
    calls = []
    ingest(small_corpus, tmp_path / "index", encoder=fake_encoder, on_progress=lambda *a: calls.append(a))
    stages = [s for s, _, _ in calls]
    assert list(dict.fromkeys(stages)) == ["chunks", "headings", "sentences", "analyze"]
    for stage in ("chunks", "headings", "sentences", "analyze"):
        seen = [(n, t) for s, n, t in calls if s == stage]
        assert [n for n, _ in seen] == sorted(n for n, _ in seen), stage  # never moves backwards
        last_n, total = seen[-1]
        assert total > 0 and last_n == total, stage  # every stage ends complete
    n_chunks = len(open_index(tmp_path / "index").chunks)
    assert [t for s, _, t in calls if s == "analyze"][-1] == n_chunks


def test_incremental_ingest_add_and_remove(small_index):
    corpus, index_dir, enc = small_index
    enc.reset()
    (corpus / "zh-notes.txt").unlink()
    report = ingest(corpus, index_dir, encoder=enc)
    assert report.written and report.removed_documents == ["zh-notes.txt"]
    assert report.embedded_documents == [] and enc.calls == []
    assert not any(c.doc_id == "zh-notes.txt" for c in open_index(index_dir).chunks)

    added = "# Added\n\nA new note about sparse retrieval and inverted indexes.\n"
    (corpus / "added.md").write_text(added)
    report = ingest(corpus, index_dir, encoder=enc)
    assert report.embedded_documents == ["added.md"]
    assert enc.texts and all(t in added for t in enc.texts)


def test_rebuild_or_new_encoder_embeds_everything(small_index):
    corpus, index_dir, enc = small_index
    enc.reset()
    report = ingest(corpus, index_dir, encoder=enc, rebuild=True)
    assert report.written and sorted(report.embedded_documents) == sorted(SMALL_CORPUS)
    other = FakeEncoder(dim=32, id="fake-ngram-32")
    report = ingest(corpus, index_dir, encoder=other)
    assert sorted(report.embedded_documents) == sorted(SMALL_CORPUS) and report.reused_documents == []
    assert open_index(index_dir).dense.dim == 32


# --- broken indexes ----------------------------------------------------------------------


def _truncate(path, n):
    data = path.read_bytes()
    path.write_bytes(data[:n] if n >= 0 else data[: len(data) // 2])


@pytest.mark.parametrize("keep_bytes", [-1, 0, 60])
def test_truncated_vectors_are_index_corrupt(small_index, keep_bytes):
    _, index_dir, _ = small_index
    folder = current_folder(index_dir)
    _truncate(folder / "vectors.npy", keep_bytes)
    with pytest.raises(IndexCorruptError) as e:
        open_index(index_dir)
    msg = str(e.value)
    assert str(folder) in msg and "rebuild" in msg and "python -m ingest" in msg


@pytest.mark.parametrize("garbage", [b"\x89PNG\r\n\x1a\n\xff\xfe", b"{not json", b"[]", b"null", b"{}", b'{"format_version": 99}'])
def test_garbage_manifest_is_index_corrupt(small_index, garbage):
    _, index_dir, _ = small_index
    (current_folder(index_dir) / "manifest.json").write_bytes(garbage)
    with pytest.raises(IndexCorruptError, match="rebuild"):
        open_index(index_dir)


def test_parts_that_disagree_are_index_corrupt(small_index):
    _, index_dir, _ = small_index
    folder = current_folder(index_dir)
    lines = (folder / "chunks.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    (folder / "chunks.jsonl").write_text("".join(lines[:-1]), encoding="utf-8")
    with pytest.raises(IndexCorruptError, match="disagree"):
        open_index(index_dir)


def test_missing_file_is_index_corrupt(small_index):
    _, index_dir, _ = small_index
    (current_folder(index_dir) / "bm25_tokens.jsonl").unlink()
    with pytest.raises(IndexCorruptError, match="unreadable"):
        open_index(index_dir)


def test_current_pointing_to_a_missing_build(small_index):
    _, index_dir, _ = small_index
    shutil.rmtree(current_folder(index_dir))
    with pytest.raises(IndexCorruptError, match="missing build"):
        open_index(index_dir)


def test_corrupt_index_is_rebuilt_by_ingest(small_index):
    corpus, index_dir, enc = small_index
    _truncate(current_folder(index_dir) / "vectors.npy", 0)
    report = ingest(corpus, index_dir, encoder=enc)
    assert report.written and sorted(report.embedded_documents) == sorted(SMALL_CORPUS)
    open_index(index_dir)


def test_missing_index(tmp_path):
    with pytest.raises(IndexMissingError, match="python -m ingest"):
        open_index(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(IndexMissingError):
        open_index(tmp_path / "empty")
    with pytest.raises(IndexMissingError):
        Searcher.open(tmp_path / "empty")


def test_encoder_mismatch(small_index):
    _, index_dir, enc = small_index
    index = open_index(index_dir)
    with pytest.raises(EncoderMismatchError) as e:
        Searcher(index, encoder=FakeEncoder(id="another-encoder"))
    assert "fake-ngram-64" in str(e.value) and "another-encoder" in str(e.value)


def test_unknown_encoder_name_fails_before_loading_anything(small_index):
    _, index_dir, _ = small_index
    with pytest.raises(ModelLoadError, match="unknown encoder"):
        Searcher.open(index_dir)  # the fake's id names no loadable encoder
    with pytest.raises(ModelLoadError, match="unknown encoder 'nosuch'"):
        Searcher.open(index_dir, encoder="nosuch")


def test_dense_index_rejects_bad_input():
    with pytest.raises(ValueError):
        DenseIndex(np.zeros((0, 4), np.float32))
    with pytest.raises(ValueError):
        DenseIndex(np.ones((2, 4), np.float32), kind="ivf")
    v = np.eye(4, dtype=np.float32)
    idx, scores = DenseIndex(v, kind="flat").top(v[2], 10)
    assert idx[0] == 2 and scores[0] == pytest.approx(1.0) and len(idx) == 4


def test_build_of_empty_documents_fails_clearly(tmp_path, fake_encoder):
    from rag.errors import RagError

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        docs = load_corpus(write_corpus(tmp_path, {"blank.md": "\n\n", "tiny.md": "# x\n"}))
    with pytest.raises(RagError, match="no text"):
        build(docs, fake_encoder)


# --- derived facts and BM25's matrix are saved with the index, loading reads them ---------------


def test_load_reads_bm25_and_facts_instead_of_rebuilding(small_index, monkeypatch):
    _, index_dir, enc = small_index
    folder = current_folder(index_dir)
    for name in ("bm25_matrix.npz", "bm25_vocab.json", "bm25_idf.npy", "facts.json", "unit_kinds.npy"):
        assert (folder / name).exists(), name
    import rag.bm25
    import rag.index

    def fail(*a, **k):
        raise AssertionError("load recomputed what the build saved")

    monkeypatch.setattr(rag.bm25.BM25Index, "_term_matrix", staticmethod(fail))
    monkeypatch.setattr(rag.index, "derive_facts", fail)
    loaded = open_index(index_dir)
    # the saved matrix scores exactly as rank_bm25 does (its statistics built only for this check)
    for q in QUERIES:
        toks = loaded.bm25.analyze(q)
        assert np.allclose(loaded.bm25.scores(toks), loaded.bm25.reference_scores(toks), atol=1e-5)
    assert loaded.vocabulary_of("ja") and loaded.vocabulary_of("xx") == frozenset()


def test_facts_match_a_fresh_derivation(corpus_fake_index):
    from rag.facts import derive_facts
    from rag.units import UNIT_KINDS

    index_dir, _ = corpus_fake_index
    idx = open_index(index_dir)
    fresh = derive_facts(idx.documents, idx.chunks, idx.bm25.tokens, idx.unit_spans, idx.unit_offsets)
    assert fresh.to_dict() == idx.facts.to_dict() and np.array_equal(fresh.unit_kinds, idx.facts.unit_kinds)
    kinds = {UNIT_KINDS[k] for k in idx.facts.unit_kinds}
    assert {"text", "bullet", "heading", "question"} <= kinds
    lists = idx.facts.question_lists
    assert lists and {idx.chunks[idx.by_id[c]].doc_id for c in lists} == {"senior-ai-engineer-questions-ja.md"}
    assert "lora" in idx.facts.squashed_notes and "lora" in idx.facts.answer_text


# --- facts derived by older rules: derived again on opening, saved when the folder takes them ----


def _age_facts(folder):
    """Make a build's saved facts look derived by the rules before this version's (other unit
    kinds too); return the unit kinds this version derives."""
    import rag.facts

    d = json.loads((folder / "facts.json").read_text(encoding="utf-8"))
    (folder / "facts.json").write_text(json.dumps({**d, "rules": rag.facts.RULES_VERSION - 1}), encoding="utf-8")
    kinds = np.load(folder / "unit_kinds.npy")
    assert kinds.any()
    np.save(folder / "unit_kinds.npy", np.zeros_like(kinds))
    return kinds


def _stale_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "rag.index" and "facts.json" in r.getMessage()]


def _files(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_older_facts_are_derived_again_once_and_saved_in_the_build_opened(small_index, monkeypatch, caplog):
    import rag.facts
    import rag.index

    _, index_dir, _ = small_index
    folder = current_folder(index_dir)
    kinds = _age_facts(folder)
    names = sorted(p.name for p in folder.iterdir())
    with caplog.at_level("WARNING", logger="rag.index"):
        first = open_index(index_dir)
    [warning] = _stale_warnings(caplog)
    assert f"rules version {rag.facts.RULES_VERSION - 1}" in warning and "saving them in the index" in warning
    assert np.array_equal(first.facts.unit_kinds, kinds)
    # written into the build that was opened: no new build, no file left beside them
    assert current_folder(index_dir) == folder and [p.name for p in (index_dir / "builds").iterdir()] == [folder.name]
    assert sorted(p.name for p in folder.iterdir()) == names
    assert json.loads((folder / "facts.json").read_text(encoding="utf-8"))["rules"] == rag.facts.RULES_VERSION
    assert np.array_equal(np.load(folder / "unit_kinds.npy"), kinds)

    def fail(*a, **k):
        raise AssertionError("the facts were derived again on the second open")

    monkeypatch.setattr(rag.index, "derive_facts", fail)
    caplog.clear()
    with caplog.at_level("WARNING", logger="rag.index"):
        second = open_index(index_dir)
    assert not _stale_warnings(caplog)
    assert second.facts.to_dict() == first.facts.to_dict() and np.array_equal(second.facts.unit_kinds, kinds)


def _permissions_apply(tmp: Path) -> bool:
    """Whether a read-only folder refuses a new file here (root's normally does not)."""
    probe = tmp / "read-only-probe"
    probe.mkdir()
    probe.chmod(0o555)
    try:
        (probe / "x").touch()
    except PermissionError:
        return True
    finally:
        probe.chmod(0o755)
    return False


def test_a_read_only_index_with_older_facts_opens_and_derives_them_every_time(small_index, tmp_path, caplog):
    if os.geteuid() == 0 and not _permissions_apply(tmp_path):
        pytest.skip("root writes into read-only folders")
    _, index_dir, _ = small_index
    folder = current_folder(index_dir)
    kinds = _age_facts(folder)
    before = _files(folder)
    folder.chmod(0o555)
    index_dir.chmod(0o555)
    try:
        _opens_twice_deriving_in_memory(index_dir, kinds, caplog)
    finally:
        index_dir.chmod(0o755)
        folder.chmod(0o755)
    assert _files(folder) == before


def test_a_folder_said_read_only_is_not_written(small_index, monkeypatch, caplog):
    """What a read-only folder does, where permissions cannot make one (as root)."""
    _, index_dir, _ = small_index
    folder = current_folder(index_dir)
    kinds = _age_facts(folder)
    before = _files(folder)
    access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **k: False if Path(p) == folder else access(p, mode, **k))
    _opens_twice_deriving_in_memory(index_dir, kinds, caplog)
    assert _files(folder) == before


def _opens_twice_deriving_in_memory(index_dir, kinds, caplog) -> None:
    """Each open of a read-only folder with stale facts warns once and derives them again."""
    for _ in range(2):
        caplog.clear()
        with caplog.at_level("WARNING", logger="rag.index"):
            idx = open_index(index_dir)
        [warning] = _stale_warnings(caplog)
        assert "read-only" in warning and "python -m ingest --rebuild" in warning
        assert np.array_equal(idx.facts.unit_kinds, kinds)


def test_facts_that_cannot_be_saved_still_open_the_index(small_index, monkeypatch, caplog):
    import rag.facts

    _, index_dir, _ = small_index
    folder = current_folder(index_dir)
    kinds = _age_facts(folder)
    before = _files(folder)

    def full(path, content, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(rag.facts, "atomic_write", full)
    with caplog.at_level("WARNING", logger="rag.index"):
        idx = open_index(index_dir)
    assert np.array_equal(idx.facts.unit_kinds, kinds)
    assert "could not be saved (" in caplog.text and "No space left" in caplog.text
    assert _files(folder) == before


def test_a_format_2_index_says_rebuild(small_index):
    _, index_dir, _ = small_index
    path = current_folder(index_dir) / "manifest.json"
    m = json.loads(path.read_text())
    path.write_text(json.dumps({**m, "format_version": 2}))
    with pytest.raises(IndexCorruptError, match=r"format 2.*rebuild it with `python -m ingest --rebuild`"):
        open_index(index_dir)


@pytest.mark.parametrize("name, content", [
    ("facts.json", b'{"question_lists": ["no such chunk"]}'),
    ("facts.json", b"[]"),
    ("bm25_vocab.json", b'["a", "a"]'),
    ("unit_kinds.npy", None),
    ("bm25_matrix.npz", None),
])
def test_damaged_saved_facts_are_index_corrupt(small_index, name, content):
    _, index_dir, _ = small_index
    path = current_folder(index_dir) / name
    if content is None:
        _truncate(path, 10)
    else:
        path.write_bytes(content)
    with pytest.raises(IndexCorruptError, match="rebuild"):
        open_index(index_dir)


def test_the_scale_benchmarks_synthetic_index_carries_its_facts(small_index):
    """eval.scale copies chunks without their documents: the facts come from the chunks copied."""
    from eval.scale import synthesize

    _, index_dir, enc = small_index
    base = open_index(index_dir)
    big, _ = synthesize([base], 60)
    assert len(big.facts.unit_kinds) == len(big.units)
    assert big.vocabulary_of("ja") and big.facts.question_lists == frozenset()
    for mode in ("bm25", "hybrid"):
        assert Searcher(big, encoder=enc).search("LoRAとQLoRAの違いは？", k=5, mode=mode)


# --- the units' HNSW graph is saved with the index, loading reads it -----------------------------


@pytest.fixture
def hnsw_index(tmp_path, fake_encoder):
    docs = load_corpus(write_corpus(tmp_path / "corpus", SMALL_CORPUS))
    index = build(docs, fake_encoder, faiss="hnsw")
    folder = write_index(index, tmp_path / "index")
    return index, tmp_path / "index", folder, fake_encoder


def _unit_tops(index: Index, enc) -> list:
    out = []
    for q in QUERIES:
        idx, scores = index.unit_dense.top(enc.encode([q], query=True)[0], 10)
        out.append((idx.tolist(), np.round(scores, 6).tolist()))
    return out


def _count_graph_builds(monkeypatch) -> list:
    built = []
    real = DenseIndex._build

    def counting(self):
        built.append(len(self))
        return real(self)

    monkeypatch.setattr(DenseIndex, "_build", counting)
    return built


def test_the_units_graph_is_saved_and_loaded_not_rebuilt(hnsw_index, monkeypatch):
    index, index_dir, folder, enc = hnsw_index
    record = json.loads((folder / "manifest.json").read_text())["unit_graph"]
    assert record == {"file": "units.faiss", "vectors": len(index.units), "dim": index.units.shape[1], "hnsw_m": 32}
    assert (folder / "units.faiss").exists()
    built = _count_graph_builds(monkeypatch)
    loaded = open_index(index_dir)
    assert "unit_graph" not in loaded.manifest and loaded.manifest == index.manifest
    assert _unit_tops(loaded, enc) == _unit_tops(index, enc)
    assert _results(loaded, enc) == _results(index, enc)
    assert built == []  # neither the chunks' nor the units' graph was built again


def test_a_flat_index_saves_no_units_graph(small_index):
    folder = current_folder(small_index[1])
    assert not (folder / "units.faiss").exists()
    assert "unit_graph" not in json.loads((folder / "manifest.json").read_text())


def _other_graph(folder, n: int, dim: int) -> None:
    """A well-formed graph over other vectors of the same count and dimension."""
    other = np.random.default_rng(1).normal(size=(n, dim)).astype(np.float32)
    DenseIndex(other / np.linalg.norm(other, axis=1, keepdims=True), kind="hnsw").save_graph(folder / "units.faiss")


@pytest.mark.parametrize("damage", ["truncated", "garbage", "missing", "stale", "record"])
def test_a_bad_units_graph_is_rebuilt_with_a_warning(hnsw_index, monkeypatch, caplog, damage):
    index, index_dir, folder, enc = hnsw_index
    path = folder / "units.faiss"
    if damage == "truncated":
        _truncate(path, path.stat().st_size // 2)
    elif damage == "garbage":
        path.write_bytes(b"\x00" * 64)
    elif damage == "missing":
        path.unlink()
    elif damage == "stale":
        _other_graph(folder, *index.units.shape)
    else:  # the manifest's record does not describe this index's units
        m = json.loads((folder / "manifest.json").read_text())
        m["unit_graph"]["vectors"] += 1
        (folder / "manifest.json").write_text(json.dumps(m))
    built = _count_graph_builds(monkeypatch)
    loaded = open_index(index_dir)  # opening does not fail
    with caplog.at_level("WARNING", logger="rag.index"):
        tops = _unit_tops(loaded, enc)
    assert built == [len(index.units)]  # the units' graph, built once, here
    assert "not using the saved units' graph" in caplog.text and "building it now" in caplog.text
    exact = DenseIndex(index.units, kind="flat")
    for q, (_, scores) in zip(QUERIES, tops):  # the rebuilt graph finds the exact top-10 (scores: ties may swap)
        assert scores == np.round(exact.top(enc.encode([q], query=True)[0], 10)[1], 6).tolist()
