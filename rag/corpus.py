"""Which files are corpus documents, how their bytes become text, and whether an index is stale.

One home for the file rules that ingest (loading) and search (the stale-index warning)
both apply: ``.txt``/``.md`` files under the corpus folder, hidden ones skipped, UTF-8 only,
binary and oversized files refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rag.errors import CorpusError

SUFFIXES = (".txt", ".md", ".markdown")
MAX_BYTES = 20_000_000


class UnreadableFileError(CorpusError):
    """A file is binary, not UTF-8, or too large."""


def decode(data: bytes, name: str) -> str:
    """Decode a text file's bytes; refuse binary or non-UTF-8 data with a clear message."""
    if len(data) > MAX_BYTES:
        raise UnreadableFileError(f"{name}: {len(data):,} bytes is over the {MAX_BYTES:,}-byte limit")
    if b"\x00" in data[:8192]:
        raise UnreadableFileError(f"{name}: looks binary (NUL bytes); only UTF-8 .txt/.md files are read")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise UnreadableFileError(f"{name}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def corpus_files(root: Path) -> list[Path]:
    """The ``.txt``/``.md`` files under ``root``, sorted, hidden files skipped."""
    if not root.is_dir():
        raise CorpusError(f"corpus folder {root} does not exist")
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and p.suffix.lower() in SUFFIXES and not any(s.startswith(".") for s in p.relative_to(root).parts)
    )


def document_hashes(corpus_dir: Path) -> dict[str, str]:
    """``doc_id -> sha256`` of every readable document under ``corpus_dir``."""
    out = {}
    for p in corpus_files(Path(corpus_dir)):
        try:
            data = p.read_bytes()
            decode(data, p.name)  # files ingest skips (binary, not UTF-8) are not documents
        except (OSError, UnreadableFileError):
            continue
        out[p.relative_to(corpus_dir).as_posix()] = hashlib.sha256(data).hexdigest()
    return out


def stale_documents(manifest: Mapping[str, Any], corpus_dir: Path) -> list[str]:
    """Documents added, changed or removed in ``corpus_dir`` since the index with ``manifest``
    was built."""
    now = document_hashes(Path(corpus_dir))
    then = {k: v["sha256"] for k, v in manifest.get("documents", {}).items()}
    return sorted(k for k in set(now) | set(then) if now.get(k) != then.get(k))
