"""Language identification for ja / zh / en — defined in :mod:`rag.rules.script`."""

from __future__ import annotations

from rag.rules.script import LANGS, detect_lang

__all__ = ["LANGS", "detect_lang"]
