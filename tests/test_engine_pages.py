"""The pages that list the whole corpus, on an engine index: study cards, mock-interview
questions, the quiz's card vectors (its look-up of cards' chunks by id), the documents page and
suggested questions, and the topic gate's corpus-wide texts. Each must read none of the
chunk rows or document texts (the tables of ``rag.pages`` are stored with the version; the
texts are searched piece by piece), and give the folder's result on the same notes.

Every read is counted at the engine client (``fetch``, by collection and meta part). Each
test also runs the same page on a version without stored tables, as written before them:
there it reads every row, which the counts must show.
"""

from __future__ import annotations

import importlib.util
import json
import warnings

import numpy as np
import pytest
from conftest import CORPUS, FakeEncoder

from rag.backends import open_index, write_index

ENGINES = {"milvus-lite": ("pymilvus", "milvus_lite"), "qdrant-local": ("qdrant_client",)}
QUESTIONS = ["LoRAとQLoRAの違いは？", "什么是温度参数?", "What is RLHF?", "GPT-7とClaude 9の違いは？",
             "ジェイルブレイクとは何ですか", "what is vLLM and RoPE", "量子コンピュータの原理は？"]


def _setting(kind: str, tmp) -> str:
    missing = [m for m in ENGINES[kind] if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"{kind}: {', '.join(missing)} is not installed (pip install -e '.[dev]')")
    return str(tmp / "index.db") if kind == "milvus-lite" else f"qdrant+local://{tmp / 'qdrant'}"


@pytest.fixture(scope="module")
def folder_index(tmp_path_factory):
    from ingest.pipeline import ingest
    from rag.index import open_index as open_folder

    root = tmp_path_factory.mktemp("pages-folder")
    enc = FakeEncoder()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ingest(CORPUS, root / "index", encoder=enc)
    return open_folder(root / "index"), enc


@pytest.fixture(scope="module", params=list(ENGINES))
def engine_index(request, folder_index, tmp_path_factory):
    base, _ = folder_index
    setting = _setting(request.param, tmp_path_factory.mktemp(f"pages-{request.param}"))
    write_index(base, setting)
    index = open_index(setting)
    yield index
    if request.param == "qdrant-local":
        from rag.backends import qdrant

        for c in qdrant._CLIENTS.values():
            c.close()
        qdrant._CLIENTS.clear()


class Reads:
    """Counts what an engine index reads: chunk rows, unit rows, and meta rows per part."""

    def __init__(self, index, monkeypatch):
        self.index, be = index, index.backend
        self.chunks, self.units, self.parts = 0, 0, {}
        where = {}
        for name, (first, n) in index.manifest["meta_parts"].items():
            where.update({k: name for k in range(first, first + n)})
        fetch = be.engine.fetch

        def counted(collection, keys, **kw):
            keys = list(keys)
            if collection == be.name("chunks"):
                self.chunks += len(keys)
            elif collection == be.name("units"):
                self.units += len(keys)
            else:
                for k in keys:
                    part = where.get(k, "manifest")
                    kind = "grams" if part.endswith(":grams") else part.split(":")[0]
                    self.parts[kind] = self.parts.get(kind, 0) + 1
            return fetch(collection, keys, **kw)

        monkeypatch.setattr(be.engine, "fetch", counted)

    def rows(self) -> dict:
        return {"chunks": self.chunks, "units": self.units, "doc": self.parts.get("doc", 0)}


@pytest.fixture
def without_tables(engine_index, monkeypatch):
    """The same version as one written before the tables were stored (its manifest names none)."""
    from rag import pages

    parts = {k: v for k, v in engine_index.manifest["meta_parts"].items() if not k.startswith(pages.PART)}
    monkeypatch.setitem(engine_index.manifest, "meta_parts", parts)
    return engine_index


def _fresh(index):
    """The reading caches emptied, as in a process that just opened the index."""
    index.chunks.fetcher._lru.clear()
    index.documents._lru.clear()
    index.by_id._all = None
    index.by_id._seen.clear()


def _pages(index, enc):
    from study.cards import cards_from_index, drill_questions_from_index
    from study.quiz import deck_vectors
    from ui.suggest import overview, suggested_questions

    return {
        "cards": lambda: cards_from_index(index),
        "drill_questions": lambda: drill_questions_from_index(index),
        "card_vectors": lambda: deck_vectors(index),
        "documents": lambda: (index.table("documents"), overview(index)),
        "suggestions": lambda: [suggested_questions(index, lang) for lang in ("ja", "zh", "en")],
    }


@pytest.mark.parametrize("page", ["cards", "drill_questions", "card_vectors", "documents", "suggestions"])
def test_a_corpus_page_reads_no_chunk_row_or_document_on_an_engine(page, folder_index, engine_index, monkeypatch):
    base, enc = folder_index
    want = _pages(base, enc)[page]()
    _fresh(engine_index)
    reads = Reads(engine_index, monkeypatch)
    got = _pages(engine_index, enc)[page]()
    if page == "card_vectors":
        assert got.dtype == np.float32 and got.shape == want.shape and np.array_equal(got, want)
    else:
        assert got == want and len(json.dumps(str(got))) > 100
    assert reads.rows() == {"chunks": 0, "units": 0, "doc": 0}, reads.rows()
    assert reads.parts.get("table", 0) >= 1 and engine_index.by_id._all is None


@pytest.mark.parametrize("page", ["cards", "drill_questions", "documents"])
def test_without_stored_tables_a_corpus_page_reads_every_row(page, folder_index, without_tables, monkeypatch):
    """What the counts above rule out: a version written before the tables computes them as
    the folder does, reading every chunk row and document text (the same result)."""
    base, enc = folder_index
    _fresh(without_tables)
    reads = Reads(without_tables, monkeypatch)
    assert _pages(without_tables, enc)[page]() == _pages(base, enc)[page]()
    assert reads.chunks >= len(base.chunks) and reads.parts.get("doc", 0) >= len(base.documents), reads.rows()
    assert reads.parts.get("table", 0) == 0


def test_the_card_vectors_table_spares_the_lookup_of_every_chunk_id(folder_index, without_tables, monkeypatch):
    """The quiz's card vectors, computed from the cards (no stored table), look every card's
    chunks up by id: all chunk ids read and kept, and the vectors of the cards' chunks."""
    from study.cards import cards_from_index
    from study.quiz import card_vectors

    base, _ = folder_index
    cards = cards_from_index(base)
    _fresh(without_tables)
    reads = Reads(without_tables, monkeypatch)
    assert np.array_equal(card_vectors(cards, without_tables), card_vectors(cards, base))
    assert without_tables.by_id._all is not None and len(without_tables.by_id._all) == len(base.chunks)
    assert reads.chunks >= len(base.chunks)


def _long_strings(obj, limit: int) -> list[int]:
    from test_backends import _reachable

    return [len(o) for o in _reachable(obj) if isinstance(o, str) and len(o) > limit]


def test_the_topic_gate_searches_the_corpus_texts_without_holding_them(folder_index, engine_index, monkeypatch):
    """The gate's checks (missing terms, CJK words absent from the notes, the drill's unknown
    names) give the folder's answers; the engine index holds none of the three texts after,
    reads no chunk row for them, and a term asked twice is read once."""
    from rag.backends.engine import PIECE, PagedText
    from rag.relevance import missing_word_share, missing_terms
    from rag.rules.script import detect_lang
    from rag.text import squash
    from study.drill import unknown_names

    base, enc = folder_index
    texts = {n: getattr(base.facts, n) for n in ("quotable_text", "squashed_notes", "answer_text")}
    assert min(len(t) for t in texts.values()) > 2 * PIECE  # a text of several pieces
    reads = Reads(engine_index, monkeypatch)
    from rag.search import Searcher

    s, f = Searcher(engine_index, encoder=enc), Searcher(base, encoder=enc)
    for q in QUESTIONS:
        lang = "en" if q.isascii() else "ja"
        assert missing_terms(engine_index, q, lang) == missing_terms(base, q, lang), q
        assert missing_word_share(engine_index, s.make_query(q)) == missing_word_share(base, f.make_query(q)), q
        assert unknown_names(q, engine_index.facts.answer_text) == unknown_names(q, base.facts.answer_text), q
    assert any(missing_terms(base, q, "ja") for q in QUESTIONS) and any(not missing_terms(base, q, "ja") for q in QUESTIONS)
    assert _long_strings(engine_index, 2 * PIECE) == []  # no text of more than two pieces held
    for name in texts:
        assert isinstance(getattr(engine_index.facts, name), PagedText)
    assert reads.rows() == {"chunks": 0, "units": 0, "doc": 0}
    read = reads.parts.get("facts", 0)
    lacking = sorted({squash(t) for q in QUESTIONS for t in missing_terms(base, q, detect_lang(q))})
    fresh = PagedText(engine_index.backend, engine_index.manifest, "facts:quotable_text")
    assert len(lacking) >= 3 and fresh.contains(lacking) == [False] * len(lacking)
    assert fresh.read == 0, lacking  # the terms the notes lack: answered by the text's runs of 2–4 characters
    for q in QUESTIONS:
        missing_terms(engine_index, q, "ja")
    assert reads.parts.get("facts", 0) == read  # answered from the last answers, not read again


def _absent_with_every_run(text: str, grams) -> str:
    """A needle ``text`` lacks whose runs of 2–4 characters all occur in it (they cannot tell):
    four characters of the text, then the character that follows their last three elsewhere."""
    from rag.facts import may_occur

    for i in range(0, len(text) - 4, 7):
        w = text[i : i + 4]
        j = text.find(w[1:], 0)
        while 0 <= j < len(text) - 3:
            needle = w + text[j + 3]
            if needle not in text:
                assert may_occur(grams, needle)
                return needle
            j = text.find(w[1:], j + 1)
    raise AssertionError("no such needle")


def test_character_grams_never_rule_out_a_needle_that_occurs(folder_index):
    from rag.facts import char_grams, may_occur

    base, _ = folder_index
    text = base.facts.squashed_notes
    grams = char_grams(text)
    rng = np.random.default_rng(0)
    for i, n in zip(rng.integers(0, len(text) - 12, 500), rng.integers(1, 12, 500)):
        assert may_occur(grams, text[i : i + n])
    assert not may_occur(grams, "\u2603\u2604") and not may_occur(grams, "GPT-7\u2603")


def test_a_paged_text_finds_a_needle_across_two_pieces(folder_index, engine_index):
    """A needle that spans a piece boundary is found; a needle with a pair the text lacks is
    answered without reading; an absent one whose runs all occur reads every piece, once."""
    from rag.backends.engine import PIECE, PagedText

    base, _ = folder_index
    text = base.facts.quotable_text
    n = engine_index.manifest["meta_parts"]["facts:quotable_text"][1]
    paged = PagedText(engine_index.backend, engine_index.manifest, "facts:quotable_text", batch=1)
    assert paged.contains(["\u2603never in the notes\u2603"]) == [False] and paged.read == 0
    across, hidden = text[PIECE - 3 : PIECE + 3], _absent_with_every_run(text, paged.grams)
    assert paged.contains([across, text[:5], hidden]) == [True, True, False]
    assert paged.read == n
    first = PagedText(engine_index.backend, engine_index.manifest, "facts:quotable_text", batch=1)
    assert text[:5] in first and first.read == 1  # found in the first piece: no more read


def test_a_table_of_many_meta_rows_is_read_in_several_requests(folder_index, engine_index, monkeypatch):
    """A large table (here: the cards, in requests of 3 meta rows) reads back whole."""
    from study.cards import cards_from_index

    base, _ = folder_index
    monkeypatch.setattr("rag.backends.engine.BLOB_BATCH", 3)
    assert engine_index.manifest["meta_parts"]["table:cards"][1] > 3
    assert cards_from_index(engine_index) == cards_from_index(base)


def test_on_the_folder_a_table_is_what_the_page_computed_before(folder_index):
    """The folder's pages are unchanged: each table, turned back into what the page shows,
    equals the direct computation over every chunk and document."""
    from study.cards import build_cards, cards_from_index, drill_questions, drill_questions_from_index
    from study.quiz import card_vectors, deck_vectors
    from ui.notes import display_title

    base, _ = folder_index
    cards = build_cards(base.chunks, base.documents)
    assert cards and cards_from_index(base) == cards
    questions = drill_questions(base.chunks, base.documents)
    assert questions and drill_questions_from_index(base) == questions
    assert np.array_equal(deck_vectors(base), card_vectors(cards, base))
    docs = base.table("documents")
    assert [d["doc_id"] for d in docs] == list(base.documents)
    assert {d["doc_id"]: d["shown"] for d in docs} == {d: display_title(doc, base.chunks) for d, doc in base.documents.items()}
    assert {d["doc_id"]: d["chunks"] for d in docs} == {d: sum(c.doc_id == d for c in base.chunks) for d in base.documents}
