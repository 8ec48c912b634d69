"""Why a file cannot be read: the wording of each common reason, in one place.

Readers and the loader word a refusal with :func:`reason` (English, what the command line
prints and the index's skipped list keeps); the app finds the reason again with
:func:`parse` and says it in the learner's language (``ui/i18n.py``, keys ``reason.<key>``
with the same ``{values}``). A reason not in this table is shown as it is.
"""

from __future__ import annotations

import re

REASONS: dict[str, str] = {
    "empty": "the file is empty",
    "no_text": "no text found in the file",
    "front_matter_only": "there is no text after the front matter",
    "binary": "looks binary (NUL bytes); only text .txt/.md files are read",
    "not_utf8": "not UTF-8 or UTF-16 text, nor Shift_JIS, EUC-JP, GBK or Big5 ({detail})",
    "too_big": "{size} bytes is over the {limit}-byte limit",
    "too_big_upload": "{size} bytes is over the {limit}-byte limit for uploads",
    "not_allowed": "only {suffixes} files can be added",
    "wrong_kind": "this is a {actual} file with a {named} name; rename it to end in {suffix} and add it again",
    "pdf_damaged": "damaged PDF ({detail})",
    "pdf_encrypted": "encrypted PDF (it needs a password); save a copy without the password to add it",
    "pdf_scanned": "scanned PDF: no text layer; install tesseract-ocr to read it",
    "pdf_no_pages": "the PDF has no pages",
    "pdf_garbled": "the PDF's text cannot be read (its fonts map no characters); install tesseract-ocr to read its pages as images",
    "office_damaged": "damaged {kind} file ({detail})",
    "office_password": "password-protected {kind} file; remove the password to add it",
    "web_empty": "no article text found in the web page",
    "convert": "{kind} files are not read: save it as {suffix} and add that",
}

# What a file's first bytes say it is (:func:`ingest.readers.sniff`), by the suffix it should have.
KINDS = {".pdf": "PDF", ".docx": "Word", ".pptx": "PowerPoint", ".html": "web page"}


def reason(key: str, /, **values) -> str:
    """The English wording of reason ``key``."""
    return REASONS[key].format(**values)


def _pattern(template: str) -> re.Pattern:
    parts = re.split(r"\{(\w+)\}", template)
    rx = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>.+?)" for i, p in enumerate(parts))
    return re.compile(rx + r"\Z", re.S)


_PATTERNS = {key: _pattern(t) for key, t in REASONS.items()}


def parse(text: str) -> tuple[str, dict[str, str]] | None:
    """``(key, values)`` of a reason worded by :func:`reason`, or None for any other text."""
    for key, rx in _PATTERNS.items():
        m = rx.match(text)
        if m:
            return key, m.groupdict()
    return None
