"""The interface catalogue: every language has every key with the same placeholders, the code
uses no key the catalogue lacks, and nothing is left untranslated."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest

from ui import i18n

ROOT = Path(__file__).resolve().parents[1]
CODE = sorted((ROOT / "ui").glob("*.py")) + [ROOT / "app.py"]
# the same in every language on purpose (a name, a format)
SAME_EVERYWHERE = {"app.title"}


def placeholders(text: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(text) if f}


def test_every_language_has_every_key():
    en = set(i18n.MESSAGES["en"])
    for lang in i18n.LANGS:
        keys = set(i18n.MESSAGES[lang])
        assert keys == en, f"{lang}: missing {sorted(en - keys)}, extra {sorted(keys - en)}"


@pytest.mark.parametrize("lang", ["ja", "zh"])
def test_placeholders_match_and_nothing_is_left_in_english(lang):
    for key, en in i18n.MESSAGES["en"].items():
        other = i18n.MESSAGES[lang][key]
        assert placeholders(other) == placeholders(en), key
        if key not in SAME_EVERYWHERE and re.search(r"[A-Za-z]{3}", en):
            assert other != en, f"{lang}:{key} is the English text"


def used_keys() -> tuple[set[str], set[str]]:
    """Literal keys the code passes to tr()/t(), and the prefixes of the f-string ones."""
    literal, prefixes = set(), set()
    for path in CODE:
        src = path.read_text(encoding="utf-8")
        literal |= set(re.findall(r"""\btr?\(\s*["']([a-z_]+\.[a-z0-9_.]+)["']""", src))
        prefixes |= set(re.findall(r"""\btr?\(\s*f["']([a-z_]+\.[a-z0-9_.]*)\{""", src))
    return literal, prefixes


def test_the_code_uses_only_keys_the_catalogue_has():
    literal, prefixes = used_keys()
    assert len(literal) > 150, "the key scan found too little: did the call style change?"
    missing = sorted(k for k in literal if k not in i18n.EN)
    assert not missing, missing
    for p in prefixes:
        assert any(k.startswith(p) for k in i18n.EN), p


def test_key_families_built_at_run_time_are_complete():
    from rag.answer import ANSWERERS
    from rag.search import MODES
    from study.schedule import RATINGS
    from study.types import CARD_KINDS
    from ui.add import STAGES
    from ui.reports import SHIPPED

    needed = (
        [f"mode.{m}" for m in (*MODES, "auto")]
        + [f"answerer.{a}" for a in (*ANSWERERS, "none")]
        + [f"rating.{r}" for r in RATINGS]
        + [f"fc.kind.{k}" for k in CARD_KINDS]
        + [f"drill.verdict.{v}" for v in ("good", "partial", "wrong")]
        + [f"drill.from_{k}" for k in ("list", "cards")]
        + [f"stage.{s}" for s in STAGES]
        + [f"report.{r}" for r in (*SHIPPED, "quick")]
        + [
            f"page.{p}"
            for p in ("ask", "sources", "add", "flashcards", "quiz", "drill", "progress", "export", "benchmarks")
        ]
    )
    for lang in i18n.LANGS:
        assert not [k for k in needed if k not in i18n.MESSAGES[lang]], lang


def test_language_from_the_browser_locale():
    assert [i18n.from_locale(x) for x in ("ja-JP", "zh-CN", "zh_TW", "en-GB", "fr-FR", "", None)] == [
        "ja",
        "zh",
        "zh",
        "en",
        "en",
        "en",
        "en",
    ]


def test_t_fills_values_and_falls_back_to_english_for_an_unknown_language():
    assert i18n.t("ask.scope_all", "zh", n=5) == "全部资料（5）"
    assert i18n.t("ask.scope_all", "fr", n=5) == "All documents (5)"
    assert i18n.t("ask.too_long", "ja", n="2,345", limit="2,000").startswith("質問が2,345文字")
    with pytest.raises(KeyError):
        i18n.t("no.such.key", "en")


def test_a_count_of_one_and_a_list_of_languages_read_as_sentences():
    """The landing page said "1 sections", Progress "0 of 1 cards seen", the answer-language note
    "quote them in Japanese, Chinese"."""
    from ui import i18n

    assert i18n.count("landing.sections", "en", 1, n=1) == "1 section"
    assert i18n.count("landing.sections", "en", 2, n=2) == "2 sections"
    assert i18n.count("landing.qa", "en", 1, n=1) == "1 question with its answer"
    assert i18n.count("prog.cards_seen", "en", 1, seen=0, cards=1) == "0 of 1 card seen"
    assert i18n.join(["Japanese", "Chinese"], "en") == "Japanese and Chinese"
    assert i18n.join(["日本語", "中国語"], "ja") == "日本語、中国語"
    for lang in i18n.LANGS:
        for key in ("landing.sections", "landing.qa", "prog.cards_seen"):
            assert i18n.count(key, lang, 1, n=1, seen=0, cards=1)
