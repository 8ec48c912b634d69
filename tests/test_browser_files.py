"""A learner's own files, uploaded through the app (eval/results/walkthrough-files-2026-12b.md):
files the app refuses are refused in the interface language, a file whose name says one format
and whose bytes another is named for what it is, and what was added before stays.

Same set-up as tests/test_browser.py (Debian's Chromium, `streamlit run app.py` over tmp copies
of the corpus and the real index).
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from test_browser import app_url, browser, open_app, shot  # noqa: F401 -- module fixtures

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
        page.get_by_text("uploads/kept-note.md を追加しました").wait_for(timeout=180_000)
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
