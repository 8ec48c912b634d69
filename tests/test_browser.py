"""The app in a real browser: `streamlit run app.py` driven by Debian's Chromium (playwright).

Never `playwright install` (no network): the system Chromium at /usr/bin/chromium is used.
Without it the tests skip, except on CI (env CI set), where they fail.
Screenshots go to tests/artifacts/ (git-ignored); with STUDYRAG_README_SCREENSHOT=1 the
answered-question screenshot is also written to docs/screenshot.png.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.model]  # the real bundled encoder too

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ASK = "Ask a question"


def _need(condition: bool, why: str) -> None:
    if condition:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{why} (CI must have it: .ci/run installs Chromium with apt-get)")
    pytest.skip(why)


@pytest.fixture(scope="module")
def browser():
    _need(Path(CHROMIUM).exists(), f"Debian's Chromium is not installed at {CHROMIUM}: apt-get install chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _need(False, "the playwright Python package is not installed: pip install -e '.[dev]'")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def _test_app():
    """tests/test_app.py as a module (its seed_index: one index build per test session)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("studyrag_test_app", Path(__file__).with_name("test_app.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_url(browser, tmp_path_factory):
    """`streamlit run app.py` on a free port, over tmp copies of the corpus and index."""
    from rag.encoders import load_encoder

    base = _test_app().seed_index(tmp_path_factory, load_encoder("use-m3"))
    work = tmp_path_factory.mktemp("browser")
    shutil.copytree(base / "corpus", work / "corpus")
    shutil.copytree(base / "index", work / "index")
    port = _free_port()
    env = {
        **os.environ,
        "STUDYRAG_CORPUS": str(work / "corpus"),
        "STUDYRAG_INDEX": str(work / "index"),
        "STUDYRAG_EVAL_RESULTS": str(work / "eval-results"),
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
    }
    for var in ("STUDYRAG_LLM_URL", "STUDYRAG_LLM_MODEL"):
        env.pop(var, None)
    log = open(work / "streamlit.log", "w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(ROOT / "app.py"),
            "--server.headless",
            "true",
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--server.fileWatcherType",
            "none",
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"streamlit exited with {proc.returncode}:\n{(work / 'streamlit.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("streamlit did not come up within 60 s")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def open_app(browser, url: str, *, width: int = 1400, height: int = 1000):
    ctx = browser.new_context(viewport={"width": width, "height": height})
    page = ctx.new_page()
    page.dialogs = []
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    page.goto(url)
    page.get_by_placeholder(ASK).wait_for(timeout=90_000)  # first load builds the searcher
    return ctx, page


def ask(page, question: str) -> float:
    """Type a question, send it; seconds until its answer with a citation [n] is shown."""
    before = page.locator(".studyrag-answer").count()
    box = page.get_by_placeholder(ASK)
    box.fill(question)
    t0 = time.perf_counter()
    box.press("Enter")
    page.locator(".studyrag-answer").nth(before).locator(".studyrag-cite", has_text="[1]").first.wait_for(
        timeout=60_000
    )
    return time.perf_counter() - t0


def test_ask_answer_with_citation_cards(browser, app_url):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    ctx, page = open_app(browser, app_url, height=1300)
    try:
        page.get_by_text("Show scores").click()
        seconds = ask(page, "LoRAとQLoRAの違いは？")
        assert seconds < 10, f"answer took {seconds:.1f} s"
        answer = page.locator(".studyrag-answer").first
        assert "[1]" in answer.inner_text() and "LoRA" in answer.inner_text()
        # an evidence card: title, scores, passage with highlighted terms, open-source button
        card = page.locator("[class*='st-key-card-0-1']").first
        card.wait_for()
        text = card.inner_text()
        assert "[1]" in text and "LLM Interview Questions" in text and "bm25" in text and "rerank" in text
        assert card.locator(".studyrag-passage mark").count() > 0
        assert card.get_by_role("button", name="Open source").is_visible()
        assert card.get_by_text("Parallel passage").is_visible()
        page.wait_for_timeout(500)
        page.screenshot(path=str(ARTIFACTS / "app.png"))
        if os.environ.get("STUDYRAG_README_SCREENSHOT"):
            (ROOT / "docs").mkdir(exist_ok=True)
            page.screenshot(path=str(ROOT / "docs" / "screenshot.png"))
        # warm app: the next question is answered quickly
        seconds2 = ask(page, "什么是注意力机制？")
        assert seconds2 < 5, f"warm answer took {seconds2:.1f} s"
        assert not page.dialogs
    finally:
        ctx.close()


def test_open_source_scrolls_to_the_cited_passage_and_document_is_inert(browser, app_url):
    ctx, page = open_app(browser, app_url, height=800)
    try:
        ask(page, "cross-site scripting XSS note")
        page.get_by_role("button", name="Open source").first.click()
        cited = page.locator("mark#cited")
        cited.wait_for(timeout=30_000)
        page.wait_for_function(
            "() => { const r = document.getElementById('cited').getBoundingClientRect();"
            " return r.top >= 0 && r.top < window.innerHeight; }",
            timeout=10_000,
        )
        # the hostile markup shows as text and nothing in it ran
        doc = page.locator(".studyrag-document")
        assert "<script>window.__pwned = 1" in doc.inner_text()
        assert '<img src="x" onerror=' in doc.inner_text()
        assert doc.locator("script, img, a").count() == 0
        page.wait_for_timeout(500)
        assert page.evaluate("() => window.__pwned") is None
        assert not page.dialogs
        page.screenshot(path=str(ARTIFACTS / "source.png"))
    finally:
        ctx.close()


def test_sessions_at_once_and_an_upload_does_not_break_searching(browser, app_url, tmp_path):
    ctx_a, a = open_app(browser, app_url)
    ctx_b, b = open_app(browser, app_url)
    try:
        # two sessions ask at the same time
        for page, q in ((a, "ビームサーチとは何ですか"), (b, "what is a context window")):
            page.get_by_placeholder(ASK).fill(q)
        a.get_by_placeholder(ASK).press("Enter")
        b.get_by_placeholder(ASK).press("Enter")
        for page in (a, b):
            page.locator(".studyrag-answer .studyrag-cite").first.wait_for(timeout=60_000)

        # session A adds a document while session B keeps asking
        a.get_by_role("link", name="Add documents").click()
        a.get_by_text("Markdown or text files").first.wait_for()
        note = tmp_path / "photosynthesis.md"
        note.write_text(
            "# Photosynthesis notes\n\nPhotosynthesis converts light energy into chemical energy in chloroplasts.\n",
            encoding="utf-8",
        )
        a.locator("input[type='file']").set_input_files(str(note))
        a.get_by_role("button", name="Add to the index").click()
        b.get_by_placeholder(ASK).fill("RAGとは何ですか")
        b.get_by_placeholder(ASK).press("Enter")
        b.locator(".studyrag-answer").nth(1).locator(".studyrag-cite").first.wait_for(timeout=60_000)
        a.get_by_text("Added uploads/photosynthesis.md").wait_for(timeout=90_000)
        # a new question in B now finds the new document
        ask(b, "What does photosynthesis convert light energy into?")
        assert "chemical energy" in b.locator(".studyrag-answer").nth(2).inner_text()
        a.screenshot(path=str(ARTIFACTS / "upload.png"))
    finally:
        ctx_a.close()
        ctx_b.close()
