"""Scripts: CJK character classes and language identification for ja / zh / en.

Kana mark Japanese; Han characters without kana mark Chinese; anything else is English, and so
is text with far more English words than CJK characters.
Good enough to pick an analyzer and to prefer passages in the asker's language.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

KANA_CLASS = "\u3040-\u309f\u30a0-\u30ff\uff66-\uff9f"
HAN_CLASS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
CJK_CLASS = KANA_CLASS + HAN_CLASS
KANA = re.compile(f"[{KANA_CLASS}]")
HAN = re.compile(f"[{HAN_CLASS}]")
CJK = re.compile(f"[{CJK_CLASS}]")
KATAKANA_RUN = "[\u30a0-\u30ffー]"  # katakana and the long-vowel mark
WORDY = re.compile(r"[^\W_]", re.UNICODE)  # a letter or digit of any script
CLOSERS = "」』）)\"'”’】"  # closing quotes and brackets that stay with the sentence before

LANGS = ("ja", "zh", "en")


LATIN_WORD = re.compile(r"[A-Za-z]{2,}")
ENGLISH_WORDS_PER_CJK = 2  # English words per CJK character at or above which mixed text is English


def detect_lang(text: str) -> str:
    """Return "ja", "zh" or "en" for ``text``: English when it has no CJK character, or at least
    :data:`ENGLISH_WORDS_PER_CJK` English words for each (English notes glossing a term,
    "Attention (注意力) lets each token weigh …", are not Chinese notes; 「什么是RAG?」 is Chinese).

    >>> detect_lang("LoRAとQLoRAの違いは？"), detect_lang("LoRA和QLoRA有什么区别"), detect_lang("top-p")
    ('ja', 'zh', 'en')
    >>> detect_lang("Attention (注意力) lets each token weigh every other token in the sequence.")
    'en'
    """
    kana = len(KANA.findall(text))
    han = len(HAN.findall(text))
    if (kana or han) and len(LATIN_WORD.findall(text)) >= ENGLISH_WORDS_PER_CJK * (kana + han):
        return "en"
    if kana and kana >= 0.05 * (kana + han):
        return "ja"
    if han:
        return "zh"
    if kana:
        return "ja"
    return "en"


MIN_LANGUAGE_SHARE = 0.05  # a language of fewer passages than this share is not a notes language of its own


def notes_languages(langs: Sequence[str], *, min_share: float = MIN_LANGUAGE_SHARE) -> list[str]:
    """Each passage's language for the rules that compare the notes' languages (the dense leg
    centred per language, the keyword leg kept to the question's language): its detected
    language, or the most common one when fewer than ``min_share`` of the passages are in it —
    a few Chinese paragraphs with enough kana to read as Japanese are not Japanese notes.

    >>> notes_languages(["zh"] * 39 + ["ja"])[-1], notes_languages(["zh"] * 9 + ["ja"])[-1]
    ('zh', 'ja')
    """
    if not 0.0 <= min_share <= 1.0:
        raise ValueError(f"min_share must be in [0, 1], got {min_share}")
    counts = Counter(langs)
    if not counts:
        return []
    main = max(sorted(counts), key=lambda lang: counts[lang])
    kept = {lang for lang, n in counts.items() if n >= min_share * len(langs)}
    return [lang if lang in kept else main for lang in langs]
