"""Milvus through ``MilvusClient``: Milvus Lite for a path ending in ``.db``, a Milvus server
or cluster for ``milvus://HOST:PORT`` — the same calls.

Milvus Lite (3.x, pure Python, in the writing process) reports every index ``Finished``
while its background worker is still compacting segments and building their HNSW graphs
(searches meanwhile fall back to brute force over those segments): :meth:`MilvusEngine.settle`
flushes, waits for that worker to drain (a Milvus server: until ``describe_index`` counts
every row indexed), then until a strongly consistent ``count(*)`` and a probe search agree,
before the version is switched in. A new version's rows are written with ``insert`` in large
batches: ``upsert`` looks every key up first, which in Milvus Lite reads the segments
written so far, once per row.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from rag.backends.base import Row, as_top
from rag.errors import RagError

BATCH = 512  # rows per read
WRITE_BATCH = 2048  # rows per insert (~8 MB of vectors and payload: far below gRPC's 64 MB)
MAX_TOPK = 16_384  # Milvus's limit on one search's k
SETTLE_SECONDS = 600.0  # an HNSW build over ~600k unit vectors on 2 busy cores takes minutes
NO_TERM = 2**32 - 2  # the largest sparse index Milvus takes; our term ids count from 0
_CLIENTS: dict[tuple[str, str], object] = {}


def client(uri: str, token: str = ""):
    """One ``MilvusClient`` per target and process (Milvus Lite runs one local server per file)."""
    key = (uri, token)
    if key not in _CLIENTS:
        try:
            from pymilvus import MilvusClient
        except ImportError:
            raise RagError("this index is on Milvus: install it with `pip install 'pymilvus[milvus-lite]'`") from None
        _CLIENTS[key] = MilvusClient(uri=uri, token=token) if token else MilvusClient(uri=uri)
    return _CLIENTS[key]


class MilvusEngine:
    """Collections of :class:`~rag.backends.base.Row` s on one Milvus target."""

    def __init__(self, uri: str, *, token: str = ""):
        self.target = uri
        self.c = client(uri, token)
        self._loaded: set[str] = set()

    def _load(self, name: str) -> str:
        """Collections are released when Milvus (Lite) restarts: load before the first read."""
        if name not in self._loaded:
            self.c.load_collection(name)
            self._loaded.add(name)
        return name

    def names(self) -> list[str]:
        return list(self.c.list_collections())

    def create(self, name: str, *, dim: int, sparse: bool, hnsw: bool) -> None:
        from pymilvus import DataType, MilvusClient

        s = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        s.add_field("id", DataType.INT64, is_primary=True)
        s.add_field("doc_id", DataType.VARCHAR, max_length=4096)
        s.add_field("dense", DataType.FLOAT_VECTOR, dim=dim)
        if sparse:
            s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        s.add_field("payload", DataType.JSON)
        s.add_field("lang", DataType.VARCHAR, max_length=64)
        ip = self.c.prepare_index_params()
        if hnsw:
            ip.add_index("dense", index_type="HNSW", metric_type="IP", params={"M": 32, "efConstruction": 80})
        else:
            ip.add_index("dense", index_type="FLAT", metric_type="IP")
        if sparse:
            ip.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
        # Session reads: this client sees its own writes without a strong read's wait; other
        # processes read a version only after settle() saw every row with a strong read
        self.c.create_collection(name, schema=s, index_params=ip, consistency_level="Session")

    def drop(self, name: str) -> None:
        self._loaded.discard(name)
        self.c.drop_collection(name)

    def upsert(self, name: str, rows: Sequence[Row]) -> None:
        """Insert or replace ``rows`` by key."""
        self._write(self.c.upsert, name, rows)

    def insert(self, name: str, rows: Sequence[Row]) -> None:
        """Add ``rows`` whose keys the collection does not hold yet (no look-up per key)."""
        self._write(self.c.insert, name, rows)

    def _write(self, call, name: str, rows: Sequence[Row]) -> None:
        for i in range(0, len(rows), WRITE_BATCH):
            batch = []
            for r in rows[i : i + WRITE_BATCH]:
                rec = {"id": r.key, "doc_id": r.doc_id, "dense": np.asarray(r.dense, np.float32).tolist(),
                       "payload": dict(r.payload), "lang": r.lang}
                if r.sparse is not None:
                    # Milvus refuses a sparse row without a nonzero weight: a chunk without terms gets a
                    # negligible weight on a term id no query has
                    rec["sparse"] = {int(t): float(w) for t, w in r.sparse.items() if w} or {NO_TERM: 1e-30}
                batch.append(rec)
            call(name, batch)

    def delete_doc(self, name: str, doc_id: str) -> int:
        n = self.c.query(self._load(name), filter=f"doc_id == {json.dumps(doc_id)}", output_fields=["count(*)"],
                         consistency_level="Strong")[0]["count(*)"]
        self.c.delete(name, filter=f"doc_id == {json.dumps(doc_id)}")
        return int(n)

    def _search(self, name: str, data, field: str, k: int, params: dict, where: str = ""):
        res = self.c.search(self._load(name), data=[data], anns_field=field, limit=min(k, MAX_TOPK), filter=where,
                            search_params={"metric_type": "IP", "params": params}, output_fields=["id"])
        hits = res[0]
        return as_top([h["id"] for h in hits], [h["distance"] for h in hits])

    def dense_top(self, name: str, vector: np.ndarray, k: int, *, exact: bool = True,
                  langs: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``exact`` is the collection's own setting here (FLAT or HNSW, chosen at creation);
        ``langs``: only rows whose ``lang`` is one of them."""
        where = f"lang in {json.dumps(list(langs))}" if langs is not None else ""
        return self._search(name, np.asarray(vector, np.float32).tolist(), "dense", k, {"ef": max(128, min(k, MAX_TOPK))},
                            where)

    def sparse_top(self, name: str, weights: Mapping[int, float], k: int) -> tuple[np.ndarray, np.ndarray]:
        if not weights:
            return as_top([], [])
        keys, scores = self._search(name, {int(t): float(w) for t, w in weights.items()}, "sparse", k, {})
        keep = scores > 0
        return keys[keep], scores[keep]

    def count(self, name: str) -> int:
        return int(self.c.query(self._load(name), filter="", output_fields=["count(*)"],
                                consistency_level="Strong")[0]["count(*)"])

    def scan(self, name: str, n: int, *, vectors: bool = True) -> Iterator[Row]:
        """Rows with keys ``0 … n-1``, in key order."""
        fields = ["id", "doc_id", "payload"] + (["dense"] if vectors else [])
        for lo in range(0, n, BATCH):
            got = self.c.query(self._load(name), filter=f"id >= {lo} and id < {lo + BATCH}", output_fields=fields,
                               limit=BATCH, consistency_level="Strong")
            for r in sorted(got, key=lambda r: r["id"]):
                yield Row(int(r["id"]), r["doc_id"], np.asarray(r.get("dense", ()), np.float32), None, r["payload"])

    def fetch(self, name: str, keys: Sequence[int], *, vectors: bool = True, payload: bool = True) -> dict[int, Row]:
        """The rows with ``keys`` (missing ones left out), with their dense vectors if ``vectors``
        and their payloads if ``payload`` (a field not asked for is not packed by pymilvus)."""
        out: dict[int, Row] = {}
        fields = ["id"] + (["doc_id", "payload"] if payload else []) + (["dense"] if vectors else [])
        for lo in range(0, len(keys), BATCH):
            part = [int(k) for k in keys[lo : lo + BATCH]]
            for r in self.c.query(self._load(name), filter=f"id in {part}", output_fields=fields, limit=len(part)):
                dense = np.asarray(r.get("dense", ()), np.float32)
                out[int(r["id"])] = Row(int(r["id"]), r.get("doc_id") or "_", dense, None, r.get("payload", {}))
        return out

    def delete_keys(self, name: str, keys: Sequence[int]) -> None:
        for lo in range(0, len(keys), WRITE_BATCH):
            self.c.delete(name, ids=[int(k) for k in keys[lo : lo + WRITE_BATCH]])

    def settle(self, name: str, expected: int, probe: np.ndarray) -> None:
        """Wait until ``name`` serves all ``expected`` rows (see the module docstring)."""
        self.c.flush(name)
        deadline = time.monotonic() + SETTLE_SECONDS
        self._wait_for_indexes(name, expected, deadline)
        self.c.load_collection(name)
        while True:
            n = self.count(name)
            found = len(self.dense_top(name, probe, 1)[0]) if expected else 0
            if n == expected and found == min(1, expected):
                return
            if time.monotonic() > deadline:
                raise RagError(f"Milvus collection {name} serves {n} of {expected} rows after {SETTLE_SECONDS:.0f}s")
            time.sleep(0.2)

    def _wait_for_indexes(self, name: str, expected: int, deadline: float) -> None:
        lite = _lite_collection(self.target, name)
        if lite is not None:  # in this process: its background worker is the one to wait for
            lite._wait_for_bg(timeout=max(1.0, deadline - time.monotonic()))
            return
        while time.monotonic() < deadline:  # a server: its own account of indexed rows
            info = [self.c.describe_index(name, f) or {} for f in self.c.list_indexes(name)]
            if all(int(i.get("pending_index_rows", 0)) == 0 and int(i.get("indexed_rows", expected)) >= expected
                   for i in info):
                return
            time.sleep(1.0)


def _lite_collection(target: str, name: str):
    """Milvus Lite's own collection object when ``target`` is a .db file served in this process."""
    if not target.endswith(".db"):
        return None
    try:
        from milvus_lite.server_manager import server_manager_instance
    except ImportError:
        return None
    entry = getattr(server_manager_instance, "_servers", {}).get(os.path.abspath(target))
    if entry is None or not hasattr(entry[1], "get_collection"):
        return None
    col = entry[1].get_collection(name)
    return col if hasattr(col, "_wait_for_bg") else None
