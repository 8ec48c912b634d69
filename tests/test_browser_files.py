"""A learner's own files, uploaded through the app (eval/results/walkthrough-files-2026-12b.md):
files the app refuses are refused in the interface language, a file whose name says one format
and whose bytes another is named for what it is, and what was added before stays.

Same set-up as tests/test_browser.py (Debian's Chromium, `streamlit run app.py` over tmp copies
of the corpus and the real index).
"""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path

import pytest
from test_browser import app_url, browser, open_app, shot  # noqa: F401 -- module fixtures

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
import make_fixtures  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.model]


@pytest.fixture(scope="module")
def real_index(real_index, tmp_path_factory) -> Path:
    """This module's copy of the real index (conftest builds it once per run)."""
    from conftest import copy_of_real_index

    return copy_of_real_index(real_index, tmp_path_factory, "real-files")


def _word_file(paragraphs: list[str]) -> bytes:
    import docx

    d = docx.Document()
    for p in paragraphs:
        d.add_paragraph(p)
    out = io.BytesIO()
    d.save(out)
    return out.getvalue()


def _add_ask_and_open_first_citation(page, path, question: str):
    """In the Japanese interface: add ``path``, ask ``question``, open the answer's first
    citation; its panel."""
    page.get_by_role("link", name="資料を追加").click()
    page.get_by_role("heading", name="資料を追加").wait_for()
    page.locator("input[type='file']").set_input_files(str(path))
    page.get_by_role("button", name="ノートに追加").click()
    page.get_by_text(f"{path.name} を追加しました").wait_for(timeout=300_000)
    page.get_by_role("link", name="質問する").click()
    page.locator("textarea").first.fill(question)
    page.get_by_role("button", name="質問する", exact=True).click()
    answer = page.locator(".studyrag-answer").first
    answer.locator("label.studyrag-cite").first.wait_for(timeout=60_000)
    answer.locator("label.studyrag-cite").first.click()
    panel = answer.locator(".sr-panel").first
    panel.wait_for(state="visible")
    return panel


def test_refused_uploads_say_why_in_japanese_and_name_a_misnamed_file_for_what_it_is(browser, app_url, tmp_path):
    """A damaged PDF, a Word file saved as .pdf, an empty Word file and a 0-byte text file are
    refused each with its reason in Japanese (no English, no stray bracket); the note added
    before them is still listed."""
    files = {
        "kept-note.md": "# 保存のテスト\n\nこのノートはエラーのあとも残るはずです。\n".encode(),
        "broken.pdf": b"%PDF-1.7\n1 0 obj <</Type/Catalog" + b"\x00garbage" * 50,
        "lecture.pdf": _word_file(["操作系统复习笔记", "进程是资源分配的基本单位。"]),
        "blank.docx": _word_file([]),
        "zero.txt": b"",
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    ctx, page, _ = open_app(browser, app_url, locale="ja-JP")
    try:
        page.get_by_role("link", name="資料を追加").click()
        page.get_by_role("heading", name="資料を追加").wait_for()
        page.locator("input[type='file']").set_input_files(str(tmp_path / "kept-note.md"))
        page.get_by_role("button", name="ノートに追加").click()
        page.get_by_text("kept-note.md を追加しました").wait_for(timeout=180_000)
        # the uploader is replaced by a fresh one (its file cleared): wait until only that one is left
        page.wait_for_function("() => document.querySelectorAll(\"input[type='file']\").length === 1", timeout=30_000)
        page.locator("input[type='file']").set_input_files([str(tmp_path / n) for n in files if n != "kept-note.md"])
        page.get_by_role("button", name="ノートに追加").click()
        alerts = page.locator("[data-testid='stAlert']")
        alerts.filter(has_text="zero.txt").first.wait_for(timeout=180_000)
        said = "\n".join(alerts.all_inner_texts())
        shot(page, "refused-uploads-ja.png")
        assert said.count("追加しませんでした") == 4, said
        assert "broken.pdf" in said and "PDFが壊れています（Data format error）" in said, said
        assert "lecture.pdf" in said and "中身はWordのファイルです" in said and ".docx" in said, said
        assert "blank.docx" in said and "ファイルに文字が見つかりません" in said, said
        assert "zero.txt" in said and "ファイルが空です" in said, said
        for english in ("damaged", "no text found", "the file is empty", ").)"):
            assert english not in said, said
        assert "kept-note.md" in page.get_by_text("これまでに追加したファイル").inner_text()
    finally:
        ctx.close()


LECTURE = """<h1>機械学習入門 第3回 講義ノート</h1>
<h2>1. 勾配降下法</h2>
<p>勾配降下法は、損失関数の勾配の逆方向にパラメータを少しずつ動かして最小値を探す最適化手法である。</p>
<ol><li>パラメータを乱数で初期化する。</li><li>ミニバッチで損失関数の勾配を計算する。</li>
<li>学習率を掛けた勾配をパラメータから引く。</li></ol>
<h2>最適化手法の比較</h2>
<table style="border-collapse:collapse" border="1"><tr><th>手法</th><th>特徴</th><th>代表的な学習率</th></tr>
<tr><td>SGD</td><td>単純で汎化性能が高い</td><td>0.1</td></tr>
<tr><td>Momentum</td><td>過去の勾配を慣性として使い振動を抑える</td><td>0.01</td></tr>
<tr><td>Adam</td><td>一次と二次のモーメントで学習率を自動調整する</td><td>0.001</td></tr></table>
<h2>2. 実装例</h2>
<p>以下はPythonによる勾配降下法の最小限の実装である。</p>
<pre><code>def gradient_descent(grad, w, lr=0.01, steps=100):
    for _ in range(steps):
        w = w - lr * grad(w)
    return w</code></pre>
<div style="page-break-before:always"></div>
<h2>3. 過学習と正則化</h2>
<p>過学習とは、訓練データには良く適合するが未知のデータに対する性能が低下する現象である。</p>
"""
def _lecture_pdf(path: Path, title: str) -> Path:
    """:data:`LECTURE` printed to PDF by Chromium under ``title``."""
    make_fixtures.print_pdf(
        f'<!doctype html><html lang="ja"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{make_fixtures.CSS}</style></head><body>{LECTURE}</body></html>",
        path,
    )
    return path


CODE = "def gradient_descent(grad, w, lr=0.01, steps=100):\n    for _ in range(steps):\n        w = w - lr * grad(w)\n    return w"


def test_a_code_block_in_a_printed_pdf_keeps_its_lines_and_indents_in_the_panel_and_the_document(
    browser, app_url, tmp_path
):
    """Lecture notes printed to PDF by a browser: the code block is read as code (PDFium names
    no font here; its letters all advance by one width), so the citation panel and the document
    show it as a block with its indentation, not as prose lines run together; a highlight that
    ends with the block leaves it closed (the next heading is a heading, not code)."""
    pdf = _lecture_pdf(tmp_path / "ml-lecture-03.pdf", "機械学習入門 第3回")
    ctx, page, _ = open_app(browser, app_url, locale="ja-JP")
    try:
        panel = _add_ask_and_open_first_citation(page, pdf, "Pythonで勾配降下法をどう実装しますか？")
        assert "p. 1" in panel.inner_text()
        assert CODE in "\n".join(panel.locator(".studyrag-code").all_inner_texts()), panel.inner_text()
        shot(page, "pdf-code-panel.png")
        page.get_by_role("button", name="[1] を資料の中で開く").click()
        page.locator(".studyrag-pdfpage img").wait_for(timeout=30_000)
        assert page.get_by_text("原本のページ: p. 1").is_visible()
        page.locator(".studyrag-document .studyrag-code").first.wait_for(timeout=30_000)
        assert CODE in "\n".join(page.locator(".studyrag-document .studyrag-code").all_inner_texts())
        shown = page.locator(".studyrag-document").inner_text()
        assert "```" not in shown and "## 3." not in shown, shown  # the block closes where it ends
        assert page.locator(".studyrag-document [role='heading']", has_text="過学習と正則化").is_visible()
        shot(page, "pdf-code-document.png")
    finally:
        ctx.close()


def test_word_steps_keep_their_numbers_and_pasted_code_its_lines_in_the_answer_and_the_document(
    browser, app_url, tmp_path
):
    """Word notes as people write them: steps in a numbered list (Word's numbering, no number in
    the text) and code pasted in Consolas, a paragraph per line. The answer gives the steps as
    1. 2. 3., and the document shows the code as one block with its indentation (not bullets, not
    prose lines run together)."""
    import docx

    d = docx.Document()
    d.add_heading("RAGの実装メモ", 0)
    d.add_heading("RAGの手順", 1)
    d.add_paragraph("RAGは次の順に処理します：")
    for step in ("質問を埋め込みベクトルに変換する", "近い文書をベクトル検索で探す", "見つけた文書を添えて回答を生成する"):
        d.add_paragraph(step, style="List Number")
    d.add_heading("検索の実装例", 1)
    d.add_paragraph("FAISSで上位k件を検索するコードです。")
    code = ["def search(index, q, k=5):", "    D, I = index.search(q, k)", "    return I[0]"]
    for line in code:
        d.add_paragraph().add_run(line).font.name = "Consolas"
    path = tmp_path / "rag-memo.docx"
    d.save(path)
    ctx, page, _ = open_app(browser, app_url, locale="ja-JP")
    try:
        _add_ask_and_open_first_citation(page, path, "RAGの手順を教えて")
        answer = page.locator(".studyrag-answer .studyrag-answer-text").first.inner_text().replace("\u2060", "")
        shot(page, "word-steps-answer.png")
        assert re.search(r"1\. 質問を埋め込みベクトルに変換する.*\n2\. 近い文書をベクトル検索で探す.*\n"
                         r"3\. 見つけた文書を添えて回答を生成する", answer), answer
        page.get_by_role("button", name="[1] を資料の中で開く").click()
        page.locator(".studyrag-document .studyrag-code").first.wait_for(timeout=30_000)
        blocks = page.locator(".studyrag-document .studyrag-code").all_inner_texts()
        shot(page, "word-code-document.png")
        assert any("\n".join(code) in b for b in blocks), blocks
        assert "Consolas" not in page.locator(".studyrag-document").inner_text()
    finally:
        ctx.close()


def test_a_slide_deck_citation_names_its_slide_in_the_interface_language(browser, app_url, tmp_path):
    """A deck with English titles and Japanese bullets: the panel of a cited slide says
    「スライド 3」 in the Japanese interface (not "slide 3"), and the document shows that slide's
    bullets highlighted."""
    from pptx import Presentation

    deck = Presentation()
    for title, bullets in [
        ("Introduction to Databases", ["データベースはデータを構造化して保存する仕組みです"]),
        ("ACID Properties", ["原子性：トランザクションは全て実行されるか全く実行されない", "永続性：コミットした結果は失われない"]),
        ("Indexes", ["インデックスは検索を高速化するデータ構造です", "書き込みは遅くなるというトレードオフがあります"]),
    ]:
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = title
        frame = slide.placeholders[1].text_frame
        frame.text = bullets[0]
        for b in bullets[1:]:
            frame.add_paragraph().text = b
    deck.save(tmp_path / "db-basics.pptx")
    ctx, page, _ = open_app(browser, app_url, locale="ja-JP")
    try:
        panel = _add_ask_and_open_first_citation(page, tmp_path / "db-basics.pptx", "インデックスのトレードオフは？")
        said = panel.inner_text()
        shot(page, "slide-panel-ja.png")
        assert "スライド 3" in said and "slide" not in said, said
        page.get_by_role("button", name="[1] を資料の中で開く").click()
        page.locator("mark#cited").wait_for(timeout=30_000)
        cited = " ".join(page.locator(".studyrag-document mark.studyrag-cited").all_inner_texts())
        assert "トレードオフ" in cited and "原子性" not in cited, cited
    finally:
        ctx.close()


def test_an_upload_while_another_is_read_is_asked_to_wait_in_the_interface_language(browser, app_url, tmp_path):
    """Two learners add PDFs at once: the second is told in Chinese to wait (not an English
    'another upload is still being read'), is not offered the file being read as one "changed in
    the notes folder", keeps the chosen file, and adds it afterwards."""
    for name, paragraphs in (("first.pdf", 600), ("second.pdf", 40)):
        # the first long enough (hundreds of sentences to encode) to be still read when the
        # second learner clicks, on a fast machine too; each sentence its own (no boilerplate)
        make_fixtures.print_pdf(
            '<!doctype html><html lang="zh"><head><meta charset="utf-8">'
            f"<style>{make_fixtures.CSS}</style></head><body><h1>{name}</h1>"
            + "".join(f"<p>第{i}条：进程是资源分配的基本单位，线程{i}是CPU调度的基本单位。</p>" for i in range(paragraphs))
            + "</body></html>",
            tmp_path / name,
        )
    ctx_a, a, _ = open_app(browser, app_url, locale="zh-CN")
    ctx_b, b, _ = open_app(browser, app_url, locale="zh-CN")
    try:
        for page, name in ((a, "first.pdf"), (b, "second.pdf")):
            page.get_by_role("link", name="添加资料").click()
            page.get_by_role("heading", name="添加资料").wait_for()
            page.locator("input[type='file']").set_input_files(str(tmp_path / name))
            page.get_by_role("button", name="添加到笔记").wait_for()
        a.get_by_role("button", name="添加到笔记").click()
        a.locator("[data-testid='stProgress']").first.wait_for(timeout=30_000)  # the first is being read
        b.get_by_role("button", name="添加到笔记").click()
        warning = b.locator("[data-testid='stAlert']").first
        warning.wait_for(timeout=30_000)
        said = warning.inner_text()
        shot(b, "upload-busy-zh.png")
        assert "另一个上传的文件还在读取中" in said and "another upload" not in said, said
        # the file being read is not offered as "changed in the notes folder" to re-read
        assert b.get_by_text("重新读取这些文件").count() == 0 and b.get_by_text("在读取后被修改").count() == 0
        a.get_by_text("已添加 first.pdf").wait_for(timeout=300_000)
        b.get_by_role("button", name="添加到笔记").click()  # the file is still chosen
        b.get_by_text("已添加 second.pdf").wait_for(timeout=300_000)
    finally:
        ctx_a.close()
        ctx_b.close()


def test_code_quoted_in_an_answer_copies_without_invisible_characters(browser, app_url):
    """A code block quoted in an answer is the code as written: no word joiner after its colons
    (Python refuses U+2060 in a pasted line), and still no link in the answer."""
    ctx, page, _ = open_app(browser, app_url)
    try:
        page.locator("textarea").first.fill("How is cosine similarity used in vector search?")
        page.get_by_role("button", name="Ask", exact=True).click()
        code = page.locator(".studyrag-answer .studyrag-answer-text .studyrag-code").first
        code.wait_for(timeout=60_000)
        shown = code.inner_text()
        assert "値の範囲: -1" in shown and "\u2060" not in shown, repr(shown)
        assert page.locator(".studyrag-answer-text a").count() == 0
    finally:
        ctx.close()


def test_chinese_word_notes_are_offered_by_topic_without_their_heading_numbers(browser, app_url, tmp_path):
    """Word notes whose headings are numbered 一、二、三、: the first page lists their topics and
    suggests questions without the numbers (「请介绍一下“进程与线程”。」, not “一、进程与线程”)."""
    import docx

    d = docx.Document()
    d.add_heading("操作系统复习笔记", 0)
    for heading, body in [("一、进程与线程", "进程是资源分配的基本单位，线程是CPU调度的基本单位。"),
                          ("二、死锁", "死锁是指两个或多个进程互相等待对方持有的资源而无法继续执行的状态。"),
                          ("三、页面置换算法", "当内存不足时，操作系统需要选择一个页面换出。")]:
        d.add_heading(heading, 1)
        d.add_paragraph(body)
    d.save(tmp_path / "os-review-zh.docx")
    ctx, page, _ = open_app(browser, app_url, locale="zh-CN")
    try:
        page.get_by_role("link", name="添加资料").click()
        page.get_by_role("heading", name="添加资料").wait_for()
        page.locator("input[type='file']").set_input_files(str(tmp_path / "os-review-zh.docx"))
        page.get_by_role("button", name="添加到笔记").click()
        page.get_by_text("已添加 os-review-zh.docx").wait_for(timeout=300_000)
        page.get_by_role("link", name="提问").click()
        page.locator("[data-testid='stMain'] b", has_text="操作系统复习笔记").first.wait_for(timeout=30_000)
        main = page.locator("[data-testid='stMain']").inner_text()
        shot(page, "word-topics-zh.png")
        assert "进程与线程 · 死锁 · 页面置换算法" in main, main
        assert not re.search(r"[一二三]、", main), main
    finally:
        ctx.close()


def test_a_ruled_table_in_a_printed_pdf_answers_from_its_row_and_highlights_it(browser, app_url, tmp_path):
    """The lecture's table (drawn borders) is read as a table: the answer quotes the Adam row as
    one line naming its columns, and the document shows rows and columns with that row marked
    (not one paragraph per row with the cells run together, nor the rows after it)."""
    # not the code-block test's file: its own bytes and name
    pdf = _lecture_pdf(tmp_path / "ml-lecture-03-optimizers.pdf", "機械学習入門 第3回（最適化）")
    ctx, page, _ = open_app(browser, app_url, locale="ja-JP")
    try:
        panel = _add_ask_and_open_first_citation(page, pdf, "Adamの特徴と代表的な学習率は？")
        answer = page.locator(".studyrag-answer .studyrag-answer-text").first.inner_text().replace("\u2060", "")
        assert "- Adam — 特徴: 一次と二次のモーメントで学習率を自動調整する; 代表的な学習率: 0.001 [1]" in answer, answer
        assert "SGD" not in answer and "Momentum" not in answer, answer
        assert "p. 1" in panel.inner_text()
        page.get_by_role("button", name="[1] を資料の中で開く").click()
        table = page.locator(".studyrag-document table").first
        table.wait_for(timeout=30_000)
        rows = [r.split("\t") for r in table.inner_text().strip().split("\n")]
        shot(page, "pdf-table-document.png")
        assert rows[0] == ["手法", "特徴", "代表的な学習率"], rows
        assert ["Adam", "一次と二次のモーメントで学習率を自動調整する", "0.001"] in rows, rows
        quoted = table.locator("mark.studyrag-quote").all_inner_texts()  # the quoted row, inside the cited passage
        assert quoted == ["Adam", "一次と二次のモーメントで学習率を自動調整する", "0.001"], quoted
        after = page.locator(".studyrag-document [role='heading']", has_text="実装例")
        assert after.locator("mark.studyrag-quote").count() == 0  # the quote ends with the row
    finally:
        ctx.close()
