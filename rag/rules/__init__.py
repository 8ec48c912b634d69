"""Text and language rules, one module per kind of rule (each the only definition):

* :mod:`rag.rules.script` — CJK character classes, language detection by script;
* :mod:`rag.rules.normalize` — NFKC + lowercase, the squashed forms used to compare text;
* :mod:`rag.rules.sentences` — sentence, unit and answer-sentence splitting, citation markers;
* :mod:`rag.rules.structure` — document structure: Q&A item labels, headings, bullets, code
  fences, Markdown decoration, generic headings;
* :mod:`rag.rules.questions` — stop and question words, request wrappers, question forms,
  follow-up cues;
* :mod:`rag.rules.names` — names, versions and products in a question or a heading.

Ingest, search, answers, study and the app all import these; ``rag.text`` and ``rag.lang``
re-export them under their old names.
"""
