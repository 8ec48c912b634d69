"""What a new learner met on a walk through the app (eval/results/walkthrough-2026-12.md), read
from the rendered page: a code block quoted in an answer keeps its lines, a two-digit Q&A number
in a citation panel is shown whole, a quiz citation names where its passage is, the mock
interview's verdict is said once, the benchmark reports are listed by title, and every file
uploader speaks the interface language.

Same set-up as tests/test_browser.py (Debian's Chromium, `streamlit run app.py` over tmp copies
of the corpus and the real index).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_browser import ROOT, app_url, ask, browser, open_app, shot  # noqa: F401 -- module fixtures

pytestmark = [pytest.mark.browser, pytest.mark.model]


@pytest.fixture(scope="module")
def real_index(real_index, tmp_path_factory) -> Path:
    """This module's copy of the real index (conftest builds it once per run)."""
    from conftest import copy_of_real_index

    return copy_of_real_index(real_index, tmp_path_factory, "real-walk")


# For every list item of the visible citation panels: the pixels its number ("47.") lacks to be
# drawn inside the scrolling box that clips it (0 when the whole number shows).
_CLIPPED_NUMBERS = """() => {
  const out = [];
  const canvas = document.createElement('canvas').getContext('2d');
  for (const panel of document.querySelectorAll('.sr-panel')) {
    if (!panel.offsetParent) continue;
    for (const ol of panel.querySelectorAll('ol')) {
      let clip = ol.parentElement;
      while (clip && getComputedStyle(clip).overflowX === 'visible') clip = clip.parentElement;
      if (!clip) continue;
      const left = clip.getBoundingClientRect().left + clip.clientLeft;
      const start = parseInt(ol.getAttribute('start') || '1', 10);
      [...ol.children].forEach((li, k) => {
        canvas.font = getComputedStyle(li).font;
        const need = canvas.measureText(`${start + k}. `).width;
        const room = li.getBoundingClientRect().left - left;
        out.push({number: start + k, short: Math.max(0, Math.round(need - room))});
      });
    }
  }
  return out;
}"""


def test_a_code_block_quoted_in_an_answer_keeps_its_lines(browser, app_url):
    """A fenced block quoted as code in the answer itself (not only in its panel) shows line by
    line, never as ",[object Object]," on one line."""
    ctx, page, _ = open_app(browser, app_url)
    try:
        ask(page, "How is cosine similarity used in vector search?")
        shown = page.locator(".studyrag-answer .studyrag-answer-text").first.inner_text()
        assert "[object Object]" not in shown, shown
        lines = [x.strip() for x in shown.splitlines()]
        at = lines.index("コサイン類似度の計算")  # the block's first line, a line of its own
        assert lines[at + 1].startswith("similarity = cos") and lines[at + 2].startswith("値の範囲"), lines
        code = page.locator(".studyrag-answer .studyrag-answer-text .studyrag-code").first
        box = code.bounding_box()
        line_height = float(code.evaluate("e => parseFloat(getComputedStyle(e).lineHeight)"))
        assert box["height"] >= 2.5 * line_height  # drawn on its own lines, not one long line
        shot(page, "answer-code.png")
    finally:
        ctx.close()


def test_a_two_digit_question_number_in_a_citation_panel_is_shown_whole(browser, app_url):
    ctx, page, _ = open_app(browser, app_url, locale="ja-JP")
    try:
        ask(page, "LLMは従来の統計的言語モデルとどう異なるか？", button="質問する")
        answer = page.locator(".studyrag-answer").first
        answer.locator("label.studyrag-cite").first.click()
        panel = answer.locator(".sr-panel").first
        panel.wait_for(state="visible")
        assert "Q47" in panel.locator(".sr-panel-head").inner_text()
        numbers = page.evaluate(_CLIPPED_NUMBERS)
        assert any(n["number"] == 47 for n in numbers), numbers
        assert all(n["short"] == 0 for n in numbers), numbers
        shot(page, "panel-number.png")
    finally:
        ctx.close()


def test_a_quiz_citation_names_the_item_it_quotes(browser, app_url):
    """The explanation's panel says where its passage is (the document and its Q&A number), not a
    section of another document (the topic the score counts it under)."""
    ctx, page, _ = open_app(browser, app_url)
    try:
        page.get_by_role("link", name="Quiz").click()
        page.get_by_text("Question 1 of 10").wait_for(timeout=60_000)
        live = ".st-key-quiz-card [data-testid='stRadioOption']:not(:has(input[disabled]))"
        for _ in range(3):  # a rerun in flight may drop the choice: pick again (as test_browser_pages)
            page.locator(live).first.click()
            page.wait_for_timeout(1000)
            page.locator(".st-key-quiz-check button").click()
            try:
                page.locator(".st-key-quiz-next button").wait_for(timeout=20_000)
                break
            except Exception:  # noqa: BLE001 -- playwright's TimeoutError: pick again
                page.wait_for_timeout(1000)
        cited = page.locator(".studyrag-cited-text")
        cited.locator("label.studyrag-cite").click()
        cited.locator(".sr-panel").wait_for(state="visible")
        head = cited.locator(".sr-panel-head").inner_text()
        assert re.search(r" · Q\d+$", head.strip()), head
        shot(page, "quiz-citation.png")
    finally:
        ctx.close()


@pytest.mark.parametrize(
    ("locale", "page_name", "source", "answer_label", "grade", "verdicts"),
    [
        ("en-US", "Mock interview", "The flashcards", "Your answer", "Grade my answer", ("Good", "Partly there")),
        ("ja-JP", "模擬面接", "フラッシュカード", "あなたの回答", "採点する", ("よくできました", "部分的に正解")),
    ],
)
def test_the_mock_interview_verdict_is_said_once(
    browser, app_url, locale, page_name, source, answer_label, grade, verdicts
):
    ctx, page, _ = open_app(browser, app_url, locale=locale)
    try:
        page.get_by_role("link", name=page_name).click()
        page.get_by_role("heading", name=page_name).wait_for()
        # the source radio in the page, not the sidebar's link of the same name (フラッシュカード):
        # clicked before the radio was drawn, ".last" was that link, and the page went elsewhere
        page.locator("[data-testid='stMain']").get_by_text(source, exact=True).click()
        page.wait_for_timeout(1500)
        question = page.get_by_role("combobox", name=re.compile("^(Question|質問)$"))
        question.wait_for(timeout=90_000)  # the deck's questions are listed after the first run of the page
        question.click()
        page.keyboard.type("LoRAとQLoRA")
        page.get_by_role("option").first.click()
        page.wait_for_timeout(1500)
        page.get_by_role("textbox", name=answer_label).fill(
            "LoRA adds low-rank matrices to the model layers, so fine-tuning needs little memory. "
            "QLoRA also quantizes the model to 4-bit precision, so a 70B model fits on a single GPU."
        )
        page.get_by_role("button", name=grade).click()
        box = page.locator("[data-testid='stMain'] [data-testid='stAlert']").first
        box.wait_for(timeout=60_000)
        said = box.inner_text()
        assert any(v in said for v in verdicts), said
        for v in verdicts:
            assert said.count(v) <= 1, said
        shot(page, f"drill-verdict-{locale}.png")
    finally:
        ctx.close()


def test_every_benchmark_report_is_listed_by_a_title_not_a_file_name(browser, app_url):
    """Reports the catalogue has no name for are listed under their own heading (two alike with
    their file names), never as bare file names ("beir_check", "answers-misses")."""
    from ui.reports import available

    ctx, page, _ = open_app(browser, app_url, locale="ja-JP")
    try:
        page.get_by_role("link", name="ベンチマーク").click()
        page.get_by_role("heading", name="ベンチマーク").wait_for()
        group = page.get_by_role("radiogroup", name="レポート")
        group.wait_for(timeout=30_000)
        labels = [x.strip() for x in group.locator("[data-testid='stRadioOption']").all_inner_texts()]
        stems = {name for name, _ in available(ROOT / "eval" / "results", ROOT / "eval" / "runs")}
        assert len(labels) >= len(stems) - 1 and "検索" in labels, labels
        assert not [x for x in labels if x in stems], labels
        assert len(set(labels)) == len(labels), labels
        shot(page, "benchmarks-names.png")
    finally:
        ctx.close()


@pytest.mark.parametrize(("link", "heading"), [("导出与导入", "导出与导入"), ("基准测试", "基准测试")])
def test_every_file_uploader_speaks_the_interface_language(browser, app_url, link, heading):
    """Not only on the Add page: the progress import and the own-questions benchmark too (Streamlit
    writes "Upload" and "200MB per file • JSON" itself, in English)."""
    ctx, page, _ = open_app(browser, app_url, locale="zh-CN")
    try:
        page.get_by_role("link", name=link).click()
        page.get_by_role("heading", name=heading).first.wait_for()
        zone = page.locator("[data-testid='stFileUploaderDropzone']")
        zone.locator("[data-testid='stFileUploaderDropzoneInstructions']").wait_for(timeout=30_000)
        zone.scroll_into_view_if_needed()
        page.wait_for_timeout(1000)  # the button's own label is drawn a moment later
        said = zone.inner_text()
        assert "Upload" not in said and "per file" not in said, said
        shown = zone.evaluate(
            "z => [...z.querySelectorAll('*')].map(e => getComputedStyle(e, '::after').content).join(' ')"
        )
        assert "上传" in shown and "每个文件不超过" in shown, shown
        shot(page, f"uploader-{heading}.png")
    finally:
        ctx.close()
