"""The sentences the answerer writes itself (not quotes), in ja / zh / en.

One catalogue: the CLI and the app show the same words. Placeholders are filled with
:meth:`str.format`; everything inserted comes from the question or the notes and is
displayed escaped by the caller.
"""

from __future__ import annotations

LANG_NAMES = {
    "ja": {"ja": "日本語", "zh": "中国語", "en": "英語"},
    "zh": {"ja": "日文", "zh": "中文", "en": "英文"},
    "en": {"ja": "Japanese", "zh": "Chinese", "en": "English"},
}

TEXTS = {
    "not_covered": {
        "ja": "ノートには、この質問に答える内容が見つかりませんでした。",
        "zh": "笔记中没有找到能回答这个问题的内容。",
        "en": "The notes do not cover this question.",
    },
    "missing_terms": {
        "ja": "ノートには「{terms}」についての記述がありません。",
        "zh": "笔记中没有关于“{terms}”的内容。",
        "en": "The notes say nothing about {terms}.",
    },
    "nearest": {
        "ja": "ノートで扱っている近いトピック: {topics}",
        "zh": "笔记中相近的主题: {topics}",
        "en": "Nearby topics the notes do cover: {topics}",
    },
    "injection": {
        "ja": "これはノートについての質問ではなく、回答の仕組みへの指示なので、お答えしません。ノートの内容について質問してください。",
        "zh": "这不是关于笔记的问题，而是对回答程序的指令，因此不予回答。请就笔记的内容提问。",
        "en": "That is an instruction to the answerer, not a question about the notes, so it is not answered. Ask about what the notes say.",
    },
    "no_topic": {
        "ja": "質問から、ノートで調べる言葉が見つかりませんでした。ノートで扱っているトピックについて質問してください。",
        "zh": "问题中没有可以在笔记里查找的词。请就笔记涉及的主题提问。",
        "en": "That question names nothing to look up in the notes. Ask about a topic they cover.",
    },
    "followup_not_covered": {
        "ja": "ノートには、前の回答（{topic}）以上のこと、特に「{aspect}」については書かれていません。",
        "zh": "除了上一个回答（{topic}）之外，笔记中没有关于“{aspect}”的内容。",
        "en": "Beyond the previous answer ({topic}), the notes say nothing about {aspect}.",
    },
    "lead": {
        "ja": "{language}のノート「{topic}」より:",
        "zh": "以下摘自{language}笔记《{topic}》:",
        "en": "From the {language} notes on “{topic}”:",
    },
}

# the facets a follow-up asks about (rag.followup.ASPECTS), named in each language
ASPECT_NAMES = {
    "examples": {"ja": "具体例", "zh": "例子", "en": "examples"},
    "drawbacks": {"ja": "欠点", "zh": "缺点", "en": "drawbacks"},
    "advantages": {"ja": "利点", "zh": "优点", "en": "advantages"},
    "remedies": {"ja": "対策", "zh": "对策", "en": "remedies"},
    "causes": {"ja": "原因・理由", "zh": "原因", "en": "causes or reasons"},
}

QUOTE_MARKS = {"ja": ("「", "」"), "zh": ("“", "”"), "en": ("“", "”")}
LIST_SEP = {"ja": "、", "zh": "、", "en": "; "}


def text(key: str, lang: str, **values: str) -> str:
    """Message ``key`` in ``lang`` (English when there is no such language)."""
    forms = TEXTS[key]
    return forms.get(lang, forms["en"]).format(**values)


def aspect_name(aspect: str, lang: str) -> str:
    """The name of facet ``aspect`` (:data:`ASPECT_NAMES`) in ``lang``."""
    forms = ASPECT_NAMES[aspect]
    return forms.get(lang, forms["en"])


def lang_name(lang: str, of: str) -> str:
    """The name of language ``of`` written in language ``lang`` (``lang_name("en", "ja")`` → Japanese)."""
    return LANG_NAMES.get(lang, LANG_NAMES["en"]).get(of, of)


def quoted_list(items: list[str], lang: str) -> str:
    """``items`` each in the language's quotation marks, joined."""
    o, c = QUOTE_MARKS.get(lang, QUOTE_MARKS["en"])
    return LIST_SEP.get(lang, "; ").join(f"{o}{i}{c}" for i in items)
