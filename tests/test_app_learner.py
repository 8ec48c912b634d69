"""The app and the command line as a learner meets them (issue 17): uploads and quick runs in the
data folder, the answer language English, the quiz, labels, CLI profiles and a deck without
scheduling state. AppTest on the fake encoder, as tests/test_app.py (whose fixtures these use).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from conftest import ROOT, FakeEncoder
from test_app import GOOD_UPLOAD, answers, ask, button, env, fake_built, goto, md, new_app, ok, texts  # noqa: F401


@pytest.fixture(scope="module")
def real_index(real_index, tmp_path_factory) -> Path:
    """This module's copy of the real index (conftest builds it once per run)."""
    from conftest import copy_of_real_index

    return copy_of_real_index(real_index, tmp_path_factory, "real-learner")


# --- 10: the learner's files live in the data folder ----------------------------------------------


def test_an_upload_is_saved_in_the_data_folder_and_indexed_from_there(env):
    at = new_app(lang="en")
    goto(at, "add")
    at.file_uploader[0].set_value([("photosynthesis.md", GOOD_UPLOAD.encode(), "text/markdown")])
    ok(at.run())
    button(at, "add-files").click()
    ok(at.run())
    assert any("Added photosynthesis.md." in s for s in texts(at.success))
    assert (env / "data" / "uploads" / "photosynthesis.md").read_text(encoding="utf-8") == GOOD_UPLOAD
    assert not (env / "corpus" / "uploads").exists()  # nothing written into the notes folder
    build = env / "index" / "builds" / (env / "index" / "CURRENT").read_text().strip()
    manifest = json.loads((build / "manifest.json").read_text())
    assert "uploads/photosynthesis.md" in manifest["documents"]
    again = new_app(lang="en")
    ask(again, "What does the Calvin cycle do in photosynthesis?")
    assert any("Calvin" in a for a in answers(again))
    # the index is not stale: the Add page offers no re-read of the upload
    goto(again, "add")
    assert not again.warning
    assert any("photosynthesis.md" in c.value for c in again.caption)


def test_a_rebuild_keeps_the_data_folders_uploads(env):
    from ingest.uploads import save_uploads, update_index
    from rag.corpus import stale_documents
    from rag.index import open_index

    uploads = env / "data" / "uploads"
    r = save_uploads([("mine.md", GOOD_UPLOAD.encode())], env / "corpus", uploads=uploads)
    assert r.saved == ["uploads/mine.md"] and (uploads / "mine.md").is_file()
    assert stale_documents(open_index(env / "index").manifest, env / "corpus", uploads=uploads) == ["uploads/mine.md"]
    update_index(env / "corpus", env / "index", FakeEncoder(), rebuild=True, uploads=uploads)
    index = open_index(env / "index")
    assert "uploads/mine.md" in index.documents
    assert stale_documents(index.manifest, env / "corpus", uploads=uploads) == []
    # the same bytes again are "unchanged", found in the uploads folder
    again = save_uploads([("copy.md", GOOD_UPLOAD.encode())], env / "corpus", uploads=uploads)
    assert again.unchanged == ["uploads/mine.md"] and not again.saved


def test_the_ingest_command_reads_the_data_folders_uploads(tmp_path):
    from rag.encoders import register_encoder

    register_encoder("fake-ngram-64", FakeEncoder)
    corpus, data = tmp_path / "corpus", tmp_path / "data"
    corpus.mkdir()
    (corpus / "seed.md").write_text("# Seed\n\nThe seed note says hello.\n", encoding="utf-8")
    (data / "uploads").mkdir(parents=True)
    (data / "uploads" / "mine.md").write_text(GOOD_UPLOAD, encoding="utf-8")
    from rag.context import resolve

    assert resolve(data=data).uploads == data / "uploads"
    from ingest.cli import main

    try:
        code = main(["--corpus", str(corpus), "--index", str(tmp_path / "index"), "--data", str(data), "--quiet",
                     "--encoder", "fake-ngram-64"])
    finally:
        register_encoder("fake-ngram-64", None)
    assert code == 0
    from rag.index import open_index

    assert set(open_index(tmp_path / "index").documents) == {"seed.md", "uploads/mine.md"}
    from ingest.loader import load_corpus

    assert [d.doc_id for d in load_corpus(corpus, uploads=data / "uploads")] == ["seed.md", "uploads/mine.md"]
    assert [d.doc_id for d in load_corpus(corpus)] == ["seed.md"]


def test_an_upload_named_like_a_corpus_file_under_uploads_is_skipped_with_a_reason(tmp_path):
    from ingest.loader import load_corpus

    corpus, uploads = tmp_path / "corpus", tmp_path / "data" / "uploads"
    (corpus / "uploads").mkdir(parents=True)
    uploads.mkdir(parents=True)
    (corpus / "uploads" / "x.md").write_text("# Old\n\nThe older copy in the notes folder.\n", encoding="utf-8")
    (uploads / "x.md").write_text("# New\n\nThe copy in the data folder.\n", encoding="utf-8")
    skipped = []
    docs = load_corpus(corpus, uploads=uploads, on_skip=skipped.append)
    assert [d.doc_id for d in docs] == ["uploads/x.md"] and "older copy" in docs[0].text
    assert len(skipped) == 1 and "corpus folder has a file of this name" in skipped[0].message()


def test_quick_runs_default_to_the_data_folder(env, monkeypatch):
    from ui import state

    monkeypatch.delenv("STUDYRAG_EVAL_RUNS")
    assert state.runs_dir() == env / "data" / "runs"
    assert ROOT not in state.runs_dir().parents


# --- 11: the command line without the app ------------------------------------------------------------


@pytest.fixture
def study_dirs(corpus_fake_index, tmp_path):
    return corpus_fake_index[0], tmp_path / "data"


def _study(capsys, *argv):
    from study import cli

    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_profiles_add_then_export_with_it(study_dirs, capsys, tmp_path):
    index_dir, data = study_dirs
    code, out, err = _study(capsys, "profiles", "add", "mei", "--data", data)
    assert code == 0 and out.splitlines() == ["mei"], err
    assert _study(capsys, "profiles", "add", "ana", "--data", data)[1].splitlines() == ["ana", "mei"]
    where = ("--index", index_dir, "--data", data)
    code, out, err = _study(capsys, "export", "--anki", tmp_path / "m.apkg", "--profile", "mei", *where)
    assert code == 0 and "wrote" in out, err
    code, _, err = _study(capsys, "profiles", "add", "--data", data)
    assert code == 2 and err.startswith("error:") and "needs a NAME" in err
    code, _, err = _study(capsys, "profiles", "remove", "x", "--data", data)
    assert code == 2 and err.startswith("error:") and "Traceback" not in err
    code, _, err = _study(capsys, "export", "--anki", tmp_path / "x.apkg", "--profile", "nobody", *where)
    assert code == 2 and "no profile named 'nobody'" in err and "profiles add NAME" in err


def _anki_cards(path: Path) -> list[tuple]:
    import sqlite3
    import zipfile

    with zipfile.ZipFile(path) as z:
        db = path.with_suffix(".anki2")
        db.write_bytes(z.read("collection.anki2"))
    conn = sqlite3.connect(db)
    try:
        decks = json.loads(conn.execute("SELECT decks FROM col").fetchone()[0])
        rows = conn.execute("SELECT type, queue, ivl, reps, lapses FROM cards").fetchall()
    finally:
        conn.close()
    return [d["name"] for d in decks.values()], rows


def test_export_without_a_profile_writes_a_deck_with_no_scheduling_state(study_dirs, capsys, tmp_path):
    index_dir, data = study_dirs
    code, out, err = _study(capsys, "export", "--anki", tmp_path / "deck.apkg", "--index", index_dir, "--data", data)
    assert code == 0 and "wrote" in out and "(139 cards)" in out, err
    names, rows = _anki_cards(tmp_path / "deck.apkg")
    assert "StudyRAG" in names and len(rows) == 139
    assert all(r == (0, 0, 0, 0, 0) for r in rows)  # every card new: no type, queue, interval, reviews
    # a learner who reviewed a card: with the profile the card is scheduled, without it new
    from study.schedule import review
    from study.store import Store

    with Store.open(data) as store:
        p = store.add_profile("mei")
        card = store.cards()[0].card
        review(store, p.id, card.id, "good")
    _study(capsys, "export", "--anki", tmp_path / "mei.apkg", "--profile", "mei", "--index", index_dir, "--data", data)
    assert sum(r[3] for r in _anki_cards(tmp_path / "mei.apkg")[1]) == 1
    _study(capsys, "export", "--anki", tmp_path / "again.apkg", "--index", index_dir, "--data", data)
    assert all(r == (0, 0, 0, 0, 0) for r in _anki_cards(tmp_path / "again.apkg")[1])
    code, out, err = _study(capsys, "export", "--json", tmp_path / "p.json", "--index", index_dir, "--data", data)
    assert code == 2 and "--profile" in err
    code, out, err = _study(capsys, "export", "--csv", tmp_path / "d.csv", "--index", index_dir, "--data", data)
    assert code == 0, err
    text = (tmp_path / "d.csv").read_text(encoding="utf-8-sig")
    assert text.count(",new,") >= 139


# --- 6: the quiz ---------------------------------------------------------------------------------------


def test_the_quiz_size_follows_the_choice_at_once_and_the_score_is_per_section(env):
    import html as html_lib
    import re

    at = new_app(lang="ja")
    goto(at, "quiz")
    assert "10問中1問目" in " ".join(texts(at.caption))
    at.selectbox(key="quiz_n").set_value(5)
    ok(at.run())
    assert "5問中1問目" in " ".join(texts(at.caption))  # no "new quiz" needed
    for i in range(5):
        at.radio(key=f"quiz_choice_{i}").set_value(0)
        button(at, "quiz-check").click()
        ok(at.run())
        button(at, "quiz-next").click()
        ok(at.run())
    table = [m for m in md(at) if "studyrag-topic-score" in m][0]
    rows = [html_lib.unescape(x) for x in re.findall(r'<tr class="topic"><td>(.*?)</td>', table)]
    from rag.index import open_index

    titles = {d.title for d in open_index(env / "index").documents.values()}
    assert rows and not set(rows) & titles, rows  # sections of the notes, not the Q&A list's title
    assert sum(int(n) for n in re.findall(r"<td>\d+</td><td>(\d+)</td></tr>", table)) == 5


def test_quiz_options_hide_the_words_that_give_the_answer_away(env):
    from rag.index import open_index
    from study.cards import cards_from_index
    from study.quiz import card_vectors, giveaway, make_quiz

    index = open_index(env / "index")
    cards = cards_from_index(index)
    vectors = card_vectors(cards, index)
    shown = make_quiz(cards, vectors, n=40, lang="zh", seed=1, pool=3, hide=False)
    hidden = make_quiz(cards, vectors, n=40, lang="zh", seed=1)
    before = sum(bool(giveaway(q.prompt, [o.text for o in q.options], q.answer)) for q in shown)
    after = sum(bool(giveaway(q.prompt, [o.text for o in q.options], q.answer)) for q in hidden)
    print(f"\nright option the only one with a key term of the question: {before}/40 -> {after}/40")
    assert after < before / 3
    assert any("＿＿" in o.text for q in hidden for o in q.options if o.card_id != q.card_id)  # blanks everywhere


# --- 5: the answer language English --------------------------------------------------------------------


class _StubbornLLM:
    """A local OpenAI-compatible endpoint that, like a small model, first answers in the
    language of the passages (Japanese) and writes English only when asked again for it."""

    def __init__(self):
        import threading
        from http.server import BaseHTTPRequestHandler, HTTPServer

        outer = self
        self.requests: list[dict] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append(body)
                last = body["messages"][-1]["content"]
                english = "again in English" in last
                reply = "LoRA trains small low-rank matrices instead of all weights [1]." if english else (
                    "LoRAは低ランク行列だけを学習します[1]。"
                )
                data = json.dumps({"choices": [{"message": {"role": "assistant", "content": reply}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *a):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stubborn_llm():
    llm = _StubbornLLM()
    yield llm
    llm.close()


def test_english_says_the_notes_have_no_english_and_how_to_get_english_answers(env):
    import streamlit as st

    from ingest.uploads import update_index

    at = new_app(lang="en")
    at.selectbox(key="answer_lang").set_value("en")
    ok(at.run())
    assert not any("no English text" in c.value for c in at.sidebar.caption)  # the XSS note is English
    (env / "corpus" / "xss-note.md").unlink()
    update_index(env / "corpus", env / "index", FakeEncoder())
    st.cache_resource.clear()
    at = new_app(lang="en")
    at.selectbox(key="answer_lang").set_value("en")
    ok(at.run())
    said = " ".join(c.value for c in at.sidebar.caption)
    assert "Your notes have no English text" in said and "A language-model server" in said
    assert "Japanese" in said and "Chinese" in said
    at = new_app(lang="ja")
    at.selectbox(key="answer_lang").set_value("en")
    ok(at.run())
    assert any("ノートには英語の文章がない" in c.value for c in at.sidebar.caption)
    at.selectbox(key="answer_lang").set_value("ja")  # the notes have Japanese: nothing to say
    ok(at.run())
    assert not any("文章がない" in c.value for c in at.sidebar.caption)


def test_english_from_the_endpoint_even_when_it_first_answers_in_the_notes_language(env, stubborn_llm):
    at = new_app(lang="en")
    at.selectbox(key="answer_lang").set_value("en")
    at.radio(key="answerer").set_value("endpoint")
    ok(at.run())
    at.text_input(key="llm_url").set_value(stubborn_llm.url)
    at.text_input(key="llm_model").set_value("tiny")
    ok(at.run())
    assert any("writes the answer in English" in c.value for c in at.sidebar.caption)
    ask(at, "LoRAとQLoRAの違いは？")
    shown = answers(at)[-1].split('<div class="sr-panels">')[0]
    turn = at.session_state["_state.Chat"].turns[-1]
    assert "instead of all weights" in shown, (turn.answerer, turn.error, turn.note, len(stubborn_llm.requests))
    assert "低ランク" not in shown
    first = stubborn_llm.requests[0]["messages"]
    assert "in English" in first[0]["content"] and first[-1]["content"].endswith("Answer in English.")
    assert len(stubborn_llm.requests) == 2  # asked once more, in so many words


def test_an_endpoint_answer_already_in_the_asked_language_is_not_asked_again(env, stubborn_llm):
    at = new_app(lang="ja")
    at.radio(key="answerer").set_value("endpoint")
    ok(at.run())
    at.text_input(key="llm_url").set_value(stubborn_llm.url)
    at.text_input(key="llm_model").set_value("tiny")
    ok(at.run())
    ask(at, "LoRAとQLoRAの違いは？")
    assert "低ランク" in answers(at)[-1] and len(stubborn_llm.requests) == 1


# --- 8: labels and layout ------------------------------------------------------------------------------


def test_the_upload_message_follows_the_interface_language(env):
    at = new_app(lang="ja")
    goto(at, "add")
    assert any("アップロード" in m for m in md(at) + [h.value for h in at.get("html")] if isinstance(m, str))
    at.file_uploader[0].set_value([("photosynthesis.md", GOOD_UPLOAD.encode(), "text/markdown")])
    ok(at.run())
    button(at, "add-files").click()
    ok(at.run())
    assert any("を追加しました" in s for s in texts(at.success))
    at.selectbox(key="ui_lang").set_value("zh")
    ok(at.run())
    shown = texts(at.success)
    assert any(s.startswith("已添加") for s in shown) and not any("を追加" in s for s in shown)


def test_every_topic_is_named_in_the_interface_language_on_the_progress_page(env):
    import html as html_lib
    import re

    at = new_app(lang="zh")
    goto(at, "progress")
    bars = [m for m in md(at) if 'class="studyrag-mastery"' in m][0]
    names = [html_lib.unescape(x) for x in re.findall(r'<div class="topic">(.*?)</div>', bars)]
    assert len(names) >= 10 and len(set(names)) == len(names)
    assert any(n.endswith("— 引言") for n in names) and not any(n.endswith("はじめに") for n in names)
    assert not any("llm-technical-foundations-ja" in n for n in names)  # shown titles, not file names


def test_citation_headings_name_each_part_once():
    from ui.notes import panel_head

    assert panel_head("Zorblax caching", "Zorblax caching") == "Zorblax caching"
    assert panel_head("Notes", "Q3. What is RAG?") == "Notes · Q3. What is RAG?"
    assert panel_head("", "A") == "A" and panel_head("A", "a") == "A"


def test_report_headings_are_never_cut_inside_brackets():
    from ui.reports import _heading

    line = "## Answers (`python -m eval answers`, details in [answers.md](answers.md))"
    assert _heading(line) == ["## Answers", "", "`python -m eval answers`, details in [answers.md](answers.md)", ""]
    long = "## seed — test split, 116 queries over 159 chunks (5 documents); index build 1.7 s"
    assert _heading(long)[0] == "## seed"
    odd = "## A very long heading (with, a comma inside the bracket) and no other place to cut it at all"
    assert _heading(odd) == [odd]


def test_quiz_masking_hides_a_term_and_its_inflections():
    from study.quiz import mask

    assert mask("分词是将文本分解的过程。", {"分词"}, "zh") == "＿＿是将文本分解的过程。"
    assert mask("Tokenization splits text; tokenizing is fast.", {"token"}, "en") == "___ splits text; ___ is fast."
    assert mask("LoRA and QLoRA", set(), "en") == "LoRA and QLoRA"


# --- 9: the quick benchmark reads the app's index ---------------------------------------------------------


@pytest.mark.model
def test_the_quick_benchmark_searches_the_apps_index_instead_of_building_one(real_index, tmp_path):
    """Prints the time (the machine is shared: no timed assertion); checks that no index was
    built and that the scores are the ones of the seed set's held-out half."""
    import os
    import subprocess
    import time

    from ui.reports import quick_command

    out = tmp_path / "data" / "runs" / "quick"
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    t0 = time.perf_counter()
    proc = subprocess.run(
        quick_command(out, index=real_index), cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200
    )
    seconds = time.perf_counter() - t0
    print(f"\nquick benchmark on the app's index: {seconds:.1f} s (40 held-out seed questions, hybrid + rerank)")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "building an index" not in proc.stderr and "not using" not in proc.stderr
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))["results"]["seed"]
    assert results["queries"] == 40 and results["index_build_s"] < 5  # a read, not an embedding run
    assert results["modes"]["hybrid"]["hit@1"] > 0.5
    assert not (ROOT / "eval" / "runs" / "quick" / "results.json").exists() or (
        (ROOT / "eval" / "runs" / "quick" / "results.json").stat().st_mtime < t0
    )  # nothing written into the checkout


def test_the_quick_benchmark_builds_an_index_when_the_given_one_holds_other_notes(tmp_path, corpus_fake_index):
    from eval.cli import prebuilt_index
    from eval.datasets import load_seed

    ds = load_seed()
    built, why = prebuilt_index(corpus_fake_index[0], ds)
    assert built is not None and why == ""  # the same documents: used as it is
    other = tmp_path / "corpus"
    other.mkdir()
    (other / "x.md").write_text("# X\n\nSomething else entirely.\n", encoding="utf-8")
    from ingest.pipeline import ingest

    ingest(other, tmp_path / "index", encoder=FakeEncoder())
    built, why = prebuilt_index(tmp_path / "index", ds)
    assert built is None and "seed documents differ" in why


def test_an_uploads_original_file_is_found_in_the_data_folder(tmp_path):
    import hashlib

    from ui.pdfview import original_bytes

    corpus, uploads = tmp_path / "corpus", tmp_path / "data" / "uploads"
    corpus.mkdir()
    uploads.mkdir(parents=True)
    data = b"%PDF-1.4 not really a pdf, only its bytes"
    (uploads / "paper.pdf").write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    assert original_bytes(corpus, "uploads/paper.pdf", sha, uploads=uploads) == data
    assert original_bytes(corpus, "uploads/paper.pdf", sha) is None  # not in the checkout
    assert original_bytes(corpus, "uploads/paper.pdf", "0" * 64, uploads=uploads) is None  # changed since
