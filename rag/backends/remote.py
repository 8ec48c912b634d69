"""Per-chunk data an engine keeps: read row by row when a stage asks for it, never all at once.

An :class:`~rag.backends.engine.EngineIndex` holds the global statistics of its index but no
per-chunk data: vectors (:class:`RemoteRows`: ``vectors[rows]``, ``units[a:b]``), chunk
records and tokens (:class:`RemoteColumn`), unit spans and kinds (:class:`UnitColumn`) are
fetched by key, the most recently used ones kept (:class:`RowFetcher`); row -> key is held per
document (:class:`KeyRanges`). A hit list's candidates are a few hundred rows; a 100k-chunk
index is 678k vectors (1 GB of float32) and 100k records that no app process then holds.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence

import numpy as np

CACHE_ROWS = 4096  # recently used rows kept per space (4k x 384 floats = 6 MB; a question reads a few hundred)


class RowFetcher:
    """Fetches rows of one engine collection by key (``fetch(keys) -> {key: vector(s)}``),
    keeping the ``cache`` most recently used; ``fetched`` counts rows read from the engine."""

    def __init__(self, fetch: Callable[[list[int]], dict[int, tuple[np.ndarray, ...]]], *, cache: int = CACHE_ROWS):
        if cache < 0:
            raise ValueError(f"cache must be >= 0, got {cache}")
        self._fetch, self._cap = fetch, cache
        self._lru: OrderedDict[int, tuple[np.ndarray, ...]] = OrderedDict()
        self._pinned: dict[int, tuple[np.ndarray, ...]] = {}
        self.fetched = 0

    def pin(self, keys: Iterable[int], *, batch: int = 2048) -> None:
        """Keep the rows with ``keys`` besides the recently used ones (rows every question reads)."""
        keys = [int(k) for k in dict.fromkeys(keys) if int(k) not in self._pinned]
        for lo in range(0, len(keys), batch):
            got = self._fetch(keys[lo : lo + batch])
            self.fetched += len(got)
            self._pinned.update(got)

    def get(self, keys: Iterable[int]) -> list[tuple[np.ndarray, ...]]:
        keys = [int(k) for k in keys]
        missing = [k for k in dict.fromkeys(keys) if k not in self._lru and k not in self._pinned]
        got = self._fetch(missing) if missing else {}
        if len(got) != len(missing):
            lost = [k for k in missing if k not in got][:5]
            raise KeyError(f"the engine has no row with key {lost}")
        self.fetched += len(got)
        out = [got[k] if k in got else self._pinned[k] if k in self._pinned else self._lru[k] for k in keys]
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
    without keeping them: through ``bulk(keys) -> {key: vector}`` when given, which asks the
    engine for the vectors alone). ``keys``: an array, or a :class:`KeyRanges`."""

    dtype = np.dtype(np.float32)
    ndim = 2

    def __init__(self, fetcher: RowFetcher, keys, dim: int, *, column: int = 0, batch: int = 2048,
                 bulk: Callable[[list[int]], dict[int, np.ndarray]] | None = None):
        self.fetcher, self.dim, self.column, self.batch, self.bulk = fetcher, dim, column, batch, bulk
        self.keys = keys if isinstance(keys, KeyRanges) else np.asarray(keys, np.int64)

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

    def _batch(self, lo: int) -> np.ndarray:
        rows = np.arange(lo, min(len(self), lo + self.batch))
        if self.bulk is None:
            return self.rows(rows)
        keys = self.keys[rows].tolist()  # every row once: read just the vectors, keep none
        got = self.bulk(keys)
        return np.vstack([got[k] for k in keys]).astype(np.float32, copy=False)

    def __matmul__(self, other) -> np.ndarray:
        out = [self._batch(lo) @ other for lo in range(0, len(self), self.batch)]
        return np.concatenate(out) if out else np.zeros((0,) + np.shape(other)[1:], np.float32)

    def __array__(self, dtype=None, copy=None):
        raise TypeError("the engine's vectors are read by rows (m[rows]); converting all of them to one array "
                        "would hold the whole index in this process")


class KeyRanges:
    """Row -> engine key of a version's layout, held per document rather than per row: a
    document's rows have consecutive keys (``starts[d]`` the first row of document ``d``,
    ``keys[d]`` its first key). ``m[rows]`` gives keys; :meth:`rows_of` maps keys back."""

    def __init__(self, first_keys: Sequence[int], counts: Sequence[int]):
        self.counts = np.asarray(counts, np.int64)
        self.first = np.asarray(first_keys, np.int64)
        self.starts = np.concatenate([[0], np.cumsum(self.counts)]).astype(np.int64)
        order = np.argsort(self.first, kind="stable")
        self._by_key = (self.first[order], order)

    def __len__(self) -> int:
        return int(self.starts[-1])

    def __getitem__(self, rows) -> np.ndarray | int:
        arr = np.asarray(rows, np.int64)
        if arr.ndim == 0:
            return int(self[arr.reshape(1)][0])
        arr = np.where(arr < 0, arr + len(self), arr)
        if len(arr) and (arr.min() < 0 or arr.max() >= len(self)):
            raise IndexError(f"row out of range for {len(self)} rows")
        d = np.searchsorted(self.starts, arr, side="right") - 1
        return self.first[d] + (arr - self.starts[d])

    def rows_of(self, keys) -> tuple[np.ndarray, np.ndarray]:
        """Row numbers of ``keys`` the layout holds, and which of ``keys`` it holds."""
        keys = np.asarray(keys, np.int64).reshape(-1)
        sk, order = self._by_key
        if not len(sk):
            return np.zeros(0, np.int64), np.zeros(len(keys), bool)
        at = np.searchsorted(sk, keys, side="right") - 1
        d = order[np.maximum(at, 0)]
        held = (at >= 0) & (keys - self.first[d] < self.counts[d])
        return (self.starts[d] + keys - self.first[d])[held], held

    def tolist(self) -> list[int]:
        return self[np.arange(len(self))].tolist()


class RemoteColumn:
    """A read-only sequence whose item ``i`` is field ``column`` of the engine row with key
    ``keys[i]`` (a chunk's record, its tokens …), read through a :class:`RowFetcher`.
    Iterating reads every row in batches (for the few features that need them all) without
    keeping more than the fetcher's cache."""

    def __init__(self, fetcher: RowFetcher, keys, column: int, *, batch: int = 512):
        self.fetcher, self.keys, self.column, self.batch = fetcher, keys, column, batch

    def __len__(self) -> int:
        return len(self.keys)

    def many(self, rows: Sequence[int]) -> list:
        """Items ``rows``, read with one request for those not cached."""
        rows = [int(r) for r in rows]
        if not rows:
            return []
        return [g[self.column] for g in self.fetcher.get(self.keys[np.asarray(rows, np.int64)].tolist())]

    def __getitem__(self, item):
        if isinstance(item, slice):
            return self.many(range(*item.indices(len(self))))
        i = int(item)
        if not -len(self) <= i < len(self):
            raise IndexError(f"row {i} out of range for {len(self)} rows")
        return self.many([i % len(self)])[0]

    def __iter__(self):
        for lo in range(0, len(self), self.batch):
            yield from self.many(range(lo, min(len(self), lo + self.batch)))


class UnitColumn:
    """Per-unit values kept in their chunk's row (unit spans, unit kinds): ``m[a:b]`` for the
    units of one chunk (``offsets[i]:offsets[i+1]``) reads that chunk's row only."""

    def __init__(self, chunks: RemoteColumn, offsets: np.ndarray, *, width: int | None = None, dtype=np.int64):
        self.chunks, self.offsets, self.width, self.dtype = chunks, offsets, width, dtype

    def __len__(self) -> int:
        return int(self.offsets[-1])

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self),) if self.width is None else (len(self), self.width)

    def __getitem__(self, item) -> np.ndarray:
        if not isinstance(item, slice) or item.step not in (None, 1):
            raise TypeError("per-unit values of an engine index are read by ranges of units (m[a:b])")
        a, b, _ = item.indices(len(self))
        empty = np.zeros((0,) if self.width is None else (0, self.width), self.dtype)
        if b <= a:
            return empty
        first = int(np.searchsorted(self.offsets, a, side="right") - 1)
        last = int(np.searchsorted(self.offsets, b - 1, side="right") - 1)
        parts = [np.asarray(v, self.dtype).reshape(empty.shape[:0] + (-1,) + empty.shape[1:])
                 for v in self.chunks.many(range(first, last + 1))]
        got = np.concatenate(parts + [empty])
        lo = a - int(self.offsets[first])
        return got[lo : lo + (b - a)]

    def __array__(self, dtype=None, copy=None):
        raise TypeError("per-unit values of an engine index are read by ranges of units (m[a:b])")


class UnitOwner:
    """The chunk row of each unit row (``owner[units]``), from the unit offsets (not one entry per unit)."""

    def __init__(self, offsets: np.ndarray):
        self.offsets = offsets

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getitem__(self, units) -> np.ndarray:
        return np.searchsorted(self.offsets, np.asarray(units, np.int64), side="right") - 1
