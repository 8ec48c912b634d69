"""The hybrid index: a folder of plain files plus a versioned ``manifest.json``.

Layout of one build folder::

    manifest.json       format version, encoder id/dim, analyzer, chunker settings, per-document hashes
    documents.jsonl     one Document per line (full text: the source browser shows it)
    chunks.jsonl        one Chunk per line, in index order
    bm25.json, bm25_tokens.jsonl
    vectors.npy         chunk vectors (float32, L2-normalised)
    heads.npy           vectors of each chunk's question/heading (zeros where none)
    units.npy, unit_offsets.npy   vectors of the chunks' units (lines and sentences, see
                        rag.text.unit_spans); chunk i owns rows offsets[i]:offsets[i+1]
    unit_spans.npy      (start, end) of each unit in its document's text
    dense.faiss         only for HNSW

An index root holds build folders under ``builds/`` and a ``CURRENT`` file naming the live
one. :func:`write_index` writes a new build completely, then replaces ``CURRENT`` with an
atomic rename, so a failed build leaves the old index serving.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rag.bm25 import BM25Index
from rag.dense import DenseIndex
from rag.errors import IndexCorruptError, IndexMissingError
from rag.types import Chunk, Document

FORMAT_VERSION = 2


@dataclass
class Index:
    """Everything search needs, in memory. Row ``i`` of every array belongs to ``chunks[i]``."""

    manifest: dict[str, Any]
    documents: dict[str, Document]
    chunks: list[Chunk]
    bm25: BM25Index
    dense: DenseIndex
    heads: np.ndarray
    units: np.ndarray
    unit_offsets: np.ndarray
    unit_spans: np.ndarray
    path: Path | None = None
    by_id: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self):
        n = len(self.chunks)
        if not (len(self.bm25) == len(self.dense) == len(self.heads) == n == len(self.unit_offsets) - 1) or not (
            len(self.units) == len(self.unit_spans) == (self.unit_offsets[-1] if len(self.unit_offsets) else -1)
        ):
            raise IndexCorruptError(
                f"index parts disagree: {n} chunks, {len(self.bm25)} BM25 rows, {len(self.dense)} vectors, "
                f"{len(self.heads)} heading vectors, {len(self.unit_offsets) - 1} unit groups, "
                f"{len(self.units)} unit vectors, {len(self.unit_spans)} unit spans"
            )
        self.by_id = {c.id: i for i, c in enumerate(self.chunks)}

    @property
    def encoder_id(self) -> str:
        return self.manifest["encoder"]["id"]

    def token_set(self, i: int) -> frozenset[str]:
        """The distinct analyzed terms of chunk ``i`` (made on first use, then kept)."""
        cache = self.__dict__.setdefault("_token_sets", {})
        got = cache.get(i)
        if got is None:
            got = cache[i] = frozenset(self.bm25.tokens[i])
        return got

    def chunk_units(self, i: int) -> np.ndarray:
        return self.units[self.unit_offsets[i] : self.unit_offsets[i + 1]]

    def chunk_unit_spans(self, i: int) -> np.ndarray:
        """``(start, end)`` rows, in document offsets, of chunk ``i``'s units."""
        return self.unit_spans[self.unit_offsets[i] : self.unit_offsets[i + 1]]

    @functools.cached_property
    def unit_owner(self) -> np.ndarray:
        """Chunk index of every sentence vector."""
        return np.repeat(np.arange(len(self.chunks)), np.diff(self.unit_offsets))

    @functools.cached_property
    def unit_dense(self) -> DenseIndex:
        """FAISS over sentence vectors (built on first use)."""
        return DenseIndex(self.units, kind=self.dense.kind)

    def passage_similarity(self, rows: np.ndarray, qv: np.ndarray, *, whole_weight: float = 0.5) -> np.ndarray:
        """Multi-vector dense score of chunks ``rows``: ``whole_weight`` x the whole-chunk cosine
        plus the rest x the best cosine among its units and its heading (the weight is tuned,
        see rag/tuned.json)."""
        whole = self.dense.vectors[rows] @ qv
        best = self.heads[rows] @ qv
        sent = self.units @ qv if len(rows) * 8 > len(self.units) else None
        for j, i in enumerate(rows):
            u = sent[self.unit_offsets[i] : self.unit_offsets[i + 1]] if sent is not None else self.chunk_units(i) @ qv
            if len(u):
                best[j] = max(best[j], float(u.max()))
        return whole_weight * whole + (1.0 - whole_weight) * best

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "documents.jsonl", "w", encoding="utf-8") as f:
            for d in self.documents.values():
                f.write(json.dumps(d.to_dict(), ensure_ascii=False) + "\n")
        with open(folder / "chunks.jsonl", "w", encoding="utf-8") as f:
            for c in self.chunks:
                f.write(json.dumps(c.to_dict(), ensure_ascii=False) + "\n")
        self.bm25.save(folder)
        self.dense.save(folder)
        np.save(folder / "heads.npy", self.heads.astype(np.float32), allow_pickle=False)
        np.save(folder / "units.npy", self.units.astype(np.float32), allow_pickle=False)
        np.save(folder / "unit_offsets.npy", self.unit_offsets.astype(np.int64), allow_pickle=False)
        np.save(folder / "unit_spans.npy", self.unit_spans.astype(np.int64).reshape(-1, 2), allow_pickle=False)
        # The manifest goes last: a folder without one is an unfinished build.
        (folder / "manifest.json").write_text(json.dumps(self.manifest, ensure_ascii=False, indent=1))

    @classmethod
    def load(cls, folder: Path) -> Index:
        try:
            manifest = json.loads((folder / "manifest.json").read_text())
            if not isinstance(manifest, dict):
                raise ValueError(f"manifest.json holds a {type(manifest).__name__}, not an object")
            if manifest.get("format_version") != FORMAT_VERSION:
                raise IndexCorruptError(
                    f"index at {folder} has format {manifest.get('format_version')!r}, this version reads "
                    f"{FORMAT_VERSION}: rebuild it with `python -m ingest --rebuild`"
                )
            with open(folder / "documents.jsonl", encoding="utf-8") as f:
                docs = [Document.from_dict(json.loads(line)) for line in f]
            with open(folder / "chunks.jsonl", encoding="utf-8") as f:
                chunks = [Chunk.from_dict(json.loads(line)) for line in f]
            return cls(
                manifest=manifest,
                documents={d.doc_id: d for d in docs},
                chunks=chunks,
                bm25=BM25Index.load(folder),
                dense=DenseIndex.load(folder, kind=manifest["faiss"]),
                heads=np.load(folder / "heads.npy", allow_pickle=False),
                units=np.load(folder / "units.npy", allow_pickle=False),
                unit_offsets=np.load(folder / "unit_offsets.npy", allow_pickle=False),
                unit_spans=np.load(folder / "unit_spans.npy", allow_pickle=False),
                path=folder,
            )
        except IndexCorruptError:
            raise
        except (OSError, EOFError, ValueError, KeyError, TypeError) as e:  # EOFError: an empty .npy
            raise IndexCorruptError(
                f"index at {folder} is unreadable ({type(e).__name__}: {e}); rebuild it with `python -m ingest --rebuild`"
            ) from None


def _build_folder(root: Path) -> Path:
    return root / "builds" / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"


def current_folder(root: Path) -> Path:
    """The live build folder of an index root (or the root itself if it is a plain build folder)."""
    root = Path(root)
    if (root / "manifest.json").exists():
        return root
    pointer = root / "CURRENT"
    if not pointer.exists():
        raise IndexMissingError(f"no index at {root}: build one with `python -m ingest`")
    folder = root / "builds" / pointer.read_text().strip()
    if not (folder / "manifest.json").exists():
        raise IndexCorruptError(f"index at {root} points to a missing build ({folder.name}); run `python -m ingest --rebuild`")
    return folder


def open_index(root: Path) -> Index:
    """Load the live index under ``root``."""
    return Index.load(current_folder(root))


def write_index(index: Index, root: Path, *, keep: int = 1) -> Path:
    """Save ``index`` as a new build under ``root`` and switch ``CURRENT`` to it atomically.

    Older builds beyond the ``keep`` most recent are removed after the switch.
    """
    root = Path(root)
    folder = _build_folder(root)
    try:
        index.save(folder)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    tmp = root / f"CURRENT.{uuid.uuid4().hex[:8]}.tmp"
    tmp.write_text(folder.name)
    os.replace(tmp, root / "CURRENT")
    index.path = folder
    builds = sorted((p for p in (root / "builds").iterdir() if p.is_dir() and p != folder), key=lambda p: p.name)
    for old in builds[: max(0, len(builds) - keep + 1)]:
        shutil.rmtree(old, ignore_errors=True)
    return folder
