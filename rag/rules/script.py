"""Scripts: CJK character classes and language identification for ja / zh / en.

Kana mark Japanese; Han characters without kana mark Chinese; anything else is English.
Good enough to pick an analyzer and to prefer passages in the asker's language.
"""

from __future__ import annotations

import re

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


def detect_lang(text: str) -> str:
    """Return "ja", "zh" or "en" for ``text``.

    >>> detect_lang("LoRAとQLoRAの違いは？"), detect_lang("LoRA和QLoRA有什么区别"), detect_lang("top-p")
    ('ja', 'zh', 'en')
    """
    kana = len(KANA.findall(text))
    han = len(HAN.findall(text))
    if kana and kana >= 0.05 * (kana + han):
        return "ja"
    if han:
        return "zh"
    if kana:
        return "ja"
    return "en"
