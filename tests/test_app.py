"""The Streamlit app under streamlit.testing.v1.AppTest, on tmp copies of the corpus and index.

The real bundled encoder (use-m3) builds a tmp index once per module; every test gets its
own copy of corpus + index, so nothing touches ./corpus or ./index.
"""

from __future__ import annotations

import json
import re
import shutil
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")

EVIL_DOC = """---
title: "Security note <b>bold</b> <img src=x onerror=alert(1)>"
---
# XSS test note

This note is about cross-site scripting (XSS) in study tools. <script>window.__pwned = 1; alert("xss")</script>
An image tag <img src="x" onerror="window.__pwned = 2"> must show as text.
A [markdown link](javascript:alert(3)) and **bold** and $x^2$ stay literal.
"""
GOOD_UPLOAD = """# Photosynthesis notes

Photosynthesis converts light energy into chemical energy in chloroplasts.
The Calvin cycle fixes carbon dioxide into sugars using ATP and NADPH.
"""


@pytest.fixture(scope="module")
def encoder():
    from rag.encoders import load_encoder

    return load_encoder("use-m3")


def seed_index(tmp_path_factory, encoder) -> Path:
    """The seed corpus plus a hostile document, indexed once per test session.

    Built under the session's base temp folder, so test_browser.py (which does the same)
    reuses it instead of embedding everything again.
    """
    from ingest.uploads import update_index

    base = tmp_path_factory.getbasetemp() / "studyrag-seed"
    if not (base / ".built").exists():
        shutil.rmtree(base, ignore_errors=True)
        shutil.copytree(ROOT / "corpus", base / "corpus", ignore=shutil.ignore_patterns("uploads"))
        (base / "corpus" / "xss-note.md").write_text(EVIL_DOC, encoding="utf-8")
        update_index(base / "corpus", base / "index", encoder)
        (base / ".built").touch()
    return base


@pytest.fixture(scope="module")
def built(tmp_path_factory, encoder):
    return seed_index(tmp_path_factory, encoder)


@pytest.fixture
def env(built, tmp_path, monkeypatch):
    """This test's own copy of corpus + index, and the app pointed at it."""
    shutil.copytree(built / "corpus", tmp_path / "corpus")
    shutil.copytree(built / "index", tmp_path / "index")
    monkeypatch.setenv("STUDYRAG_CORPUS", str(tmp_path / "corpus"))
    monkeypatch.setenv("STUDYRAG_INDEX", str(tmp_path / "index"))
    monkeypatch.setenv("STUDYRAG_EVAL_RESULTS", str(tmp_path / "eval-results"))
    for var in ("STUDYRAG_LLM_URL", "STUDYRAG_LLM_MODEL", "STUDYRAG_LLM_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def new_app():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


def ask(at, question: str):
    at.chat_input[0].set_value(question).run()
    assert not at.exception, at.exception
    return at


def markdowns(at) -> list[str]:
    return [m.value for m in at.markdown]


def answer_html(at) -> list[str]:
    return [m for m in markdowns(at) if 'class="studyrag-answer"' in m]


def page_title(at) -> str:
    return at.title[0].value if at.title else ""


def current_build(index: Path) -> str:
    return (index / "CURRENT").read_text().strip()


# --- asking -------------------------------------------------------------------------------


@pytest.mark.model
def test_ask_answer_with_citations_then_open_the_source(env):
    at = new_app()
    assert page_title(at) == "Ask your study notes"
    ask(at, "LoRAとQLoRAの違いは？")
    answers = answer_html(at)
    assert len(answers) == 1
    assert 'class="studyrag-cite"' in answers[0] and "&#91;1&#93;" in answers[0]
    assert "LoRA" in answers[0]
    # one evidence card per cited passage, with an "Open source" button and highlighted terms
    assert any(m.startswith("**[1]**") for m in markdowns(at))
    assert any('class="studyrag-passage"' in m and "<mark>" in m for m in markdowns(at))
    open_buttons = [b for b in at.button if b.label == "Open source"]
    assert open_buttons
    # scores are hidden until "show scores" is on
    assert not any("bm25 " in c.value for c in at.caption)
    at.toggle(key="show_scores").set_value(True).run()
    assert any(c.value.startswith("bm25 ") and "rerank " in c.value for c in at.caption)

    open_buttons[0].click().run()
    assert not at.exception, at.exception
    assert page_title(at) == "Sources"
    docs = [m for m in markdowns(at) if 'class="studyrag-document"' in m]
    assert len(docs) == 1 and docs[0].count('<mark id="cited"') == 1
    assert "LoRA" in docs[0].split('<mark id="cited"')[1]
    assert any("Cited passage [1]" in c.value for c in at.caption)
    assert any("scrollIntoView" in h.value for h in at.get("html"))


@pytest.mark.model
def test_no_answer_for_an_off_topic_question(env):
    at = new_app()
    for q in ("今日の天気は？", "how to bake bread"):
        ask(at, q)
    infos = [i.value for i in at.info]
    assert any("資料の中に" in v for v in infos) and any("I found nothing" in v for v in infos)
    assert not answer_html(at)
    assert not [b for b in at.button if b.label == "Open source"]


@pytest.mark.model
def test_settings_mode_and_top_k(env):
    at = new_app()
    assert at.selectbox(key="mode").value == "rerank" and at.slider(key="k").value == 5
    at.selectbox(key="mode").set_value("bm25").run()
    at.slider(key="k").set_value(3).run()
    ask(at, "LoRAとQLoRAの違いは？")
    captions = [c.value for c in at.caption]
    assert any(c.startswith("3 passages · BM25 (keywords)") for c in captions), captions
    at.selectbox(key="mode").set_value("dense").run()
    ask(at, "what is beam search")
    assert any(c.value.startswith("3 passages · Dense (embeddings)") for c in at.caption)
    # answer language setting: a Japanese question answered from the Chinese translation
    at.selectbox(key="answer_lang").set_value("zh").run()
    at.selectbox(key="mode").set_value("rerank").run()
    ask(at, "LoRAとQLoRAの違いは？")
    last = answer_html(at)[-1]
    assert "低秩" in last or "微调" in last, last


@pytest.mark.model
def test_follow_up_is_combined_with_the_previous_question(env):
    at = new_app()
    ask(at, "LoRAとQLoRAの違いは？")
    ask(at, "それの利点は？")
    assert any(c.value.startswith("Follow-up — searched for: LoRA") for c in at.caption)
    assert len(answer_html(at)) == 2


@pytest.mark.model
def test_endpoint_answerer_flags_uncited_sentences(env):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers["Content-Length"]))
            reply = {"choices": [{"message": {"content": "LoRA adds low-rank matrices [1]. It is magic."}}]}
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(json.dumps(reply).encode())

        def log_message(self, *a):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        at = new_app()
        at.radio(key="answerer").set_value("endpoint").run()
        at.text_input(key="llm_url").set_value(f"http://127.0.0.1:{server.server_port}").run()
        at.text_input(key="llm_model").set_value("fake").run()
        ask(at, "LoRAとQLoRAの違いは？")
        assert any("studyrag-flagged" in m and "It is magic." in m for m in answer_html(at))
        assert any("Not backed by a valid citation" in w.value for w in at.warning)
        # an unreachable endpoint: a clear error, and the extractive answer instead
        at.text_input(key="llm_url").set_value("http://127.0.0.1:9").run()
        ask(at, "LoRAとQLoRAの違いは？")
        assert any("cannot reach the answer endpoint" in c.value for c in at.caption)
    finally:
        server.shutdown()
        server.server_close()


# --- sources --------------------------------------------------------------------------------


@pytest.mark.model
def test_sources_page_lists_documents_and_renders_them_inert(env):
    at = new_app()
    ask(at, "cross-site scripting XSS note")
    buttons = [b for b in at.button if b.label == "Open source"]
    assert buttons
    buttons[0].click().run()
    assert page_title(at) == "Sources"
    table = at.dataframe[0].value
    assert len(table) == 6 and {"title", "language", "chunks", "file"} <= set(table.columns)
    assert at.selectbox(key="source_doc").value == "xss-note.md"
    doc = [m for m in markdowns(at) if 'class="studyrag-document"' in m][0]
    assert "<script" not in doc and "<img" not in doc and "](javascript" not in doc
    unmarked = re.sub(r"</?mark[^>]*>", "", doc)  # query terms (script…) are marked inside
    assert "&lt;script&gt;" in unmarked and "&lt;img src=&quot;x&quot; onerror=" in unmarked
    title = [m for m in markdowns(at) if m.startswith("### ")][0]
    assert "<b>" not in title and "<img" not in title and "&lt;b&gt;" in title
    # pick another document by hand
    at.selectbox(key="source_doc").set_value("llm-interview-top50-zh.txt").run()
    doc = [m for m in markdowns(at) if 'class="studyrag-document"' in m][0]
    assert "问题1" in doc and 'id="cited"' not in doc


# --- adding documents -----------------------------------------------------------------------


@pytest.mark.model
def test_upload_a_good_and_a_bad_file(env):
    index = env / "index"
    before = current_build(index)
    at = new_app()
    _goto(at, "add")
    assert page_title(at) == "Add documents"
    at.file_uploader[0].set_value(
        [
            ("photosynthesis.md", GOOD_UPLOAD.encode(), "text/markdown"),
            ("binary.md", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "text/markdown"),
            ("latin1.txt", "caf\xe9 cr\xe8me".encode("latin-1"), "text/plain"),
            ("empty.md", b"  \n", "text/markdown"),
        ]
    ).run()
    [b for b in at.button if b.label == "Add to the index"][0].click().run()
    assert not at.exception, at.exception
    errors = " ".join(e.value for e in at.error)
    assert "binary.md" in errors and "binary" in errors
    assert "latin1.txt" in errors and "not UTF-8" in errors
    assert "empty.md" in errors and "empty" in errors
    assert any("Added uploads/photosynthesis.md" in s.value for s in at.success)
    assert (env / "corpus" / "uploads" / "photosynthesis.md").is_file()
    assert not (env / "corpus" / "uploads" / "binary.md").exists()
    assert current_build(index) != before

    # the reloaded searcher finds the new document
    at2 = new_app()
    ask(at2, "What does the Calvin cycle do in photosynthesis?")
    assert any("uploads&#47;photosynthesis.md" in m or "uploads/photosynthesis.md" in m for m in markdowns(at2))
    assert any("Calvin" in a for a in answer_html(at2))


@pytest.mark.model
def test_files_changed_outside_the_app_can_be_indexed_from_the_add_page(env):
    (env / "corpus" / "manual.md").write_text(GOOD_UPLOAD, encoding="utf-8")
    before = current_build(env / "index")
    at = new_app()
    _goto(at, "add")
    assert any("changed since the index was built: manual.md" in w.value for w in at.warning)
    [b for b in at.button if b.label == "Update the index"][0].click().run()
    assert not at.exception, at.exception
    assert current_build(env / "index") != before
    assert not at.warning, [w.value for w in at.warning]
    assert any("indexed 7 documents" in s.value for s in at.success), [s.value for s in at.success]


def _goto(at, page: str) -> None:
    """Open a page of the app's st.navigation menu (function pages: AppTest.switch_page needs files)."""
    at.session_state["goto"] = page
    at.run()
    assert not at.exception, at.exception


def test_upload_handler_refuses_bad_files_before_writing(tmp_path):
    """ingest.uploads without a model: validation, naming, no silent overwrite."""
    from ingest.uploads import MAX_UPLOAD_BYTES, save_uploads

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "seed.md").write_text("# Seed\n\nAlready here.\n", encoding="utf-8")
    result = save_uploads(
        [
            ("../../etc/notes.md", b"# Notes\n\nFirst version.\n"),
            ("notes.md", b"# Notes\n\nSecond version.\n"),  # same name, other content: kept as notes-2.md
            ("copy.md", b"# Seed\n\nAlready here.\n"),  # identical to a corpus file
            ("big.txt", b"a" * (MAX_UPLOAD_BYTES + 1)),
            ("nul.txt", b"abc\x00def"),
            ("sjis.txt", "日本語".encode("shift_jis")),
            ("blank.md", b"\n\n"),
            ("front-only.md", b"---\ntitle: x\n---\n"),
            ("picture.png", b"\x89PNG"),
        ],
        corpus,
    )
    assert result.saved == ["uploads/notes.md", "uploads/notes-2.md"]
    assert result.unchanged == ["seed.md"]
    refused = dict(result.refused)
    assert set(refused) == {"big.txt", "nul.txt", "sjis.txt", "blank.md", "front-only.md", "picture.png"}
    assert "limit" in refused["big.txt"] and "binary" in refused["nul.txt"] and "not UTF-8" in refused["sjis.txt"]
    assert "empty" in refused["blank.md"] and "front matter" in refused["front-only.md"]
    assert "only .md and .txt" in refused["picture.png"]
    assert sorted(p.name for p in (corpus / "uploads").iterdir()) == ["notes-2.md", "notes.md"]
    assert (corpus / "uploads" / "notes.md").read_bytes() == b"# Notes\n\nFirst version.\n"


@pytest.mark.model
def test_bad_upload_leaves_the_index_alone_and_ingest_keeps_other_searchers_working(env, encoder):
    from rag.index import open_index
    from rag.search import Searcher
    from ingest.uploads import add_documents

    index, corpus = env / "index", env / "corpus"
    before = current_build(index)
    old = Searcher(open_index(index), encoder=encoder)
    result, report = add_documents([("bad.txt", b"\xff\xfe\x00\x00")], corpus, index, encoder)
    assert result.refused and report is None and current_build(index) == before

    stages = []
    result, report = add_documents(
        [("photosynthesis.md", GOOD_UPLOAD.encode())],
        corpus,
        index,
        encoder,
        progress=lambda desc, n, total: stages.append(desc),
    )
    assert report.written and "uploads/photosynthesis.md" in report.embedded_documents
    assert {"chunks", "sentences"} <= set(stages)
    assert current_build(index) != before and not (index / "builds" / before).exists()
    # a searcher loaded before the swap keeps answering, from its own (old) build
    hits = old.search("LoRAとQLoRAの違いは？", k=3)
    assert hits and all(h.chunk.doc_id != "uploads/photosynthesis.md" for h in old.search("Calvin cycle", k=5))
    new = Searcher(open_index(index), encoder=encoder)
    assert new.search("Calvin cycle photosynthesis", k=1)[0].chunk.doc_id == "uploads/photosynthesis.md"


# --- first start, benchmarks ----------------------------------------------------------------


@pytest.mark.model
def test_first_start_builds_the_index(tmp_path, monkeypatch):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.md").write_text(
        "# Attention\n\nSelf-attention weighs every token against every other token.\n", encoding="utf-8"
    )
    (corpus / "b.md").write_text(
        "# 量子化\n\n量子化はモデルの重みを低いビット数で表し、メモリを減らします。\n", encoding="utf-8"
    )
    monkeypatch.setenv("STUDYRAG_CORPUS", str(corpus))
    monkeypatch.setenv("STUDYRAG_INDEX", str(tmp_path / "index"))
    at = new_app()
    assert (tmp_path / "index" / "CURRENT").is_file()
    assert any(c.value.startswith("2 documents") for c in at.caption)
    ask(at, "量子化とは何ですか")
    assert any("低いビット数" in a for a in answer_html(at))


@pytest.mark.model
def test_benchmarks_page(env):
    at = new_app()
    _goto(at, "benchmarks")
    assert page_title(at) == "Benchmarks"
    assert any(i.value == "No benchmark report yet." for i in at.info)
    results = env / "eval-results"
    results.mkdir()
    (results / "report.md").write_text(
        "# Retrieval report\n\n| mode | nDCG@10 |\n|---|---|\n| rerank | 0.81 |\n\n![hits](hits.png)\n\nAfter the figure.\n"
    )
    from PIL import Image

    Image.new("RGB", (8, 8), "white").save(results / "hits.png")
    Image.new("RGB", (8, 8), "white").save(results / "latency.png")
    at.run()
    assert not at.exception, at.exception
    assert any("Retrieval report" in m for m in markdowns(at)) and any("After the figure." in m for m in markdowns(at))
    assert not any("![hits]" in m for m in markdowns(at))  # shown as an image, not a broken link
    assert len(at.get("image")) == 2
    assert not any(i.value == "No benchmark report yet." for i in at.info)
    run = [b for b in at.button if b.label == "Run quick benchmark"]
    assert run and run[0].disabled == (not (ROOT / "eval" / "__main__.py").is_file())
