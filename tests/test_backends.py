"""One contract for every index backend: the embedded folder, Milvus Lite and Qdrant local.

Each test runs once per backend (the ``setting`` fixture). The engines are pip packages
(``pymilvus[milvus-lite]``, ``qdrant-client``, in the ``dev`` extra); a backend whose package
is missing is skipped with that reason.
"""

from __future__ import annotations

import importlib.util
import json
import warnings

import numpy as np
import pytest
from conftest import CORPUS, SMALL_CORPUS, FakeEncoder, fake_tuned, write_corpus

from rag.backends import Row, backend, live_key, locate, new_backend, open_index, write_index
from rag.errors import EncoderMismatchError, IndexMissingError, IndexWriteError
from rag.search import Searcher

BACKENDS = {"folder": (), "milvus-lite": ("pymilvus", "milvus_lite"), "qdrant-local": ("qdrant_client",)}
QUERIES = ["LoRAとQLoRAの違いは？", "什么是温度参数?", "What is RLHF?", "RAGの仕組み", "注意力机制",
           "ハルシネーションを減らす方法", "how does beam search work", "微调和提示工程的区别"]


def _setting(kind: str, tmp) -> str:
    missing = [m for m in BACKENDS[kind] if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"{kind}: {', '.join(missing)} is not installed (pip install -e '.[dev]')")
    return {"folder": str(tmp / "index"), "milvus-lite": str(tmp / "index.db"),
            "qdrant-local": f"qdrant+local://{tmp / 'qdrant'}"}[kind]


@pytest.fixture(params=list(BACKENDS))
def setting(request, tmp_path):
    return _setting(request.param, tmp_path)


def test_locate_reads_every_form_and_refuses_bad_ones(tmp_path):
    assert locate("index").kind == "folder"
    assert locate(tmp_path / "x.db").kind == "folder"  # a Path is always a folder
    assert locate("classes.db").kind == "milvus-lite"
    m = locate("milvus://db.example:19531?token=user:secret")
    assert (m.kind, m.target, m.secret) == ("milvus", "http://db.example:19531", "user:secret")
    assert "secret" not in repr(m)
    assert locate("qdrant://q.example?api_key=k").target == "http://q.example:6333"
    assert locate("qdrant+local:///srv/q").target == "/srv/q"
    for bad in ("qdrant+local://relative/path", "milvus://", "redis://x:1", "milvus://h:99999", "  "):
        with pytest.raises(ValueError):
            locate(bad)


# --- the protocol, at ~1k rows ------------------------------------------------------------------


def _rows(n: int, dim: int, rng) -> list[Row]:
    vecs = rng.normal(size=(n, dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    out = []
    for i in range(n):
        terms = rng.choice(200, size=int(rng.integers(1, 8)), replace=False)
        out.append(Row(i, f"doc{i % 50}", vecs[i], {int(t): float(rng.uniform(0.1, 3.0)) for t in terms}, {"n": i}))
    return out


def _exact_dense(rows, q, k):
    s = np.array([r.dense @ q for r in rows])
    order = np.argsort(-s, kind="stable")[:k]
    return [rows[i].key for i in order], s[order]


def _exact_sparse(rows, w, k):
    s = np.array([sum(v * r.sparse.get(t, 0.0) for t, v in w.items()) for r in rows])
    order = [i for i in np.argsort(-s, kind="stable") if s[i] > 0][:k]
    return [rows[i].key for i in order], s[order]


def test_protocol_upsert_top_k_count_delete_describe(setting):
    rng = np.random.default_rng(7)
    dim = 32
    be = new_backend(setting, dim=dim, manifest={"encoder": {"id": "fake", "dim": dim}})
    rows = _rows(1000, dim, rng)
    be.upsert(rows)
    units = [Row(i, f"doc{i % 50}", r.dense[::-1].copy(), None, {"owner": i}) for i, r in enumerate(rows[:300])]
    be.upsert(units, space="units")
    assert be.count() == 1000 and be.count(space="units") == 300
    assert be.describe()["encoder"] == {"id": "fake", "dim": dim}
    for _ in range(5):
        q = rng.normal(size=dim).astype(np.float32)
        q /= np.linalg.norm(q)
        keys, scores = be.dense_top(q, 10)
        want, want_s = _exact_dense(rows, q, 10)
        assert keys.tolist() == want
        np.testing.assert_allclose(scores, want_s, rtol=1e-4, atol=1e-5)
        ukeys, _ = be.dense_top(q, 5, space="units")
        assert ukeys.tolist() == _exact_dense(units, q, 5)[0]
        w = {int(t): 1.0 for t in rng.choice(200, size=3, replace=False)}
        keys, scores = be.sparse_top(w, 10)
        want, want_s = _exact_sparse(rows, w, 10)
        assert sorted(keys.tolist()) == sorted(want)  # equal scores may come in either order
        np.testing.assert_allclose(np.sort(scores), np.sort(want_s), rtol=1e-5)
    # replace by key, then delete one document from both spaces
    be.upsert([Row(3, "doc3", -rows[3].dense, rows[3].sparse, {"n": -3})])
    assert be.count() == 1000
    assert be.dense_top(-rows[3].dense, 1)[0].tolist() == [3]
    assert be.delete_document("doc3") == 20
    assert be.count() == 980 and be.count(space="units") == 294
    keys, _ = be.dense_top(rows[53].dense, 1000)
    assert 53 not in keys.tolist() and 3 not in keys.tolist() and len(keys) == 980
    assert be.sparse_top({}, 5)[0].tolist() == []
    with pytest.raises(ValueError):
        be.dense_top(rows[0].dense, 0)
    with pytest.raises(ValueError):
        be.count(space="nope")


# --- whole indexes through the searcher ----------------------------------------------------------


@pytest.fixture(scope="module")
def folder_corpus_index(tmp_path_factory):
    from ingest.pipeline import ingest

    root = tmp_path_factory.mktemp("backends-folder")
    enc = FakeEncoder()
    ingest(CORPUS, root / "index", encoder=enc)
    return root / "index", enc


def test_same_top_10_as_the_folder_on_the_corpus(setting, folder_corpus_index):
    """~1.1k items (159 chunks, 924 units of the real corpus): every mode's top 10 and scores."""
    from rag.index import open_index as open_folder

    folder, enc = folder_corpus_index

    base_index = open_folder(folder)
    write_index(base_index, setting)
    index = open_index(setting)
    assert [c.id for c in index.chunks] == [c.id for c in base_index.chunks]
    assert index.documents == base_index.documents
    np.testing.assert_array_equal(index.units[:], base_index.units)  # read back row by row
    a = Searcher(base_index, encoder=enc, tuned=fake_tuned())
    b = Searcher(index, encoder=enc, tuned=fake_tuned())
    for q in QUERIES:
        for mode in ("bm25", "dense", "hybrid", "rerank"):
            ha, hb = a.search(q, k=10, mode=mode), b.search(q, k=10, mode=mode)
            assert [h.chunk.id for h in hb] == [h.chunk.id for h in ha], (q, mode)
            np.testing.assert_allclose([h.score for h in hb], [h.score for h in ha], rtol=1e-5, atol=1e-6)
        doc = base_index.chunks[0].doc_id
        assert [h.chunk.id for h in b.search(q, k=5, mode="hybrid", doc_ids=[doc])] == [
            h.chunk.id for h in a.search(q, k=5, mode="hybrid", doc_ids=[doc])]
    # the answers that name a document or ask which questions interviews ask read titles and
    # sections the engine keeps apart from the chunks: the same answers
    from rag.answer import ask

    for q in ("Zenn問答の記事の結論は？", "What is the Zenn article about?", "面接でどんなシステム設計の質問が出る？"):
        assert ask(b, q).text == ask(a, q).text, q
    proto = backend(setting)
    assert proto.count() == len(base_index.chunks) and proto.count(space="units") == len(base_index.units)
    assert proto.describe()["encoder"] == base_index.manifest["encoder"]


def _vector_arrays(obj, n: int, dim: int, seen=None) -> list[str]:
    """Attributes of ``obj`` (recursively) holding an in-memory array of ``n`` or more ``dim``-d vectors."""
    seen = seen if seen is not None else set()
    if id(obj) in seen:
        return []
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        return [f"{obj.shape}"] if obj.ndim == 2 and obj.shape[1] == dim and obj.shape[0] >= n else []
    out = []
    for name, value in (vars(obj).items() if hasattr(obj, "__dict__") else ()):
        if isinstance(value, (np.ndarray,)) or (hasattr(value, "__dict__") and type(value).__module__.startswith("rag.")):
            out += [f"{name}.{x}" for x in _vector_arrays(value, n, dim, seen)]
    return out


def _reachable(obj) -> list:
    """Every object ``obj`` holds through this program's objects and plain containers (not
    through an engine client's, which may run the engine itself in this process)."""
    stack, seen, out = [obj], set(), []
    while stack:
        o = stack.pop()
        if id(o) in seen:
            continue
        seen.add(id(o))
        out.append(o)
        if isinstance(o, dict):
            stack += [*o.keys(), *o.values()]
        elif isinstance(o, (list, tuple, set, frozenset)):
            stack += list(o)
        elif type(o).__module__.startswith("rag.") and hasattr(o, "__dict__"):
            stack += list(vars(o).values())
    return out


def _per_chunk_data(obj, base) -> dict[str, int]:
    """How many of ``base``'s chunk texts, token lists and document texts ``obj`` holds, and
    whether it holds a sparse (BM25) matrix."""
    texts = {c.text for c in base.chunks}
    tokens = {tuple(t) for t in base.bm25.tokens if t}
    docs = {d.text for d in base.documents.values()}
    reach = _reachable(obj)
    held = {o for o in reach if isinstance(o, str) and o in texts}
    return {"texts": len(held), "tokens": len({tuple(o) for o in reach if isinstance(o, (list, tuple)) and o
                                               and all(isinstance(x, str) for x in o) and tuple(o) in tokens}),
            "documents": sum(1 for o in reach if isinstance(o, str) and o in docs),
            "matrices": sum(1 for o in reach if type(o).__module__.startswith("scipy.sparse"))}


@pytest.mark.parametrize("kind", ["milvus-lite", "qdrant-local"])
def test_an_engine_index_holds_no_chunk_texts_or_tokens(kind, folder_corpus_index, tmp_path, monkeypatch):
    """An opened engine index holds the global statistics only: no chunk text, token list,
    document text or BM25 matrix until a search reads its candidates' rows, and then no more
    than those rows; the results are the folder's. (The folder index holds all of them.)"""
    from rag.index import open_index as open_folder

    folder, enc = folder_corpus_index
    base = open_folder(folder)
    n = len(base.chunks)
    assert _per_chunk_data(base, base) == {"texts": n, "tokens": len({tuple(t) for t in base.bm25.tokens if t}),
                                           "documents": len(base.documents), "matrices": 1}
    setting = _setting(kind, tmp_path)
    write_index(base, setting)
    index = open_index(setting)
    assert _per_chunk_data(index, base) == {"texts": 0, "tokens": 0, "documents": 0, "matrices": 0}
    rules = dict(centre_languages=True, language_fusion=True, names_first=True)  # the rules that read every passage
    for tuned, sample in ((fake_tuned(candidates=8), 2000), (fake_tuned(candidates=8, **rules), 2000),
                          (fake_tuned(candidates=8, **rules), 2)):  # 2: each language searched on the engine
        monkeypatch.setattr("rag.search.CENTRE_SAMPLE", sample)
        s, f = (Searcher(x, encoder=enc, tuned=tuned) for x in (index, base))
        for q in QUERIES[:4]:
            for mode in ("bm25", "hybrid", "rerank"):
                got, want = s.search(q, k=3, mode=mode), f.search(q, k=3, mode=mode)
                assert [(h.chunk, h.scores["bm25"], h.score) for h in got] == [
                    (h.chunk, h.scores["bm25"], h.score) for h in want], (q, mode)
    read = index.chunks.fetcher.fetched
    held = _per_chunk_data(s, base)
    assert 0 < held["texts"] <= read < n and held["tokens"] <= read and held["matrices"] == 0, (held, read, n)
    assert [h.chunk.id for h in s.search(QUERIES[0], k=3, mode="bm25", doc_ids=[base.chunks[0].doc_id])] == [
        h.chunk.id for h in f.search(QUERIES[0], k=3, mode="bm25", doc_ids=[base.chunks[0].doc_id])]


@pytest.mark.parametrize("kind", ["milvus-lite", "qdrant-local"])
def test_an_engine_index_reads_only_the_vectors_a_search_needs(kind, folder_corpus_index, tmp_path):
    """Opening an engine index reads no vector; a search reads its candidates' rows, not all."""
    from rag.backends.remote import RemoteRows
    from rag.index import open_index as open_folder

    folder, enc = folder_corpus_index
    base_index = open_folder(folder)
    setting = _setting(kind, tmp_path)
    write_index(base_index, setting)
    index = open_index(setting)
    n, units, dim = len(base_index.chunks), len(base_index.units), base_index.dense.dim
    assert isinstance(index.dense.vectors, RemoteRows) and isinstance(index.units, RemoteRows)
    fetchers = {id(m.fetcher): m.fetcher for m in (index.dense.vectors, index.heads, index.units)}
    assert sum(f.fetched for f in fetchers.values()) == 0
    s = Searcher(index, encoder=enc, tuned=fake_tuned(candidates=8))
    hits = s.search(QUERIES[0], k=3, mode="rerank")
    assert [h.chunk.id for h in hits] == [
        h.chunk.id for h in Searcher(base_index, encoder=enc, tuned=fake_tuned(candidates=8)).search(QUERIES[0], k=3, mode="rerank")]
    chunk_rows, unit_rows = index.dense.vectors.fetcher.fetched, index.units.fetcher.fetched
    assert 0 < chunk_rows <= 4 * 8 < n and 0 < unit_rows < units / 2, (chunk_rows, unit_rows)
    assert _vector_arrays(index, n, dim) == [] and _vector_arrays(s, n, dim) == []
    with pytest.raises(TypeError, match="whole index"):
        np.asarray(index.units)


def test_incremental_ingest_add_change_delete(setting, tmp_path):
    from ingest.pipeline import ingest

    warnings.simplefilter("ignore")
    corpus = write_corpus(tmp_path / "corpus", SMALL_CORPUS)
    enc = FakeEncoder()
    first = ingest(corpus, setting, encoder=enc)
    assert first.written and sorted(first.embedded_documents) == sorted(SMALL_CORPUS)
    assert not ingest(corpus, setting, encoder=enc).written  # unchanged: nothing written
    names = sorted(SMALL_CORPUS)
    (corpus / names[0]).unlink()
    changed = corpus / names[1]
    changed.write_text(changed.read_text(encoding="utf-8") + "\n\nZebrafish tokenomics paragraph.\n", encoding="utf-8")
    (corpus / "added.md").write_text("# Added\n\nQuokka retrieval notes about quokkas.\n", encoding="utf-8")
    enc.reset()
    report = ingest(corpus, setting, encoder=enc)
    assert sorted(report.embedded_documents) == sorted([names[1], "added.md"])
    assert report.removed_documents == [names[0]]
    index = open_index(setting)
    assert set(index.documents) == set(names[1:]) | {"added.md"}
    s = Searcher(index, encoder=enc, tuned=fake_tuned())
    assert s.search("quokka", k=1, mode="bm25")[0].chunk.doc_id == "added.md"
    assert s.search("zebrafish tokenomics", k=1, mode="bm25")[0].chunk.doc_id == names[1]
    assert all(c.doc_id != names[0] for c in index.chunks)


ENGINES = ["milvus-lite", "qdrant-local"]


def _engine_class(kind: str):
    if kind == "milvus-lite":
        from rag.backends.milvus import MilvusEngine

        return MilvusEngine
    from rag.backends.qdrant import QdrantEngine

    return QdrantEngine


@pytest.mark.parametrize("kind", ENGINES)
def test_an_engine_update_sends_only_changed_documents(kind, tmp_path, monkeypatch):
    """Rows of unchanged documents are not re-sent; removed and replaced ones are deleted."""
    from ingest.pipeline import ingest

    setting = _setting(kind, tmp_path)
    corpus = write_corpus(tmp_path / "corpus", SMALL_CORPUS)
    enc = FakeEncoder()
    ingest(corpus, setting, encoder=enc)
    before = open_index(setting)
    names = sorted(SMALL_CORPUS)
    # (read before the update: an opened engine index reads its rows from the engine, and the
    # update deletes the removed and replaced documents' rows)
    gone = sum(c.doc_id in (names[0], names[1]) for c in before.chunks)
    before_ids = {c.id: i for i, c in enumerate(before.chunks)}
    (corpus / names[0]).unlink()
    changed = corpus / names[1]
    changed.write_text(changed.read_text(encoding="utf-8") + "\n\nZebrafish tokenomics paragraph.\n", encoding="utf-8")
    (corpus / "added.md").write_text("# Added\n\nQuokka retrieval notes about quokkas.\n", encoding="utf-8")
    cls = _engine_class(kind)
    sent, deleted = [], []
    real_insert, real_delete = cls.insert, cls.delete_keys
    monkeypatch.setattr(cls, "insert", lambda self, name, rows: (sent.extend((name, r.doc_id) for r in rows),
                                                                 real_insert(self, name, rows))[1])
    monkeypatch.setattr(cls, "delete_keys", lambda self, name, keys: (deleted.extend((name, k) for k in keys),
                                                                      real_delete(self, name, keys))[1])
    ingest(corpus, setting, encoder=enc)
    after = open_index(setting)
    fresh = {names[1], "added.md"}
    chunk_docs = [d for n, d in sent if n.endswith("_chunks")]
    assert set(chunk_docs) == fresh and len(chunk_docs) == sum(c.doc_id in fresh for c in after.chunks)
    assert len([1 for n, _ in sent if n.endswith("_units")]) == sum(
        after.unit_offsets[i + 1] - after.unit_offsets[i] for i, c in enumerate(after.chunks) if c.doc_id in fresh)
    assert len([1 for n, _ in deleted if n.endswith("_chunks")]) == gone
    proto = backend(setting)
    assert proto.count() == len(after.chunks) and proto.count(space="units") == len(after.units)
    kept = [c for c in after.chunks if c.doc_id not in fresh]
    assert kept and all(c.id in before_ids for c in kept)
    s = Searcher(after, encoder=enc, tuned=fake_tuned())
    assert s.search("quokka", k=1, mode="bm25")[0].chunk.doc_id == "added.md"
    folder = tmp_path / "folder-index"
    ingest(corpus, str(folder), encoder=FakeEncoder())
    from rag.index import open_index as open_folder

    f = Searcher(open_folder(folder), encoder=FakeEncoder(), tuned=fake_tuned())
    for q in QUERIES[:4]:  # the stored BM25 weights of kept rows are older; the scores are still exact
        assert [(h.chunk.id, round(h.score, 6)) for h in s.search(q, k=5, mode="bm25")] == [
            (h.chunk.id, round(h.score, 6)) for h in f.search(q, k=5, mode="bm25")]


@pytest.mark.parametrize("kind", ENGINES)
def test_a_killed_engine_update_leaves_the_previous_version_searchable(kind, tmp_path, monkeypatch):
    """Rows inserted by a write that died before its switch (and before any clean-up) are not
    searchable; the next write clears them."""
    import rag.backends.engine as engine
    from ingest.pipeline import ingest

    setting = _setting(kind, tmp_path)
    corpus = write_corpus(tmp_path / "corpus", SMALL_CORPUS)
    enc = FakeEncoder()
    ingest(corpus, setting, encoder=enc)
    before, key = open_index(setting), live_key(setting)
    (corpus / "added.md").write_text("# Added\n\nQuokka retrieval notes about quokkas.\n", encoding="utf-8")
    cls = _engine_class(kind)
    with monkeypatch.context() as mp:
        mp.setattr(engine, "_set_pointer", lambda *a: (_ for _ in ()).throw(OSError(5, "connection lost")))
        mp.setattr(cls, "delete_keys", lambda *a: (_ for _ in ()).throw(OSError(5, "connection lost")))
        mp.setattr(cls, "drop", lambda *a: (_ for _ in ()).throw(OSError(5, "connection lost")))
        with pytest.raises(IndexWriteError):
            ingest(corpus, setting, encoder=enc)
    assert live_key(setting) == key
    proto = backend(setting)
    assert proto.count() > len(before.chunks)  # the dead write's rows are there
    index = open_index(setting)
    assert [c.id for c in index.chunks] == [c.id for c in before.chunks]
    s = Searcher(index, encoder=enc, tuned=fake_tuned())
    for mode in ("bm25", "dense", "hybrid"):
        hits = s.search("quokka retrieval notes", k=10, mode=mode)
        assert hits and all(h.chunk.doc_id != "added.md" for h in hits)
    assert [h.chunk.id for h in s.search(QUERIES[0], k=5, mode="hybrid")] == [
        h.chunk.id for h in Searcher(before, encoder=enc, tuned=fake_tuned()).search(QUERIES[0], k=5, mode="hybrid")]
    assert ingest(corpus, setting, encoder=enc).written
    after = open_index(setting)
    assert "added.md" in after.documents and backend(setting).count() == len(after.chunks)
    assert len(engine._versions(proto.engine, "studyrag")) == 1


def test_the_encoder_is_recorded_and_checked(setting, tmp_path):
    from ingest.pipeline import ingest

    corpus = write_corpus(tmp_path / "corpus", SMALL_CORPUS)
    ingest(corpus, setting, encoder=FakeEncoder())
    index = open_index(setting)
    assert index.encoder_id == "fake-ngram-64" and index.manifest["encoder"]["dim"] == 64
    with pytest.raises(EncoderMismatchError):
        Searcher(index, encoder=FakeEncoder(dim=64, id="other-model"))


def test_facts_derived_by_older_rules_are_derived_again_or_flagged(setting, tmp_path, monkeypatch, caplog):
    """A rule change that derives other facts (unit kinds) from the same chunks reaches an index
    saved before it: the folder derives them again when opened, an engine index says to rebuild."""
    import rag.backends.engine
    import rag.facts
    import rag.index
    from ingest.pipeline import ingest

    ingest(write_corpus(tmp_path / "corpus", SMALL_CORPUS), setting, encoder=FakeEncoder())
    before = open_index(setting)
    kinds = np.asarray(before.facts.unit_kinds[: len(before.units)]).copy()
    newer = rag.facts.RULES_VERSION + 1
    for mod in (rag.facts, rag.backends.engine):
        monkeypatch.setattr(mod, "RULES_VERSION", newer)
    derived = []
    real = rag.index.derive_facts
    monkeypatch.setattr(rag.index, "derive_facts", lambda *a: derived.append(1) or real(*a))
    with caplog.at_level("WARNING"):
        after = open_index(setting)
    assert f"by {newer}" in caplog.text
    if setting.endswith("index"):  # the folder: derived again, from the parts it holds, and saved
        assert derived and np.array_equal(np.asarray(after.facts.unit_kinds), kinds)
        assert "saving them in the index" in caplog.text
        assert json.loads((after.path / rag.facts.FACTS_FILE).read_text(encoding="utf-8"))["rules"] == newer
    else:  # an engine keeps serving with the kinds it holds
        assert "python -m ingest --rebuild" in caplog.text
        assert not derived and np.array_equal(np.asarray(after.facts.unit_kinds[: len(after.units)]), kinds)


def test_an_interrupted_write_leaves_the_previous_version_serving(setting, tmp_path, monkeypatch):
    from ingest.pipeline import ingest

    corpus = write_corpus(tmp_path / "corpus", SMALL_CORPUS)
    enc = FakeEncoder()
    ingest(corpus, setting, encoder=enc)
    before, key = open_index(setting), live_key(setting)
    (corpus / "added.md").write_text("# Added\n\nQuokka notes.\n", encoding="utf-8")
    loc = locate(setting)
    if loc.is_folder:
        import rag.index

        monkeypatch.setattr(rag.index.Index, "save", lambda self, folder: (_ for _ in ()).throw(OSError(28, "No space left")))
    else:
        import rag.backends.engine as engine

        real = engine._meta_rows
        monkeypatch.setattr(engine, "_meta_rows", lambda *a: (_ for _ in ()).throw(OSError(28, "No space left")))
    with pytest.raises(IndexWriteError):
        ingest(corpus, setting, encoder=enc)
    assert live_key(setting) == key
    after = open_index(setting)
    assert [c.id for c in after.chunks] == [c.id for c in before.chunks]
    monkeypatch.undo()
    assert ingest(corpus, setting, encoder=enc).written
    assert "added.md" in open_index(setting).documents
    if not loc.is_folder:
        assert real is engine._meta_rows
        from rag.backends import PREFIX, _safe_engine
        from rag.backends.engine import _versions

        assert len(_versions(_safe_engine(loc), PREFIX)) == 1  # the failed version's leftovers are gone


def test_no_index_is_one_clear_error(setting):
    with pytest.raises(IndexMissingError, match="python -m ingest"):
        open_index(setting)


@pytest.mark.model
def test_cli_ingest_and_search_take_the_setting(setting, tmp_path):
    from conftest import run_cli

    corpus = write_corpus(tmp_path / "corpus", SMALL_CORPUS)
    proc = run_cli("ingest", "--corpus", str(corpus), "--index", setting, "--encoder", "use-m3", "--quiet")
    assert proc.returncode == 0, proc.stderr
    proc = run_cli("rag", "search", "LoRA", "--index", setting, "--k", "3", "--json")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count('"chunk_id"') == 3


@pytest.mark.model
def test_a_milvus_server_serves_processes_through_the_same_code(milvus_server, tmp_path):
    """Ingest in one process, search in others, incremental update: all through ``milvus://``."""
    from conftest import run_cli

    corpus = write_corpus(tmp_path / "corpus", SMALL_CORPUS)
    proc = run_cli("ingest", "--corpus", str(corpus), "--index", milvus_server, "--encoder", "use-m3", "--quiet")
    assert proc.returncode == 0, proc.stderr
    (corpus / "added.md").write_text("# Quokka\n\nQuokka retrieval notes about quokkas.\n", encoding="utf-8")
    proc = run_cli("ingest", "--corpus", str(corpus), "--index", milvus_server, "--encoder", "use-m3", "--quiet")
    assert proc.returncode == 0 and "embedded 1, reused 3" in proc.stdout, proc.stdout + proc.stderr
    proc = run_cli("rag", "search", "quokka", "--index", milvus_server, "--k", "1", "--mode", "bm25", "--json")
    assert proc.returncode == 0 and '"doc_id": "added.md"' in proc.stdout, proc.stdout + proc.stderr
    index = open_index(milvus_server)
    assert "added.md" in index.documents and index.encoder_id.startswith("use-m3")
    proc = run_cli("rag", "search", "x", "--index", "milvus://127.0.0.1:1")
    assert proc.returncode == 2 and proc.stderr.startswith("error:") and "Traceback" not in proc.stderr


def test_qdrant_local_stores_compact_points_and_reads_them_back_exactly(tmp_path):
    """Local mode: one JSON string per payload (the heading vector as float32 bytes), dense
    vectors pickled as float32 arrays, the SQLite files in WAL mode; rows read back as written."""
    import pickle
    import sqlite3

    from rag.backends.qdrant import QdrantEngine, _unpack

    _setting("qdrant-local", tmp_path)  # skips when qdrant-client is not installed
    rng = np.random.default_rng(0)
    head = rng.normal(size=8).astype(np.float32)
    rows = [Row(k, f"d{k % 2}", rng.normal(size=8).astype(np.float32), {7: 0.5, 3: 1.25},
                {"chunk": {"text": "温度 τ", "n": k}, "tokens": ["温度", "τ"], "head": head.tolist() if k else None,
                 "spans": [[0, 2]]}) for k in range(5)]
    path = str(tmp_path / "qdrant")
    engine = QdrantEngine(path=path)
    engine.create("t_chunks", dim=8, sparse=True, hnsw=False)
    engine.upsert("t_chunks", rows)
    engine.settle("t_chunks", 5, rows[0].dense)
    got = engine.fetch("t_chunks", [0, 1, 4])
    for k in (0, 1, 4):
        assert got[k].payload == rows[k].payload and got[k].doc_id == rows[k].doc_id
        assert np.array_equal(got[k].dense, rows[k].dense)
    assert got[1].payload["head"] == head.tolist()  # exact, not rounded through text
    keys, scores = engine.dense_top("t_chunks", rows[2].dense, 1)
    assert keys.tolist() == [2] and np.isclose(scores[0], rows[2].dense @ rows[2].dense)
    assert engine.sparse_top("t_chunks", {3: 1.0}, 5)[0].tolist() != []
    con = engine._sqlite("t_chunks")
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    engine.c.close()
    from rag.backends import qdrant

    qdrant._CLIENTS.clear()
    with sqlite3.connect(next((tmp_path / "qdrant").rglob("storage.sqlite"))) as db:
        stored = [pickle.loads(b) for (b,) in db.execute("SELECT point FROM points")]
    assert len(stored) == 5
    for p in stored:
        assert isinstance(p.vector["dense"], np.ndarray) and p.vector["dense"].dtype == np.float32
        assert set(p.payload) == {"doc_id", "j", "lang"} and isinstance(p.payload["j"], str)
    assert _unpack({"doc_id": "d", "p": {"owner": 3}}) == {"owner": 3}  # an index written before
    again = QdrantEngine(path=path).fetch("t_chunks", [1])
    assert again[1].payload == rows[1].payload and np.array_equal(again[1].dense, rows[1].dense)
    qdrant._CLIENTS[(path, None, None)].close()
    qdrant._CLIENTS.clear()
