"""The Streamlit app under streamlit.testing.v1.AppTest, on the deterministic fake encoder.

The seed corpus plus a hostile note is indexed once per session with
:class:`conftest.FakeEncoder` (registered by name, so the app loads it like any encoder);
every test gets its own copy of corpus, index and data folder, so nothing touches ./corpus,
./index or ./data. No model is needed.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, FakeEncoder, fake_tuned
from study.conversations import Conversations

APP = str(ROOT / "app.py")
FAKE = "fake-ngram-64"
# A relevance model that suits the fake encoder's similarities (the shipped one suits e5).
CALIBRATION = {
    "weights": {"passage": 10.0, "unit": 10.0, "words_missing": -3.0, "other_language": -3.0},
    "bias": -9.0,
    "threshold": 0.5,
}
EVIL_DOC = """---
title: "Security note <b>bold</b> <img src=x onerror=alert(1)>"
source: "https://evil.example/x"
tags: ["xss"]
---
# XSS test note

This note is about cross-site scripting (XSS) in study tools. <script>window.__pwned = 1; alert("xss")</script>
An image tag <img src="x" onerror="window.__pwned = 2"> must show as text.
A [markdown link](javascript:alert(3)) and **bold** and $x^2$ stay as they are.
"""
GOOD_UPLOAD = """# Photosynthesis notes

Photosynthesis converts light energy into chemical energy in chloroplasts.
The Calvin cycle fixes carbon dioxide into sugars using ATP and NADPH.
"""
ASKED = "LoRAとQLoRAの違いは？"
OFF_TOPIC = "今日の天気は？"


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def fake_built(tmp_path_factory) -> Path:
    """The seed corpus and the hostile note, indexed once with the fake encoder."""
    import rag.parallel
    from ingest.pipeline import ingest

    base = tmp_path_factory.mktemp("app-fake")
    shutil.copytree(ROOT / "corpus", base / "corpus", ignore=shutil.ignore_patterns("uploads"))
    (base / "corpus" / "xss-note.md").write_text(EVIL_DOC, encoding="utf-8")
    with pytest.MonkeyPatch.context() as mp:
        # the fake encoder's n-grams do not see that the ja and zh Q&A items are translations:
        # link every shared item number, as the real encoder does
        mp.setattr(rag.parallel, "MIN_DOC_SIMILARITY", -1.0)
        mp.setattr(rag.parallel, "MIN_ITEM_SIMILARITY", -1.0)
        ingest(base / "corpus", base / "index", encoder=FakeEncoder())
    return base


@pytest.fixture
def env(fake_built, tmp_path, monkeypatch):
    """This test's copy of corpus + index, an empty data folder, the app pointed at them."""
    import streamlit as st

    import rag.search
    from rag.encoders import register_encoder

    shutil.copytree(fake_built / "corpus", tmp_path / "corpus")
    shutil.copytree(fake_built / "index", tmp_path / "index")
    for var, sub in (
        ("CORPUS", "corpus"),
        ("INDEX", "index"),
        ("DATA", "data"),
        ("EVAL_RESULTS", "eval-results"),
        ("EVAL_RUNS", "eval-runs"),
    ):
        monkeypatch.setenv(f"STUDYRAG_{var}", str(tmp_path / sub))
    monkeypatch.setenv("STUDYRAG_ENCODER", FAKE)
    for var in ("STUDYRAG_LLM_URL", "STUDYRAG_LLM_MODEL", "STUDYRAG_LLM_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    register_encoder(FAKE, FakeEncoder)
    monkeypatch.setattr(
        rag.search, "load_tuned", lambda encoder_id, *a, **k: fake_tuned(answer={"calibration": CALIBRATION})
    )
    st.cache_resource.clear()
    st.cache_data.clear()
    yield tmp_path
    register_encoder(FAKE, None)
    st.cache_resource.clear()
    st.cache_data.clear()


def new_app(query: dict | None = None, lang: str | None = None):
    """A fresh session (a page load or a reload): ``query`` is the address's parameters."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=60)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    if lang:
        at.query_params["lang"] = lang
    at.run()
    assert not at.exception, at.exception
    return at


def ok(at):
    assert not at.exception, [e.value for e in at.exception]
    return at


def goto(at, page: str):
    at.session_state["goto"] = page
    return ok(at.run())


def ask(at, question: str):
    at.text_area(key="ask_box").set_value(question)
    submit(at)
    return ok(at.run())


def submit(at) -> None:
    [b for b in at.button if b.label in ("Ask", "質問する", "提问")][-1].click()


def button(at, key: str):
    return at.button(key=key)


def labels(at) -> list[str]:
    return [b.label for b in at.button]


def md(at) -> list[str]:
    return [m.value for m in at.markdown]


def answers(at) -> list[str]:
    return [m for m in md(at) if m.startswith('<div class="studyrag-answer"')]


def asked(at) -> list[str]:
    """The questions shown in the conversation, as text."""
    import html

    return [html.unescape(re.sub(r"<[^>]+>", "", m)) for m in md(at) if "studyrag-question" in m]


def texts(els) -> list[str]:
    return [e.value for e in els]


def title(at) -> str:
    return at.title[0].value if at.title else ""


def current_build(index: Path) -> str:
    return (index / "CURRENT").read_text().strip()


def store(env):
    from study.store import Store

    return Store.open(env / "data")


# --- the app's shape --------------------------------------------------------------------------------


def test_app_is_a_thin_entry_point_and_the_cli_stays_streamlit_free():
    assert len((ROOT / "app.py").read_text(encoding="utf-8").splitlines()) < 70
    pages = ["ask", "sources", "add", "flashcards", "quiz", "drill", "progress", "export", "benchmarks"]
    for name in pages:
        src = (ROOT / "ui" / f"{name}.py").read_text(encoding="utf-8")
        assert "def render() -> None:" in src
        assert not re.search(
            r"^from ui import .*\b(" + "|".join(p for p in pages if p != name) + r")\b", src, re.MULTILINE
        )
        assert len(src.splitlines()) < 250, name
    code = (
        "import sys, ui.cli, ui.notes, ui.i18n, ui.conversation, ui.suggest, ui.reports; "
        "assert 'streamlit' not in sys.modules, 'streamlit imported'"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr


def test_streamlit_config_is_for_a_local_learner():
    import tomllib

    cfg = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert cfg["client"]["toolbarMode"] == "minimal"
    assert cfg["browser"]["gatherUsageStats"] is False
    assert cfg["server"]["headless"] is True


# --- landing page ---------------------------------------------------------------------------------


def test_landing_page_says_what_the_notes_cover_and_offers_questions(env):
    at = new_app(lang="ja")
    assert title(at) == "ノートに質問する"
    shown = " ".join(md(at))
    assert "LLM Interview Questions" in shown and "大语言模型" in shown
    assert "llm-technical-foundations" not in shown and "LLMの技術的本質" in shown  # a title, not the file name
    assert "質問と回答 50問" in shown
    suggested = [b for b in at.button if b.key and b.key.startswith("suggest-")]
    assert len(suggested) == 6 and all(re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", b.label) for b in suggested)
    question = suggested[0].label
    suggested[0].click()
    ok(at.run())
    assert len(answers(at)) + len(at.info) >= 1
    assert asked(at) == [question.replace("\\", "")]
    assert not [b for b in at.button if b.key and b.key.startswith("suggest-")]  # the welcome is gone


def test_suggested_questions_follow_the_interface_language(env):
    zh = new_app(lang="zh")
    got = [b.label for b in zh.button if b.key and b.key.startswith("suggest-")]
    assert got and all(not re.search(r"[\u3040-\u30ff]", q) for q in got)  # Chinese, not Japanese
    en = new_app(lang="en")
    assert all(b.label.startswith("What is") for b in en.button if b.key and b.key.startswith("suggest-"))


# --- asking -----------------------------------------------------------------------------------------


def test_a_cited_answer_whose_markers_open_their_passages(env):
    at = new_app(lang="en")
    ask(at, ASKED)
    [a] = answers(at)
    assert '<label for="sr-0-1" class="studyrag-cite"' in a
    panel = a.split('<div class="sr-panel" data-n="1">')[1]
    assert "LLM Interview Questions · Q4. LoRAとQLoRA" in panel
    assert '<mark class="studyrag-quote">' in panel  # the quoted sentences are highlighted in the passage
    assert "**" not in panel and "<strong>" in panel  # the passage is rendered Markdown
    assert any(c.startswith("Click a number like [1]") for c in texts(at.caption))
    # plain words: no scores, stage names or timings unless asked for
    visible = " ".join(md(at) + texts(at.caption))
    for word in ("bm25", "rerank", "chunk", "retrieved", " ms", "relevance"):
        assert word not in visible, word
    at.toggle(key="details").set_value(True)
    ok(at.run())
    details = " ".join(md(at) + texts(at.caption))
    assert "keywords" in details and "re-ranked" in details and "relevance" in details and " ms" in details
    assert ok(at).text_area(key="ask_box").value == ""  # the box is cleared for the next question


def test_open_the_cited_passage_in_its_document_and_go_back(env):
    at = new_app(lang="en")
    ask(at, ASKED)
    button(at, "open-0-1").click()
    ok(at.run())
    assert title(at) == "Documents"
    [doc] = [m for m in md(at) if 'class="studyrag-document' in m]
    assert doc.count('id="cited"') == 1 and "LoRAとQLoRA" in doc.split('id="cited"')[1][:200]
    assert '<mark class="studyrag-quote">' in doc
    assert "title:" not in doc and "drive.google" not in doc  # front matter: a metadata line, not raw text
    assert any("studyrag-meta" in m and "drive.google" in m for m in md(at))
    assert "The cited passage is highlighted." in texts(at.caption)
    assert any("scrollIntoView" in h.value and "#cited" in h.value for h in at.get("html"))
    button(at, "source-back").click()
    ok(at.run())
    assert title(at) == "Ask your notes" and len(answers(at)) == 1
    assert any("scrollIntoView" in h.value and "st-key-turn-0" in h.value for h in at.get("html"))


def test_an_abstention_offers_nearby_topics_as_questions(env):
    at = new_app(lang="ja")
    ask(at, OFF_TOPIC)
    assert any("ノートには" in i for i in texts(at.info)) and not answers(at)
    retry = [b for b in at.button if b.key and b.key.startswith("retry-0-")]
    assert retry
    question = retry[0].label.replace("\\", "")
    retry[0].click()
    ok(at.run())
    assert asked(at) == [OFF_TOPIC, question]


def test_a_follow_up_says_what_it_follows(env):
    at = new_app(lang="en")
    ask(at, ASKED)
    ask(at, "それの利点は？")
    assert any(c.startswith("Follow-up to “LoRAとQLoRA") for c in texts(at.caption))


def test_choosing_between_the_previous_answers_topics_is_a_follow_up_and_a_new_question_is_not(env):
    at = new_app(lang="en")
    ask(at, "What is the difference between top-k and top-p sampling?")
    ask(at, "Which one should I use for creative writing?")
    follow = [c for c in texts(at.caption) if c.startswith("Follow-up to")]
    assert follow == ["Follow-up to “What is the difference between top-k and top-p sampling?”"], follow
    ask(at, "What is LoRA and why does it save memory?")
    assert [c for c in texts(at.caption) if c.startswith("Follow-up to")] == follow  # no second one
    assert asked(at)[-1] == "What is LoRA and why does it save memory?"


def test_an_over_long_question_keeps_its_text_and_shows_the_limit(env):
    from rag.search import MAX_QUERY_CHARS

    at = new_app(lang="en")
    long_q = "LoRAとは何ですか。" * 300
    assert len(long_q) > MAX_QUERY_CHARS
    ask(at, long_q)
    assert any(f"the limit is {MAX_QUERY_CHARS:,}" in e and "still in the box" in e for e in texts(at.error))
    assert at.text_area(key="ask_box").value == long_q
    assert not answers(at) and any("Up to 2,000 characters" in c for c in texts(at.caption))
    ask(at, "   ")
    assert "Type a question first." in texts(at.warning)


def test_choose_which_documents_to_ask(env):
    at = new_app(lang="en")
    docs = [c for c in at.checkbox if c.key and c.key.startswith("scope-")]
    assert len(docs) == 6 and all(c.value for c in docs)
    for c in docs:
        if c.key != "scope-llm-interview-top50-zh.txt":
            c.set_value(False)
    at.toggle(key="details").set_value(True)
    ok(at.run())
    assert any("1 of 6 documents" in e.label for e in at.expander)
    ask(at, "LoRA与QLoRA在LLM微调中有什么区别?")
    [a] = answers(at)
    heads = re.findall(r'<div class="sr-panel-head">(.*?)</div>', a)
    assert heads and all("大语言模型" in h for h in heads)  # only the chosen document is quoted
    read = [m for m in md(at) if re.match(r"\d+\. ", m)]
    assert read and all(m.split(". ", 1)[1].startswith("大语言模型") for m in read)  # and only it was searched
    at.checkbox(key="scope-llm-interview-top50-zh.txt").set_value(False)
    ok(at.run())
    ask(at, ASKED)
    assert "Choose at least one document to ask." in texts(at.warning)
    assert len(answers(at)) == 1


def test_answer_settings_search_method_passages_and_answer_language(env):
    at = new_app(lang="en")
    at.selectbox(key="mode").set_value("bm25")
    at.slider(key="k").set_value(3)
    at.toggle(key="details").set_value(True)
    ok(at.run())
    ask(at, ASKED)
    assert any(c.startswith("Keywords · relevance") for c in texts(at.caption))
    assert len([m for m in md(at) if re.match(r"\d+\. ", m)]) == 3  # three passages read
    at.selectbox(key="mode").set_value(None)
    at.selectbox(key="answer_lang").set_value("zh")
    ok(at.run())
    ask(at, ASKED)
    last = answers(at)[-1]
    text = last.split('<div class="sr-panels">')[0]
    assert re.search(r"[\u4e00-\u9fff]", text) and not re.search(r"[\u3040-\u30ff]", text)  # quoted from the zh twin


def test_the_endpoint_without_an_address_is_explained_not_raised(env):
    at = new_app(lang="en")
    at.radio(key="answerer").set_value("endpoint")
    ok(at.run())
    notice = [w for w in texts(at.warning) if "has no address yet" in w]
    assert notice
    ask(at, ASKED)
    assert answers(at)  # quoted from the notes meanwhile
    shown = " ".join(texts(at.warning) + texts(at.error) + texts(at.caption) + md(at))
    assert "must start with http" not in shown and "got ''" not in shown
    at.text_input(key="llm_url").set_value("localhost:8000")
    ok(at.run())
    assert any("must start with http:// or https://" in w for w in texts(at.warning))


# --- conversations ------------------------------------------------------------------------------------


def test_conversations_are_saved_listed_reopened_and_deleted(env):
    at = new_app(lang="en")
    ask(at, ASKED)
    ask(at, OFF_TOPIC)
    s = store(env)
    p = s.profile("learner")
    [conv] = Conversations(s).list(p.id)
    assert conv.title == ASKED and conv.messages == 2
    assert at.query_params["chat"] == [str(conv.id)] or at.query_params["chat"] == str(conv.id)
    # a reload: a new session with the same address finds the conversation
    again = new_app({"chat": str(conv.id), "profile": "learner"}, lang="en")
    assert len(answers(again)) == 1 and len(again.info) == 1
    assert asked(again) == [ASKED, OFF_TOPIC]
    # a new conversation, then the old one again from the sidebar
    button(again, "new-chat").click()
    ok(again.run())
    assert not answers(again) and [b for b in again.button if b.key and b.key.startswith("suggest-")]
    button(again, f"chat-{conv.id}").click()
    ok(again.run())
    assert len(answers(again)) == 1
    button(again, f"del-chat-{conv.id}").click()
    ok(again.run())
    assert Conversations(s).list(p.id) == [] and not answers(again)


def test_a_profile_name_with_path_and_html_characters_is_stored_and_shown_inert(env):
    name = "../../<img src=x onerror=alert(1)> **bold** [x](http://evil.example)"
    at = new_app(lang="en")
    at.text_input(key="new_profile_name").set_value(name)
    [b for b in at.button if b.label == "Add"][0].click()
    ok(at.run())
    s = store(env)
    assert name in [p.name for p in s.profiles()]
    assert at.selectbox(key="profile_pick").value == name
    assert sorted(x.name for x in (env / "data").iterdir() if not x.name.startswith("study.sqlite3")) == []
    assert not (env.parent / "<img src=x onerror=alert(1)> **bold** [x](http:").exists()
    ask(at, ASKED)
    assert Conversations(s).list(s.profile(name).id)  # saved under the new learner
    for m in md(at) + texts(at.caption) + labels(at):
        assert "<img" not in m and "](http" not in m.replace("\\]", "")
    from ui.export import safe_stem

    assert "/" not in safe_stem(name) and "<" not in safe_stem(name) and safe_stem(name)


def test_a_corrupt_store_is_reported_left_untouched_and_asking_still_works(env):
    data = env / "data"
    data.mkdir()
    junk = b"SQLite format 3\x00" + b"\xde\xad\xbe\xef" * 2000
    (data / "study.sqlite3").write_bytes(junk)
    at = new_app(lang="en")
    assert any("cannot be opened" in w and "left untouched" in w for w in texts(at.warning))
    ask(at, ASKED)
    assert len(answers(at)) == 1
    assert (data / "study.sqlite3").read_bytes() == junk
    assert sorted(p.name for p in data.iterdir()) == ["study.sqlite3"]
    goto(at, "flashcards")
    assert any("cannot be opened" in w for w in texts(at.warning))


def test_an_unreachable_progress_server_is_reported_without_its_password(env, monkeypatch):
    monkeypatch.setenv("STUDYRAG_STORE", "postgresql://study:hunter2@127.0.0.1:1/progress?connect_timeout=2")
    at = new_app(lang="en")
    warning = " ".join(texts(at.warning))
    shown = warning.replace("\u2060", "").replace("\\", "")  # the inert-text escapes undone
    assert "cannot be opened" in warning and "postgresql://study:***@127.0.0.1:1/progress" in shown
    assert "hunter2" not in warning + " ".join(texts(at.caption))
    ask(at, ASKED)
    assert len(answers(at)) == 1
    assert not (env / "data").exists()  # no SQLite file behind the learner's back


# --- the interface language -----------------------------------------------------------------------------

PAGES = ["ask", "sources", "add", "flashcards", "quiz", "drill", "progress", "export", "benchmarks"]


def visible_texts(at) -> list[str]:
    out = (
        texts(at.title)
        + texts(at.header)
        + texts(at.subheader)
        + texts(at.caption)
        + texts(at.info)
        + texts(at.warning)
        + texts(at.success)
        + texts(at.error)
        + md(at)
        + labels(at)
    )
    for kind in (
        at.selectbox,
        at.radio,
        at.text_area,
        at.text_input,
        at.checkbox,
        at.toggle,
        at.slider,
        at.number_input,
        at.expander,
    ):
        out += [w.label for w in kind]
    return out


@pytest.mark.parametrize("lang", ["zh", "ja"])
def test_every_page_speaks_the_interface_language(env, lang, tmp_path):
    from ui.i18n import EN, MESSAGES

    english = {v for k, v in EN.items() if MESSAGES[lang][k] != v and len(v) > 3 and "{" not in v}
    templates = [re.escape(v.split("{")[0]) for k, v in EN.items() if "{" in v and len(v.split("{")[0]) > 6]
    at = new_app(lang=lang)
    ask(at, ASKED)
    for page in PAGES:
        goto(at, page)
        assert (
            title(at) == MESSAGES[lang][f"{'fc' if page == 'flashcards' else page}.title"]
            if page in ("sources", "flashcards", "quiz", "drill", "add")
            else True
        )
        for text in visible_texts(at):
            assert text not in english, (page, text)
            assert not any(re.match(t, text) for t in templates), (page, text)


def test_switching_the_interface_language(env):
    at = new_app(lang="en")
    assert title(at) == "Ask your notes"
    at.selectbox(key="ui_lang").set_value("zh")
    ok(at.run())
    assert title(at) == "向笔记提问" and at.query_params["lang"] in ("zh", ["zh"])
    assert "新对话" in labels(at)
    goto(at, "flashcards")
    assert title(at) == "闪卡" and "显示答案" in labels(at)


def test_the_browser_language_is_the_default(env, monkeypatch):
    import ui.state

    monkeypatch.setattr(ui.state, "_browser_locale", lambda: "ja-JP")
    at = new_app()
    assert title(at) == "ノートに質問する"


# --- documents -------------------------------------------------------------------------------------------


def test_documents_are_listed_by_title_and_rendered_inert(env):
    at = new_app(lang="en")
    goto(at, "sources")
    table = at.dataframe[0].value
    assert len(table) == 6 and list(table.columns) == ["Title", "Language", "Passages", "File"]
    assert "llm-technical-foundations-ja" not in " ".join(table["Title"])
    at.selectbox(key="source_doc").set_value("xss-note.md")
    ok(at.run())
    [doc] = [m for m in md(at) if 'class="studyrag-document' in m]
    for tag in re.findall(r"<[^>]*>", doc):
        assert not re.search(r"\b(?:href|src|on\w+)\s*=", tag, re.IGNORECASE), tag
    assert "&lt;script&gt;window.&#95;&#95;pwned" in doc and "&lt;img src=&quot;x&quot;" in doc
    assert (
        '<div class="studyrag-h1" role="heading" aria-level="1">XSS test note</div>' in doc
        and "<strong>bold</strong>" in doc
    )
    assert "title:" not in doc
    [heading] = [h for h in texts(at.subheader) if "Security note" in h]
    assert "<b>" not in heading.replace("\\<b\\>", "") and "<img" not in heading.replace("\\<img", "")
    at.selectbox(key="source_doc").set_value("llm-interview-top50-zh.txt")
    ok(at.run())
    [doc] = [m for m in md(at) if 'class="studyrag-document' in m]
    assert "问题1" in doc and 'id="cited"' not in doc


# --- adding documents ---------------------------------------------------------------------------------


def test_upload_a_good_and_a_bad_file(env):
    before = (env / "index" / "CURRENT").read_text()
    at = new_app(lang="en")
    goto(at, "add")
    at.file_uploader[0].set_value(
        [
            ("photosynthesis.md", GOOD_UPLOAD.encode(), "text/markdown"),
            ("binary.md", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "text/markdown"),
            ("latin1.txt", "caf\xe9 cr\xe8me".encode("latin-1"), "text/plain"),
        ]
    )
    ok(at.run())
    button(at, "add-files").click()
    ok(at.run())
    errors = " ".join(texts(at.error))
    assert "binary.md" in errors and "latin1.txt" in errors and "not UTF-8" in errors
    assert any("Added photosynthesis.md." in s and "7 documents" in s for s in texts(at.success))
    assert (env / "index" / "CURRENT").read_text() != before
    again = new_app(lang="en")
    ask(again, "What does the Calvin cycle do in photosynthesis?")
    assert any("Calvin" in a for a in answers(again))


def test_an_old_word_file_is_refused_with_what_to_save_it_as_in_the_learners_language(env):
    at = new_app(lang="ja")
    goto(at, "add")
    at.file_uploader[0].set_value([("講義ノート.doc", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "application/msword")])
    ok(at.run())
    button(at, "add-files").click()
    ok(at.run())
    errors = " ".join(texts(at.error))
    assert "講義ノート.doc" in errors and "Word 97–2003のファイルは読めません。.docx で保存し直してから追加してください" in errors, errors


def test_files_changed_outside_the_app_can_be_read_from_the_add_page(env):
    (env / "corpus" / "manual.md").write_text(GOOD_UPLOAD, encoding="utf-8")
    at = new_app(lang="en")
    goto(at, "add")
    assert any("changed since they were read: manual.md" in w for w in texts(at.warning))
    button(at, "update-index").click()
    ok(at.run())
    assert not at.warning and any("7 documents" in s for s in texts(at.success))


def test_files_an_older_reader_read_are_offered_to_be_read_again(env, monkeypatch):
    from rag import corpus as rc

    (env / "corpus" / "page.html").write_text(
        "<!doctype html><html><head><title>Beam search</title></head><body><article><h1>Beam search</h1>"
        "<p>Beam search keeps the k most probable sequences at every step of decoding.</p></article></body></html>",
        encoding="utf-8")
    at = new_app(lang="en")
    goto(at, "add")
    button(at, "update-index").click()
    ok(at.run())
    assert not at.warning
    monkeypatch.setitem(rc.READER_VERSIONS, ".html", rc.READER_VERSIONS[".html"] + 1)  # a better web-page reader
    at = new_app(lang="ja")
    goto(at, "add")
    said = texts(at.warning)
    assert any("以前の読み込み機能で読まれました" in w and "page.html" in w for w in said), said
    assert not any("変更されています" in w for w in said), said  # the file itself did not change
    button(at, "update-index").click()
    ok(at.run())
    assert not at.warning


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
            ("sjis.txt", "# 日本語のノート\n\nWindowsのメモ帳で保存したノートです。\n".encode("shift_jis")),  # read as Shift_JIS
            ("latin1.txt", "Café notes: crème brûlée.".encode("latin-1")),
            ("blank.md", b"\n\n"),
            ("front-only.md", b"---\ntitle: x\n---\n"),
            ("picture.png", b"\x89PNG"),
            ("lecture.doc", b"\xd0\xcf\x11\xe0"),  # Word 97-2003: said what to save it as
        ],
        corpus,
    )
    assert result.saved == ["uploads/notes.md", "uploads/notes-2.md", "uploads/sjis.txt"]
    assert result.unchanged == ["seed.md"]
    refused = dict(result.refused)
    assert set(refused) == {"big.txt", "nul.txt", "latin1.txt", "blank.md", "front-only.md", "picture.png", "lecture.doc"}
    assert refused["lecture.doc"].endswith(": Word 97–2003 files are not read: save it as .docx and add that")
    assert "limit" in refused["big.txt"] and "binary" in refused["nul.txt"] and "not UTF-8" in refused["latin1.txt"]
    assert "empty" in refused["blank.md"] and "front matter" in refused["front-only.md"]
    assert "only .md, .txt, .pdf" in refused["picture.png"]
    assert sorted(p.name for p in (corpus / "uploads").iterdir()) == ["notes-2.md", "notes.md", "sjis.txt"]
    assert (corpus / "uploads" / "notes.md").read_bytes() == b"# Notes\n\nFirst version.\n"


def test_bad_upload_leaves_the_index_alone_and_ingest_keeps_other_searchers_working(env):
    from rag.index import open_index
    from rag.search import Searcher
    from ingest.uploads import add_documents

    encoder = FakeEncoder()
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


def test_first_start_builds_the_index(env):
    shutil.rmtree(env / "index")
    at = new_app(lang="en")
    assert (env / "index" / "CURRENT").is_file()
    ask(at, ASKED)
    assert answers(at)


# --- benchmarks -------------------------------------------------------------------------------------


def test_benchmarks_page_shows_reports_readably_and_runs_the_quick_benchmark(env, monkeypatch):
    from PIL import Image

    import ui.benchmarks

    at = new_app(lang="en")
    goto(at, "benchmarks")
    assert "No benchmark report yet." in texts(at.info)
    results = env / "eval-results"
    results.mkdir()
    (results / "report.md").write_text(
        "# Retrieval benchmarks\n\n"
        "## seed — test split, 116 queries over 159 chunks (5 documents); index build 1.4 s\n\n"
        "| mode | nDCG@10 |\n|---|---|\n| rerank | 0.81 |\n\n![hits](hits.png)\n\nAfter the figure.\n",
        encoding="utf-8",
    )
    Image.new("RGB", (8, 8), "white").save(results / "hits.png")
    (results / "drill.md").write_text("# Drill grading\n\nAgreement 0.78.\n", encoding="utf-8")
    ok(at.run())
    report = " ".join(md(at))
    assert (
        '<div class="studyrag-h2" role="heading" aria-level="2">seed</div>' in report
        and "Test split, 116 queries" in report
        and "<table>" in report
    )
    assert len(at.get("image")) == 1
    at.radio(key="bench_pick").set_value("drill")
    ok(at.run())
    assert any("Agreement 0.78." in m for m in md(at))
    script = (
        "import pathlib, sys; o = pathlib.Path(sys.argv[1]); o.mkdir(parents=True, exist_ok=True); "
        "print('seed 40/40'); (o / 'report.md').write_text('# Quick run\\n\\nhit@1 0.8\\n')"
    )
    monkeypatch.setattr(ui.benchmarks, "quick_command", lambda out, **kw: [sys.executable, "-c", script, str(out)])
    button(at, "bench-quick").click()
    ok(at.run())
    assert any(s.startswith("Finished in") for s in texts(at.success))
    assert at.radio(key="bench_pick").value == "quick" and any("hit@1 0.8" in m for m in md(at))


@pytest.mark.parametrize(("lang", "said"), [("ja", "レポートは英語で書かれています"), ("zh", "报告以英文撰写"), ("en", None)])
def test_benchmarks_page_says_the_reports_are_in_english(env, lang, said):
    (env / "eval-results").mkdir()
    (env / "eval-results" / "drill.md").write_text("# Drill grading\n\nAgreement 0.78.\n", encoding="utf-8")
    at = new_app(lang=lang)
    goto(at, "benchmarks")
    ok(at.run())
    captions = " ".join(c.value for c in at.caption)
    if said:
        assert said in captions
    else:
        assert "English" not in captions


def test_benchmarks_page_lists_my_notes_misses_and_opens_both_passages(env):
    """The "test my own notes" section: a report (as the upload produces it) shows hit@1/hit@5 per
    mode and each miss with the passage found and the one expected, each opening its document."""
    from eval.mine import MineQuestion, MineReport, Miss
    from rag.index import open_index

    chunks = open_index(env / "index").chunks
    found, expected = chunks[0], next(c for c in chunks if c.doc_id != chunks[0].doc_id)
    q = MineQuestion(2, "<b>my question</b>", expected.doc_id, "")
    rep = MineReport(1, "hybrid", {"bm25": {"hit@1": 0.0, "hit@5": 0.0}, "hybrid": {"hit@1": 0.0, "hit@5": 0.0}},
                     (Miss(q, expected.doc_id, found, expected),), 0.5)
    at = new_app(lang="en")
    goto(at, "benchmarks")
    at.session_state["mine_report"] = ("mine.csv", rep)
    ok(at.run())
    assert "Test my own notes" in [h.value for h in at.subheader]
    assert any("1 questions the default search (hybrid) misses" in m for m in md(at))
    assert [e.label for e in at.expander if "my question" in e.label]
    button(at, "mine-e-0").click()
    ok(at.run())
    assert at.session_state["source_doc"] == expected.doc_id
    assert "← Back to the benchmarks" in [b.label for b in at.button]


# --- study pages ------------------------------------------------------------------------------------


def review_one(at, rating: str = "good") -> str:
    """Show the card's back (unless it is shown) and rate it; returns the front."""
    front = [m for m in md(at) if "studyrag-card-front" in m][0]
    if "fc-show" in [b.key for b in at.button]:
        button(at, "fc-show").click()
        ok(at.run())
    button(at, f"rate-{rating}").click()
    ok(at.run())
    return front


def test_flashcards_review_with_fsrs_and_a_daily_new_limit(env):
    at = new_app(lang="zh")
    goto(at, "flashcards")
    assert title(at) == "闪卡"
    front = [m for m in md(at) if "studyrag-card-front" in m][0]
    assert "什么是分词" in front  # the ja/zh twin card is shown in Chinese
    button(at, "fc-show").click()
    ok(at.run())
    [back] = [m for m in md(at) if "studyrag-cited-text" in m]
    assert '<label for="sr-card-1" class="studyrag-cite"' in back and "sr-panel" in back
    assert {"rate-again", "rate-hard", "rate-good", "rate-easy"} <= {b.key for b in at.button}
    assert any(b.key == "rate-good" and "良好" in b.label for b in at.button)
    # one click from its source, and back
    button(at, "fc-source").click()
    ok(at.run())
    assert title(at) == "资料" and any('id="cited"' in m for m in md(at))
    button(at, "source-back").click()
    ok(at.run())
    assert title(at) == "闪卡" and "fc-show" not in [b.key for b in at.button]  # the card as it was left
    fronts = [review_one(at, rating) for rating in ("good", "again", "easy")]
    assert len(set(fronts)) == 3
    s = store(env)
    reviews = s.reviews(s.profile("learner").id)
    assert [r.rating for r in reviews] == [3, 1, 4]
    # a reload keeps the progress
    again = new_app({"profile": "learner"}, lang="en")
    goto(again, "flashcards")
    assert any("Reviewed today: 3" in c for c in texts(again.caption))
    # the daily limit of new cards
    again.number_input(key="fc_new_per_day").set_value(3)
    ok(again.run())
    [counts] = [c for c in texts(again.caption) if c.startswith("Due now")]
    assert "New today: 0 ·" in counts  # three new cards started today: the limit is reached


def test_quiz_with_explanations_and_a_per_topic_score(env):
    at = new_app(lang="ja")
    goto(at, "quiz")
    at.selectbox(key="quiz_n").set_value(5)
    ok(at.run())
    button(at, "quiz-new").click()
    ok(at.run())
    for i in range(5):
        assert f"{i + 1}問目" in " ".join(texts(at.caption))
        radio = at.radio(key=f"quiz_choice_{i}")
        assert len(radio.options) == 4 and len(set(radio.options)) == 4
        button(at, "quiz-check").click()
        ok(at.run())
        assert "先に答えを選んでください。" in texts(at.warning)
        at.radio(key=f"quiz_choice_{i}").set_value(i % 4)
        button(at, "quiz-check").click()
        ok(at.run())
        right = at.session_state["_state.Quiz"].questions[i].answer == i % 4
        assert (len(at.success), len(at.error)) == ((1, 0) if right else (0, 1))
        assert any("studyrag-cited-text" in m and "sr-panel" in m for m in md(at))
        button(at, "quiz-next").click()
        ok(at.run())
    assert any(re.match(r"5問中\d問正解", s) for s in texts(at.subheader))
    table = [m for m in md(at) if "studyrag-topic-score" in m]
    assert len(table) == 1 and "<th>トピック</th><th>正解</th><th>問題数</th>" in table[0]


def test_mock_interview_prompts_grades_and_says_when_the_notes_do_not_cover(env):
    at = new_app(lang="en")
    goto(at, "drill")
    assert title(at) == "Mock interview"
    # an empty answer: a prompt, not a grade
    button(at, "drill-grade").click()
    ok(at.run())
    ref = at.session_state["_state.Drill"].ref
    if ref.coverage.covered and ref.points:  # an empty answer to a question the notes answer: a prompt
        assert any("Type your answer first" in w for w in texts(at.warning)) and not at.info
    else:  # the notes do not answer it: said first, whatever the answer
        assert any("do not cover" in i for i in texts(at.info)) and not at.warning
    # a flashcard question answered with the notes' own words
    at.radio(key="drill_from").set_value("cards")
    ok(at.run())
    assert at.selectbox(key="drill_q_cards").value.startswith("トークナイゼーション")
    at.text_area(key="drill_answer").set_value("")
    button(at, "drill-grade").click()
    ok(at.run())
    assert any("Type your answer first" in w for w in texts(at.warning))
    at.text_area(key="drill_answer").set_value(
        "トークナイゼーションは、テキストを単語、サブワード、文字などの小さな単位に分割する処理です。"
        "語彙を管理しやすくし、未知語にも対応できます。"
    )
    button(at, "drill-grade").click()
    ok(at.run())
    verdict = texts(at.success) + texts(at.warning) + texts(at.error)
    assert any(v.startswith(("**Good**", "**Partly there**", "**Not yet**")) for v in verdict)
    # graded against the card's own passages (its Q&A item), not a search for its question
    ref = at.session_state["_state.Drill"].ref
    assert ref.points and not ref.hits and all(p.source.doc_id.startswith("llm-interview-top50") for p in ref.points)
    [points] = [m for m in md(at) if "sr-drill" in m]
    assert "Points you" in points and '<label for="sr-drill-1" class="studyrag-cite"' in points


def test_mock_interview_on_a_question_the_notes_do_not_answer(env, monkeypatch):
    from rag.relevance import Judgement

    # the answerer's coverage decision says no for everything (the drill uses the same one)
    monkeypatch.setattr("rag.relevance.judge", lambda *a, **k: Judgement(0.0, False))
    at = new_app(lang="ja")
    goto(at, "drill")
    assert at.radio(key="drill_from").value == "list"
    at.text_area(key="drill_answer").set_value("分散推論にはテンソル並列とバッチングを使います。")
    button(at, "drill-grade").click()
    ok(at.run())
    assert any("ノートにありません" in i and "模範解答は作らず" in i for i in texts(at.info))
    assert not [m for m in md(at) if "sr-drill" in m]


def test_progress_page_shows_figures_and_plots(env):
    at = new_app(lang="en")
    goto(at, "progress")
    assert "No reviews yet: start with the flashcards." in texts(at.info)
    goto(at, "flashcards")
    review_one(at, "good")
    review_one(at, "again")
    goto(at, "progress")
    metrics = {m.label: m.value for m in at.metric}
    assert set(metrics) == {"Due now", "Due today", "New cards left today", "Remembered (30 days)"}
    assert metrics["New cards left today"] == "18"
    charts = at.get("vega_lite_chart")
    assert len(charts) == 1  # reviews per day; mastery per topic is text (every topic named)
    assert any('class="studyrag-mastery"' in m for m in md(at))


def test_the_reviews_per_day_legend_names_each_part_of_the_bar(env):
    """The bar of a day is its reviews, in two parts: the remembered part's legend said "Reviews"
    (the whole bar's name)."""
    at = new_app(lang="en")
    goto(at, "flashcards")
    review_one(at, "good")
    review_one(at, "again")
    goto(at, "progress")
    [chart] = at.get("vega_lite_chart")
    spec = json.loads(chart.proto.spec)
    assert spec["encoding"]["color"]["scale"]["domain"] == ["Remembered", "Forgotten"]
    assert spec["encoding"]["y"]["title"] == "Reviews"


def test_export_and_import_progress(env):
    from study.export import write_progress

    at = new_app(lang="en")
    goto(at, "flashcards")
    review_one(at, "good")
    goto(at, "export")
    downloads = at.get("download_button")
    assert len(downloads) == 3
    s = store(env)
    exported = env / "progress.json"
    write_progress(exported, s, "learner")
    at.file_uploader[0].set_value([("progress.json", exported.read_bytes(), "application/json")])
    ok(at.run())
    button(at, "exp-import").click()
    ok(at.run())
    assert any(m.startswith("Imported ") for m in texts(at.success))
    for bad, why, detail in (
        (b"{not json", "damaged, cut short", "not JSON"),
        (json.dumps({"format": "other"}).encode(), "Download my progress", "format"),
    ):
        at.file_uploader[0].set_value([("mine.json", bad, "application/json")])
        ok(at.run())
        button(at, "exp-import").click()
        ok(at.run())
        [err] = texts(at.error)
        assert err.startswith("This file was not imported, and your progress is unchanged") and why in err
        said = " ".join(texts(at.caption))
        assert "Details: mine.json is not a StudyRAG progress file" in said and detail in said and "/tmp" not in said
    assert len(s.reviews(s.profile("learner").id)) == 1


def test_study_store_file_is_a_real_sqlite_database(env):
    at = new_app(lang="en")
    goto(at, "flashcards")
    con = sqlite3.connect(env / "data" / "study.sqlite3")
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()
