"""Keyword leg: Okapi BM25 (``rank_bm25.BM25Okapi``) over analyzed tokens.

``rank_bm25`` computes the statistics (document frequencies, idf with its epsilon floor,
lengths); scoring uses a sparse term-by-chunk matrix of the same BM25 term weights, so a
query costs its postings rather than a Python loop over every chunk (``get_scores`` takes
seconds at 100k chunks). Tests check the two agree. Saved as plain files — the parameters
(``bm25.json``), one token list per chunk (``bm25_tokens.jsonl``), and, as bm25s does, the
computed score matrix (``bm25_matrix.npz``), its vocabulary (``bm25_vocab.json``) and idf
(``bm25_idf.npy``) — so loading is a read, not a rebuild; nothing is pickled.
"""

from __future__ import annotations

import functools
import json
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
from rank_bm25 import BM25Okapi

from rag.analyze import get_analyzer

MATRIX_FILE, VOCAB_FILE, IDF_FILE = "bm25_matrix.npz", "bm25_vocab.json", "bm25_idf.npy"


def length_norm(length: float, avgdl: float, k1: float, b: float) -> float:
    """The BM25 length normalisation of a chunk of ``length`` tokens: k1 x (1 - b + b x length / mean)."""
    return k1 * (1 - b + b * length / avgdl)


def term_weight(idf: float, tf: float, norm: float, k1: float) -> float:
    """A term's BM25 weight in a chunk: idf x tf x (k1 + 1) / (tf + norm), as ``rank_bm25`` sums it
    (the folder's matrix and an engine's per-row scores both use this, so they agree bit for bit)."""
    return idf * tf * (k1 + 1) / (tf + norm)


class BM25Terms:
    """What every keyword index answers from its terms' idf (``self._idf``) and chunk tokens."""

    tokens: object
    _idf: dict[str, float]

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def vocabulary(self):
        return self._idf.keys()

    def idf(self, token: str) -> float:
        return float(self._idf.get(token, 0.0))

    def counts(self, query_tokens) -> Counter:
        """The query's terms the index knows, each with how often the query repeats it."""
        return Counter(t for t in query_tokens if t in self._idf)


class BM25Index(BM25Terms):
    """BM25 over ``tokens[i]`` (the analyzed text of chunk ``i``)."""

    def __init__(self, tokens: list[list[str]], *, analyzer: str, k1: float = 1.2, b: float = 0.75,
                 _computed: tuple[list[str], np.ndarray, object] | None = None):
        if not tokens:
            raise ValueError("BM25Index needs at least one document")
        if k1 <= 0 or not 0 <= b <= 1:
            raise ValueError(f"need k1 > 0 and 0 <= b <= 1, got k1={k1}, b={b}")
        self.tokens = tokens
        self.analyzer = analyzer
        self.analyze = get_analyzer(analyzer)
        self.k1, self.b = k1, b
        if _computed is None:
            vocab, idf, self._weights = self._term_matrix(self._okapi)
            # rank_bm25's per-chunk term dictionaries are only for reference_scores (rebuilt on
            # demand): kept, they would double an opened engine index's memory
            del self.__dict__["_okapi"]
        else:  # read from a saved index (load)
            vocab, idf, self._weights = _computed
        self._terms = {t: i for i, t in enumerate(vocab)}
        self._idf = dict(zip(vocab, idf.tolist()))
        self._idf_array = np.asarray(idf, dtype=np.float64)

    @functools.cached_property
    def _okapi(self) -> BM25Okapi:
        # An all-empty corpus would divide by zero inside rank_bm25.
        return BM25Okapi([t if t else [""] for t in self.tokens], k1=self.k1, b=self.b)

    @staticmethod
    def _term_matrix(bm: BM25Okapi):
        """The vocabulary, its idf and the CSR matrix (term x chunk) of BM25 term weights,
        exactly as ``BM25Okapi.get_scores`` sums them."""
        from scipy.sparse import csr_matrix

        terms = {t: i for i, t in enumerate(bm.idf)}
        rows, cols, vals = [], [], []
        for j, (freqs, dl) in enumerate(zip(bm.doc_freqs, bm.doc_len)):
            norm = length_norm(dl, bm.avgdl, bm.k1, bm.b)
            for t, tf in freqs.items():
                rows.append(terms[t])
                cols.append(j)
                vals.append(term_weight(bm.idf[t], tf, norm, bm.k1))
        shape = (len(terms), len(bm.doc_freqs))
        idf = np.array([bm.idf[t] for t in terms], dtype=np.float64)
        return list(terms), idf, csr_matrix((np.asarray(vals, np.float64), (rows, cols)), shape=shape)

    def scores(self, query_tokens: list[str]) -> np.ndarray:
        """BM25 score of every chunk for the (already analyzed) query; a repeated query token
        counts each time, as in ``rank_bm25``."""
        counts = self.counts(query_tokens)
        if not counts:
            return np.zeros(len(self), dtype=np.float32)
        rows = np.fromiter((self._terms[t] for t in counts), dtype=np.int64, count=len(counts))
        weights = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
        return np.asarray(self._weights[rows].T @ weights, dtype=np.float32).reshape(len(self))

    def reference_scores(self, query_tokens: list[str]) -> np.ndarray:
        """``rank_bm25``'s own (slow) scoring, for tests and checks."""
        return np.asarray(self._okapi.get_scores(query_tokens), dtype=np.float32)

    def leg(self, query_tokens: list[str], n: int, *,
            rows: np.ndarray | None = None) -> tuple[dict[int, float], np.ndarray]:
        """The searcher's keyword leg: the top ``n`` chunks (among ``rows``, if given; the others
        score 0) with their scores, and every chunk's score (an engine-backed index answers the
        top ``n`` from its sparse vectors)."""
        scores = self.scores(query_tokens)
        if rows is not None:
            inside = np.zeros(len(scores), dtype=np.float32)
            inside[rows] = scores[rows]
            scores = inside
        idx, s = top_n(scores, n)
        return dict(zip(idx.tolist(), s.tolist())), scores

    def top(self, query_tokens: list[str], n: int) -> tuple[np.ndarray, np.ndarray]:
        """Indices and scores of the ``n`` best chunks with a positive score, best first."""
        return top_n(self.scores(query_tokens), n)

    def save(self, folder: Path) -> None:
        (folder / "bm25.json").write_text(json.dumps({"analyzer": self.analyzer, "k1": self.k1, "b": self.b}))
        with open(folder / "bm25_tokens.jsonl", "w", encoding="utf-8") as f:
            for t in self.tokens:
                f.write(json.dumps(t, ensure_ascii=False) + "\n")
        w = self._weights
        np.savez(folder / MATRIX_FILE, data=w.data, indices=w.indices, indptr=w.indptr, shape=np.array(w.shape))
        (folder / VOCAB_FILE).write_text(json.dumps(list(self._terms), ensure_ascii=False), encoding="utf-8")
        np.save(folder / IDF_FILE, self._idf_array, allow_pickle=False)

    @classmethod
    def load(cls, folder: Path) -> BM25Index:
        """Load what :meth:`save` wrote; ``ValueError`` if it is not that."""
        params = json.loads((folder / "bm25.json").read_text(encoding="utf-8"))
        if not isinstance(params, dict) or not all(isinstance(params.get(k), (int, float)) for k in ("k1", "b")):
            raise ValueError("bm25.json does not hold the BM25 parameters")
        tokens = []
        with open(folder / "bm25_tokens.jsonl", encoding="utf-8") as f:
            for n, line in enumerate(f, start=1):
                t = json.loads(line)
                if not isinstance(t, list) or not all(isinstance(x, str) for x in t):
                    raise ValueError(f"bm25_tokens.jsonl line {n} is not a list of tokens")
                tokens.append(t)
        vocab = json.loads((folder / VOCAB_FILE).read_text(encoding="utf-8"))
        if not isinstance(vocab, list) or not all(isinstance(t, str) for t in vocab) or len(set(vocab)) != len(vocab):
            raise ValueError(f"{VOCAB_FILE} is not a list of distinct terms")
        idf = np.load(folder / IDF_FILE, allow_pickle=False)
        try:
            with np.load(folder / MATRIX_FILE, allow_pickle=False) as z:
                parts = {k: z[k] for k in ("data", "indices", "indptr", "shape")}
        except (zipfile.BadZipFile, KeyError) as e:
            raise ValueError(f"{MATRIX_FILE} is unreadable ({e})") from None
        return cls(tokens, analyzer=params.get("analyzer"), k1=params["k1"], b=params["b"],
                   _computed=(vocab, idf, _matrix(parts, (len(vocab), len(tokens)), idf)))


def top_n(scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and values of the ``n`` largest positive ``scores``, best first."""
    n = min(n, len(scores))
    if n <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    idx = np.argpartition(-scores, n - 1)[:n] if n < len(scores) else np.arange(len(scores))
    idx = idx[np.argsort(-scores[idx], kind="stable")]
    keep = scores[idx] > 0
    return idx[keep], scores[idx][keep]


def _matrix(parts: dict[str, np.ndarray], shape: tuple[int, int], idf: np.ndarray):
    """The saved CSR score matrix, checked against the vocabulary and chunk count."""
    from scipy.sparse import csr_matrix

    data, indices, indptr = parts["data"], parts["indices"], parts["indptr"]
    if tuple(int(x) for x in parts["shape"]) != shape or idf.shape != (shape[0],):
        raise ValueError(f"{MATRIX_FILE} / {IDF_FILE} do not match the vocabulary and chunks {shape}")
    if data.dtype.kind != "f" or indices.dtype.kind not in "iu" or indptr.dtype.kind not in "iu" or idf.dtype.kind != "f":
        raise ValueError(f"{MATRIX_FILE} holds arrays of the wrong type")
    if len(indptr) != shape[0] + 1 or len(data) != len(indices) or indptr[0] != 0 or int(indptr[-1]) != len(data) \
            or (np.diff(indptr) < 0).any() or (len(indices) and (indices.min() < 0 or indices.max() >= shape[1])) \
            or not np.isfinite(data).all() or not np.isfinite(idf).all():
        raise ValueError(f"{MATRIX_FILE} is not a valid score matrix")
    return csr_matrix((data.astype(np.float64, copy=False), indices, indptr), shape=shape)
