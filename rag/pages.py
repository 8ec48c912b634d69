"""Tables for the pages that list the whole corpus (study cards, mock-interview questions, the
cards' vectors for quiz choices, the documents list, suggested questions), computed from an
in-memory index by the function named here, in the module that owns its rules.

A folder index holds every chunk and document, so :meth:`rag.index.Index.table` computes a
table when a page asks for it. An engine index holds none of them: its writer stores each table
with the version (a meta part ``table:NAME``, beside the manifest) and
:meth:`~rag.backends.engine.EngineIndex.table` reads that one part, so opening such a page reads
no chunk row and no document text. A version written before the tables were stored has none,
and its table is computed as the folder's is (reading every row once).

A table is JSON-ready data; its module turns it into what a page shows (``Card.from_dict`` …),
so both backends give the same result from the same notes.
"""

from __future__ import annotations

import importlib
import json
from typing import Any

# name -> "module:function" taking an in-memory Index, returning JSON-ready data
TABLES = {
    "cards": "study.cards:card_table",
    "drill_questions": "study.cards:drill_table",
    "card_vectors": "study.quiz:card_vector_table",
    "documents": "ui.suggest:document_table",
    "suggestions": "ui.suggest:suggestion_table",
}
PART = "table:"  # a stored table's meta part is PART + its name


def build(name: str, index) -> Any:
    """Table ``name`` computed from ``index`` (every chunk and document it holds)."""
    module, _, func = TABLES[name].partition(":")
    return getattr(importlib.import_module(module), func)(index)


def stored_tables(index) -> dict[str, str]:
    """Every table of ``index`` as the JSON text an engine version stores (at write time)."""
    return {PART + name: json.dumps(build(name, index), ensure_ascii=False) for name in TABLES}
