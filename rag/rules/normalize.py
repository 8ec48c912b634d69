"""Normalisation: the forms in which two texts are compared.

* :func:`normalize` — NFKC (full-width to half-width, compatibility forms) and lowercase;
* :func:`squash` — for name look-ups: also without spaces, hyphens, underscores, dots;
* :func:`squash_markup` — for "does the passage contain this sentence": also without white
  space and Markdown emphasis (``*``, ``_``, `````).
"""

from __future__ import annotations

import re
import unicodedata

_NAME_GLUE = re.compile(r"[\s\-_.]+")
_MARKUP = re.compile(r"[\s*_`]+")


def normalize(text: str) -> str:
    """NFKC (full-width to half-width, compatibility forms) and lowercase.

    >>> normalize("ＧＰＴ－４ Ｔｕｒｂｏ")
    'gpt-4 turbo'
    """
    return unicodedata.normalize("NFKC", text).lower()


def squash(text: str) -> str:
    """Normalised without spaces, hyphens, underscores or dots, for name look-ups: "GPT-4",
    "gpt 4" and "ＧＰＴ４" squash alike.

    >>> squash("GPT-4"), squash("gpt 4"), squash("ＧＰＴ４")
    ('gpt4', 'gpt4', 'gpt4')
    """
    return _NAME_GLUE.sub("", normalize(text))


def squash_markup(text: str) -> str:
    """Normalised without white space and Markdown emphasis, to find a quoted sentence in
    its passage whatever the line breaks and bold marks.

    >>> squash_markup("**LoRA** は 低ランク")
    'loraは低ランク'
    """
    return _MARKUP.sub("", normalize(text))
