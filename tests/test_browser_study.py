"""Learners sharing one server, read from the rendered page (eval/results/walkthrough-study-2026-12b.md):
two learners reviewing at once keep their own progress, a refused progress file is explained in
the interface language and changes nothing, a file another learner exported is not merged without
asking, and the mock interview shows the limit of what it grades.

Same set-up as tests/test_browser.py (Debian's Chromium, `streamlit run app.py` over tmp copies
of the corpus and the real index).
"""

from __future__ import annotations

import json
import re
import time

import pytest
from test_browser import app_url, browser, english_app_url, open_app, shot  # noqa: F401 -- module fixtures

pytestmark = [pytest.mark.browser, pytest.mark.model]

ASCII_SENTENCE = re.compile(r"[A-Za-z]{3,}(?: [A-Za-z]{2,}){3,}")  # four English words in a row


def _idle(page) -> None:
    """Wait until the app's script run is over (Streamlit's "Running…" widget gone): a click
    while the page is being redrawn may land on a button about to be replaced."""
    page.wait_for_function(
        "() => !/Running|Stop/.test((document.querySelector(\"[data-testid='stStatusWidget']\") || {}).innerText || '')",
        timeout=60_000,
    )


def _review_one(page, show: str, good: str, done: str) -> str:
    """Rate one card; the "reviewed today" text after it (the learner may have reviewed before)."""
    counted = page.get_by_text(re.compile(f"{done}\\d+"))
    counted.wait_for(timeout=60_000)
    n = int(re.search(f"{done}(\\d+)", counted.inner_text()).group(1))
    _idle(page)
    page.get_by_role("button", name=show).click()
    page.locator(".studyrag-cited-text").wait_for(timeout=60_000)
    _idle(page)
    page.get_by_role("button", name=re.compile(f"^{good}")).first.click()
    after = f"{done}{n + 1}"
    try:
        page.get_by_text(after).wait_for(timeout=60_000)
    except Exception:
        shot(page, "review-not-counted.png")
        raise
    return after


def _upload(page, path, button: str) -> None:
    page.locator("[data-testid='stFileUploader'] input[type=file]").set_input_files(str(path))
    page.locator("[data-testid='stFileUploader']").get_by_text(path.name).wait_for(timeout=30_000)
    go = page.get_by_role("button", name=button, exact=True)
    for _ in range(100):  # enabled once the app has the file
        if go.is_enabled():
            break
        page.wait_for_timeout(100)
    go.click()


@pytest.mark.parametrize(
    ("locale", "labels"),
    [
        ("ja-JP", ("フラッシュカード", "答えを見る", "正解", "今日の学習済み: ", "エクスポートとインポート", "インポート",
                   "このファイルは取り込まず", "詳細: ")),
        ("zh-CN", ("闪卡", "显示答案", "良好", "今日已学: ", "导出与导入", "导入", "没有导入这个文件", "详情: ")),
    ],
)
def test_a_refused_progress_file_is_explained_in_the_interface_language(browser, app_url, tmp_path, locale, labels):
    page_fc, show, good, done, page_exp, import_button, refused, detail = labels
    ctx, page, _ = open_app(browser, app_url, locale=locale)
    try:
        page.get_by_role("link", name=page_fc).click()
        done = _review_one(page, show, good, done)
        page.get_by_role("link", name=page_exp).click()
        page.get_by_role("heading", name=page_exp).wait_for()
        cut = tmp_path / "cut.json"
        cut.write_text('{"format": "studyrag-progress", "version": 1, "states": [{"card_id": "q', encoding="utf-8")
        wrong = tmp_path / "wrong.json"
        wrong.write_text(json.dumps({"format": "studyrag-progress", "version": 1, "states": [{"card_id": 5}],
                                     "reviews": []}), encoding="utf-8")
        for f in (cut, wrong):
            page.reload()  # a fresh uploader and no message of the file before
            page.get_by_role("heading", name=page_exp).wait_for(timeout=60_000)
            _upload(page, f, import_button)
            box = page.locator("[data-testid='stMain'] [data-testid='stAlert']").filter(has_text=refused)
            box.wait_for(timeout=30_000)
            said = box.inner_text()
            assert not ASCII_SENTENCE.search(said), said  # the reason too, not only the lead-in
            page.get_by_text(f"{detail}{f.name}").wait_for()  # the detail, under it, names the file
        shot(page, f"import-refused-{locale}.png")
        page.get_by_role("link", name=page_fc).click()
        page.get_by_text(done).wait_for(timeout=30_000)  # the review done before is still there
    finally:
        ctx.close()


def test_another_learners_progress_file_is_not_merged_without_asking(browser, app_url, tmp_path):
    """A file exported by Akiko, imported by this learner: it says whose it is and imports only
    when asked (its reviews were counted as this learner's, "Reviewed today" included)."""
    now = time.time()
    review = {"card_id": "qa:llm-interview-top50-ja.md#Q2", "rating": 3, "reviewed_at": now - 60,
              "duration_ms": 4000, "state_before": 0, "state_after": 1, "due_after": now + 600}
    theirs = tmp_path / "akiko.json"
    theirs.write_text(json.dumps({"format": "studyrag-progress", "version": 1, "profile": "Akiko",
                                  "states": [], "reviews": [review]}), encoding="utf-8")
    ctx, page, _ = open_app(browser, app_url, locale="en-US")
    try:
        page.get_by_role("link", name="Export & import").click()
        page.get_by_role("heading", name="Export & import").wait_for()
        _upload(page, theirs, "Import")
        warn = page.locator("[data-testid='stMain'] [data-testid='stAlert']").filter(has_text="Akiko")
        warn.wait_for(timeout=30_000)
        assert "This file is Akiko's progress, not yours" in warn.inner_text()
        page.wait_for_timeout(1000)
        assert page.get_by_text(re.compile("^Imported ")).count() == 0  # nothing merged yet
        page.get_by_role("button", name=re.compile("^Import it into .*'s progress$")).click()
        page.get_by_text("Imported 0 card states and 1 reviews").wait_for(timeout=30_000)
        shot(page, "import-other-learner.png")
    finally:
        ctx.close()


def test_a_mock_interview_answer_over_the_limit_shows_the_limit(browser, app_url):
    """A 20,000-character answer was graded on its first 4,000 without a word: the point made at
    its end counted as missed. Now the limit is shown, and an answer over it is not graded."""
    from study.drill import MAX_ANSWER_CHARS

    ctx, page, _ = open_app(browser, app_url, locale="ja-JP")
    try:
        page.get_by_role("link", name="模擬面接").click()
        page.get_by_role("heading", name="模擬面接").wait_for()
        page.get_by_text(f"{MAX_ANSWER_CHARS:,}文字まで。").wait_for()
        long = "今日は晴れです。" * 2499 + "LoRAは低ランク行列だけを学習します。"  # 20,011 characters
        page.get_by_role("textbox", name="あなたの回答").fill(long)
        page.get_by_role("button", name="採点する").click()
        box = page.locator("[data-testid='stMain'] [data-testid='stAlert']").first
        box.wait_for(timeout=60_000)
        said = box.inner_text()
        assert f"回答が{len(long):,}文字あります。上限は{MAX_ANSWER_CHARS:,}文字です" in said, said
        assert not any(v in said for v in ("よくできました", "部分的に正解", "もう少し")), said  # no grade
        assert page.get_by_role("textbox", name="あなたの回答").input_value() == long  # kept to shorten
        shot(page, "drill-long-answer.png")
    finally:
        ctx.close()


def test_two_learners_reviewing_at_once_keep_their_own_progress(browser, app_url):
    """明子 (ja) and 小王 (zh) on one server, reviews interleaved: each counts only their own,
    after a reload too, and each Progress page says what that learner did."""
    learners = []
    for locale, name, create, page_fc, show, good, done in (
        ("ja-JP", "明子", "学習者「明子」を作成", "フラッシュカード", "答えを見る", "正解", "今日の学習済み: "),
        ("zh-CN", "小王", "创建学习者“小王”", "闪卡", "显示答案", "良好", "今日已学: "),
    ):
        ctx, page, _ = open_app(browser, app_url, locale=locale, path=f"/?profile={name}")
        made = page.locator("[data-testid='stSidebar']").get_by_role("button", name=create)
        made.click()
        made.wait_for(state="detached", timeout=30_000)
        page.get_by_role("link", name=page_fc).click()
        page.get_by_role("heading", name=page_fc).wait_for()
        learners.append((ctx, page, show, good, done))
    try:
        for k in range(3):  # 明子 reviews three cards, 小王 two, turn about
            for n, (_, page, show, good, done) in enumerate(learners):
                if n == 1 and k == 2:
                    continue
                _review_one(page, show, good, done)
        for (_, page, _, _, done), want in zip(learners, (3, 2)):
            page.reload()
            page.get_by_text(f"{done}{want}").wait_for(timeout=60_000)
        a, z = learners[0][1], learners[1][1]
        a.get_by_role("link", name="学習の記録").click()
        a.get_by_role("heading", name="学習の記録").wait_for()
        z.get_by_role("link", name="学习进度").click()
        z.get_by_role("heading", name="学习进度").wait_for()
        for page, seen in ((a, "50枚中3枚学習済み"), (z, "已学习2/50张")):
            try:
                page.get_by_text(re.compile(re.escape(seen))).first.wait_for(timeout=60_000)  # mastery per topic
            except Exception:
                shot(page, "two-learners-mastery-missing.png")
                raise
        shot(a, "two-learners-ja.png")
    finally:
        for ctx, *_ in learners:
            ctx.close()


def test_english_notes_without_qa_items_make_a_quiz_and_name_their_subsections(browser, english_app_url):
    """A learner's English notes (headings and prose, no Q&A list): the quiz page said "too few Q&A
    items to make a quiz", and a flashcard read "Explain “Reducing it”." Now the quiz asks the
    sections, four options each, and a subsection is named with the heading above it."""
    ctx, page, _ = open_app(browser, english_app_url)
    try:
        page.get_by_role("link", name="Quiz", exact=True).click()
        page.get_by_text("Question 1 of 10").wait_for(timeout=90_000)
        card = page.locator(".st-key-quiz-card")
        front = card.locator(".studyrag-card-front").inner_text()
        assert front.startswith("Explain “"), front
        assert card.locator("[data-testid='stRadioOption']").count() == 4
        assert "too few" not in page.locator("[data-testid='stMain']").inner_text()
        shot(page, "quiz-english-notes.png")
        page.get_by_role("link", name="Mock interview", exact=True).click()
        page.get_by_role("heading", name="Mock interview").wait_for(timeout=60_000)
        _idle(page)
        page.locator("[data-testid='stMain'] [data-testid='stSelectbox']").first.click()
        options = page.get_by_role("option").all_inner_texts()
        assert "Explain “KV cache — Reducing it”." in options, options
        assert not any(o == "Explain “Reducing it”." for o in options), options
    finally:
        ctx.close()
