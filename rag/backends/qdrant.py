"""Qdrant through ``qdrant-client``: local mode for ``qdrant+local:///ABSOLUTE/PATH`` (pure
Python, one process at a time, fine at thousands of items), a Qdrant server or cluster for
``qdrant://HOST:PORT`` — the same calls, only the client's constructor differs.

Point ids are our integer row keys (Qdrant takes integers or UUIDs only); the document id
is a payload field. Local mode always searches exactly; a server honours the HNSW setting.

What a stored point costs in local mode (profiled at 1k chunks + 5.9k units, see
``eval/results/scale-backends.md``) and what is done about it here:

- the client commits its SQLite file once per point, and a commit in the default rollback
  journal waits for the disk (83% of the write's time): each local collection's file is put
  in WAL mode with ``synchronous=NORMAL`` (commits no longer wait for the disk; a power cut can
  lose the last commits but not damage the file), and :meth:`QdrantEngine.settle` checkpoints
  it (``wal_checkpoint(FULL)``, which does wait for the disk) before the pointer names the rows;
- the client holds every stored payload as Python objects and, on open, every dense vector
  as a list of Python floats (12 KB per point, until all are read): the payload is kept as one
  JSON string (the heading vector in it as base64 of its float32 bytes, exact), and a local
  point's dense vector is handed over as a float32 array, which the client stores (pickled) and
  reads back as such (1.5 KB). A server gets plain lists, as before.
"""

from __future__ import annotations

import atexit
import base64
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from rag.backends.base import Row, as_top
from rag.errors import RagError

BATCH = 256
_CLIENTS: dict[tuple, object] = {}


def client(*, path: str | None = None, url: str | None = None, api_key: str | None = None):
    """One ``QdrantClient`` per target and process (local mode locks its folder)."""
    key = (path, url, api_key)
    if key not in _CLIENTS:
        try:
            from qdrant_client import QdrantClient
        except ImportError:
            raise RagError("this index is on Qdrant: install it with `pip install qdrant-client`") from None
        c = _CLIENTS[key] = QdrantClient(path=path) if path is not None else QdrantClient(url=url, api_key=api_key)
        atexit.register(c.close)  # before the interpreter tears down what close() needs
    return _CLIENTS[key]


class QdrantEngine:
    """Collections of :class:`~rag.backends.base.Row` s on one Qdrant target."""

    def __init__(self, *, path: str | None = None, url: str | None = None, api_key: str | None = None):
        self.target = path or url
        self.local = path is not None  # local mode always searches exactly and says so if asked otherwise
        self.c = client(path=path, url=url, api_key=api_key)

    def names(self) -> list[str]:
        return [c.name for c in self.c.get_collections().collections]

    def create(self, name: str, *, dim: int, sparse: bool, hnsw: bool) -> None:
        from qdrant_client import models

        self.c.create_collection(
            name,
            vectors_config={"dense": models.VectorParams(size=dim, distance=models.Distance.DOT,
                                                          hnsw_config=models.HnswConfigDiff(m=32, ef_construct=80))},
            sparse_vectors_config={"sparse": models.SparseVectorParams()} if sparse else None,
        )

    def drop(self, name: str) -> None:
        self.c.delete_collection(name)

    def _local_collection(self, name: str):
        """The client's in-process collection (local mode; ``None`` for a server or another client version)."""
        return getattr(getattr(self.c, "_client", None), "collections", {}).get(name) if self.local else None

    def _sqlite(self, name: str):
        return getattr(getattr(self._local_collection(name), "storage", None), "storage", None)

    def _quick_commits(self, name: str) -> None:
        """WAL and ``synchronous=NORMAL`` for a local collection's SQLite file (see the module docstring)."""
        con = self._sqlite(name)
        if con is not None and con.execute("PRAGMA synchronous").fetchone()[0] != 1:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")

    def upsert(self, name: str, rows: Sequence[Row]) -> None:
        from qdrant_client import models

        self._quick_commits(name)
        for i in range(0, len(rows), BATCH):
            points = []
            for r in rows[i : i + BATCH]:
                dense = np.asarray(r.dense, np.float32)
                vec: dict[str, Any] = {"dense": dense if self.local else dense.tolist()}
                if r.sparse is not None:
                    vec["sparse"] = models.SparseVector(indices=[int(t) for t in r.sparse],
                                                        values=[float(w) for w in r.sparse.values()])
                payload = {"doc_id": r.doc_id, "j": _pack(r.payload), "lang": r.lang}
                # local mode: built without validation, which would turn the array into a list of floats
                points.append(models.PointStruct.model_construct(id=r.key, vector=vec, payload=payload) if self.local
                              else models.PointStruct(id=r.key, vector=vec, payload=payload))
            self.c.upsert(name, points, wait=True)

    insert = upsert  # a point id that is new is simply written

    def _doc_filter(self, doc_id: str):
        from qdrant_client import models

        return models.Filter(must=[models.FieldCondition(key="doc_id", match=models.MatchValue(value=doc_id))])

    def delete_doc(self, name: str, doc_id: str) -> int:
        from qdrant_client import models

        n = self.c.count(name, count_filter=self._doc_filter(doc_id), exact=True).count
        self.c.delete(name, points_selector=models.FilterSelector(filter=self._doc_filter(doc_id)), wait=True)
        return int(n)

    def _query(self, name: str, query, using: str, k: int, exact: bool, langs: Sequence[str] | None = None):
        from qdrant_client import models

        params = None if self.local else models.SearchParams(exact=exact, hnsw_ef=max(128, k))
        where = None if langs is None else models.Filter(
            must=[models.FieldCondition(key="lang", match=models.MatchAny(any=list(langs)))])
        pts = self.c.query_points(name, query=query, using=using, limit=k, search_params=params, query_filter=where,
                                  with_payload=False).points
        return as_top([p.id for p in pts], [p.score for p in pts])

    def dense_top(self, name: str, vector: np.ndarray, k: int, *, exact: bool = True,
                  langs: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``langs``: only rows whose ``lang`` is one of them."""
        return self._query(name, np.asarray(vector, np.float32).tolist(), "dense", k, exact, langs)

    def sparse_top(self, name: str, weights: Mapping[int, float], k: int) -> tuple[np.ndarray, np.ndarray]:
        from qdrant_client import models

        if not weights:
            return as_top([], [])
        q = models.SparseVector(indices=[int(t) for t in weights], values=[float(w) for w in weights.values()])
        keys, scores = self._query(name, q, "sparse", k, True)
        keep = scores > 0
        return keys[keep], scores[keep]

    def count(self, name: str) -> int:
        return int(self.c.count(name, exact=True).count)

    def scan(self, name: str, n: int, *, vectors: bool = True) -> Iterator[Row]:
        """Rows with keys ``0 … n-1``, in key order."""
        for lo in range(0, n, BATCH):
            pts = self.c.retrieve(name, ids=list(range(lo, min(n, lo + BATCH))), with_payload=True,
                                  with_vectors=["dense"] if vectors else False)
            for p in sorted(pts, key=lambda p: p.id):
                dense = p.vector["dense"] if vectors and p.vector else ()
                yield Row(int(p.id), p.payload["doc_id"], np.asarray(dense, np.float32), None, _unpack(p.payload))

    def fetch(self, name: str, keys: Sequence[int], *, vectors: bool = True, payload: bool = True) -> dict[int, Row]:
        """The rows with ``keys`` (missing ones left out), with their dense vectors if ``vectors``
        and their payloads if ``payload``."""
        out: dict[int, Row] = {}
        for lo in range(0, len(keys), BATCH):
            for p in self.c.retrieve(name, ids=[int(k) for k in keys[lo : lo + BATCH]], with_payload=payload,
                                     with_vectors=["dense"] if vectors else False):
                dense = p.vector["dense"] if vectors and p.vector else ()
                pl = p.payload or {}
                out[int(p.id)] = Row(int(p.id), pl.get("doc_id") or "_", np.asarray(dense, np.float32), None,
                                     _unpack(pl) if pl else {})
        return out

    def delete_keys(self, name: str, keys: Sequence[int]) -> None:
        from qdrant_client import models

        for lo in range(0, len(keys), BATCH):
            self.c.delete(name, points_selector=models.PointIdsList(points=[int(k) for k in keys[lo : lo + BATCH]]),
                          wait=True)

    def settle(self, name: str, expected: int, probe: np.ndarray) -> None:
        con = self._sqlite(name)
        if con is not None:  # local mode: the commits reach the disk before anything names them
            con.execute("PRAGMA wal_checkpoint(FULL)")
        n = self.count(name)  # upserts waited for; a count is the check
        if n != expected:
            raise RagError(f"Qdrant collection {name} holds {n} of {expected} rows")


_HEAD = "head"  # the chunk payload's heading vector (a list of floats, or None)


def _pack(payload: Mapping[str, Any]) -> str:
    """A row's payload as one JSON string, a heading vector in it as base64 of its float32 bytes."""
    p = dict(payload)
    if isinstance(p.get(_HEAD), (list, np.ndarray)):
        p[_HEAD] = base64.b64encode(np.asarray(p[_HEAD], "<f4").tobytes()).decode("ascii")
    return json.dumps(p, ensure_ascii=False, separators=(",", ":"))


def _unpack(stored: Mapping[str, Any]) -> dict[str, Any]:
    """The payload :func:`_pack` stored (or, from an index written before it, the ``p`` dict)."""
    if "j" not in stored:
        return stored["p"]
    p = json.loads(stored["j"])
    if isinstance(p.get(_HEAD), str):
        p[_HEAD] = np.frombuffer(base64.b64decode(p[_HEAD]), "<f4").tolist()
    return p
