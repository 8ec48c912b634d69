"""Vectors an engine keeps: read row by row when a stage asks for them, never all at once.

An :class:`~rag.backends.engine.EngineIndex` holds the records (chunks, tokens, unit spans)
but not the vectors: the chunk, heading and unit vectors stay on the engine, and
:class:`RemoteRows` fetches the rows a stage indexes (``vectors[rows]``, ``units[a:b]``) by
key, keeping the most recently used ones. A hit list's candidates are a few hundred rows; a
100k-chunk index is 678k vectors (1 GB of float32) that no app process then holds.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence

import numpy as np

CACHE_ROWS = 16_384  # recently used rows kept per space (16k x 384 floats = 25 MB)


class RowFetcher:
    """Fetches rows of one engine collection by key (``fetch(keys) -> {key: vector(s)}``),
    keeping the ``cache`` most recently used; ``fetched`` counts rows read from the engine."""

    def __init__(self, fetch: Callable[[list[int]], dict[int, tuple[np.ndarray, ...]]], *, cache: int = CACHE_ROWS):
        if cache < 0:
            raise ValueError(f"cache must be >= 0, got {cache}")
        self._fetch, self._cap = fetch, cache
        self._lru: OrderedDict[int, tuple[np.ndarray, ...]] = OrderedDict()
        self.fetched = 0

    def get(self, keys: Iterable[int]) -> list[tuple[np.ndarray, ...]]:
        keys = [int(k) for k in keys]
        missing = [k for k in dict.fromkeys(keys) if k not in self._lru]
        got = self._fetch(missing) if missing else {}
        if len(got) != len(missing):
            lost = [k for k in missing if k not in got][:5]
            raise KeyError(f"the engine has no row with key {lost}")
        self.fetched += len(got)
        out = [got[k] if k in got else self._lru[k] for k in keys]
        for k in keys:
            if k in got:
                self._lru[k] = got[k]
            if k in self._lru:
                self._lru.move_to_end(k)
        while len(self._lru) > self._cap:
            self._lru.popitem(last=False)
        return out


class RemoteRows:
    """A read-only ``(n, dim)`` float32 matrix whose row ``i`` is column ``column`` of the
    engine row with key ``keys[i]``. Supports what the stages use: ``shape``, ``len``,
    ``m[i]``, ``m[a:b]``, ``m[rows]`` and ``m @ v`` (the latter reads every row, in batches,
    without keeping them)."""

    dtype = np.dtype(np.float32)
    ndim = 2

    def __init__(self, fetcher: RowFetcher, keys: np.ndarray, dim: int, *, column: int = 0, batch: int = 2048):
        self.fetcher, self.keys, self.dim, self.column, self.batch = fetcher, np.asarray(keys, np.int64), dim, column, batch

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.keys), self.dim)

    def __len__(self) -> int:
        return len(self.keys)

    def rows(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if len(rows) and (rows.min() < -len(self) or rows.max() >= len(self)):
            raise IndexError(f"row out of range for {len(self)} rows")
        if not len(rows):
            return np.zeros((0, self.dim), np.float32)
        got = self.fetcher.get(self.keys[rows].tolist())
        return np.vstack([g[self.column] for g in got]).astype(np.float32, copy=False)

    def __getitem__(self, item) -> np.ndarray:
        if isinstance(item, (int, np.integer)):
            return self.rows([int(item)])[0]
        if isinstance(item, slice):
            return self.rows(np.arange(len(self))[item])
        if isinstance(item, tuple):
            raise TypeError("RemoteRows takes one index (rows), not a tuple")
        arr = np.asarray(item)
        if arr.dtype == bool:
            return self.rows(np.flatnonzero(arr))
        return self.rows(arr)

    def __matmul__(self, other) -> np.ndarray:
        out = [self.rows(np.arange(lo, min(len(self), lo + self.batch))) @ other for lo in range(0, len(self), self.batch)]
        return np.concatenate(out) if out else np.zeros((0,) + np.shape(other)[1:], np.float32)

    def __array__(self, dtype=None, copy=None):
        raise TypeError("the engine's vectors are read by rows (m[rows]); converting all of them to one array "
                        "would hold the whole index in this process")
