"""Language identification for ja / zh / en by script statistics.

Kana mark Japanese; Han characters without kana mark Chinese; anything else is English.
Good enough to pick an analyzer and to prefer passages in the asker's language.
"""

from __future__ import annotations

from rag.text import HAN, KANA

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
