"""Where the index lives, chosen by one setting (``--index`` / ``STUDYRAG_INDEX``).

=====================================  ===============================================
``index`` (any folder path)            the embedded FAISS + BM25 folder (the default)
``classes.db`` (a path ending .db)     Milvus Lite through ``MilvusClient``
``milvus://HOST:PORT[?token=T]``       a Milvus server or cluster, same code
``qdrant+local:///ABSOLUTE/PATH``      qdrant-client's local mode
``qdrant://HOST:PORT[?api_key=K]``     a Qdrant server or cluster, same code
=====================================  ===============================================

:func:`locate` is the one place a setting is read; :func:`open_index`, :func:`write_index`,
:func:`write_lock`, :func:`live_key` and :func:`backend` are what the CLI, the ingest and the
app call. Engine clients are imported only when an engine URI is used.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from filelock import FileLock

from rag.backends.base import CHUNKS, SPACES, UNITS, IndexBackend, Row
from rag.errors import RagError

__all__ = ["CHUNKS", "SPACES", "UNITS", "IndexBackend", "Location", "Row", "backend", "live_key", "locate", "new_backend", "open_live",
           "open_index", "write_index", "write_lock"]

KINDS = ("folder", "milvus-lite", "milvus", "qdrant-local", "qdrant")
PREFIX = "studyrag"


@dataclass(frozen=True)
class Location:
    """A parsed index setting: ``kind`` (one of :data:`KINDS`), ``target`` (folder, file, URL
    or local path) and the engine's credential, if any (never printed)."""

    kind: str
    target: str
    secret: str = ""
    uri: str = ""

    @property
    def is_folder(self) -> bool:
        return self.kind == "folder"

    def __repr__(self) -> str:
        return f"Location(kind={self.kind!r}, target={self.target!r})"


def locate(setting: str | Path) -> Location:
    """Parse an index setting; a malformed engine URI is a :class:`ValueError` naming it."""
    if isinstance(setting, Path):
        return Location("folder", str(setting), uri=str(setting))
    s = str(setting).strip()
    if not s:
        raise ValueError("index setting is empty: give a folder, a .db file or a milvus:// / qdrant:// address")
    scheme = s.split("://", 1)[0].lower() if "://" in s else ""
    if scheme in ("milvus", "qdrant"):
        u = urlsplit(s)
        if not u.hostname or u.path not in ("", "/"):
            raise ValueError(f"index address must be {scheme}://HOST:PORT, got {s.split('?')[0]!r}")
        try:
            port = u.port or (19530 if scheme == "milvus" else 6333)
        except ValueError:
            raise ValueError(f"index address {s.split('?')[0]!r} has a bad port") from None
        q = parse_qs(u.query)
        secret = (q.get("token") or q.get("api_key") or [""])[0]
        return Location(scheme, f"http://{u.hostname}:{port}", secret, uri=f"{scheme}://{u.hostname}:{port}")
    if scheme == "qdrant+local":
        path = s[len("qdrant+local://") :]
        if not path.startswith("/"):
            raise ValueError(f"qdrant+local needs an absolute path (qdrant+local:///ABS/PATH), got {s!r}")
        return Location("qdrant-local", path, uri=s)
    if scheme:
        raise ValueError(f"unknown index scheme {scheme!r}: use a folder, a .db file, milvus://, qdrant:// "
                         "or qdrant+local://")
    if s.endswith(".db"):
        return Location("milvus-lite", str(Path(s).resolve()), uri=s)
    return Location("folder", s, uri=s)


def _engine(loc: Location):
    if loc.kind in ("milvus-lite", "milvus"):
        from rag.backends.milvus import MilvusEngine

        if loc.kind == "milvus-lite":
            Path(loc.target).parent.mkdir(parents=True, exist_ok=True)
        return MilvusEngine(loc.target, token=loc.secret)
    from rag.backends.qdrant import QdrantEngine

    if loc.kind == "qdrant-local":
        Path(loc.target).mkdir(parents=True, exist_ok=True)
        return QdrantEngine(path=loc.target)
    return QdrantEngine(url=loc.target, api_key=loc.secret or None)


def _safe_engine(loc: Location):
    try:
        return _engine(loc)
    except RagError:
        raise
    except Exception as e:  # noqa: BLE001 -- a client that cannot connect: one clear line
        raise RagError(f"cannot open the index at {loc.uri} ({type(e).__name__}: {' '.join(str(e).split())[:200]})") from None


def open_index(setting: str | Path):
    """The live :class:`~rag.index.Index` at ``setting`` (an engine's is an ``EngineIndex``)."""
    loc = locate(setting)
    if loc.is_folder:
        from rag.index import open_index as open_folder

        return open_folder(Path(loc.target))
    from rag.backends.engine import load_index

    return load_index(_safe_engine(loc), uri=loc.uri, prefix=PREFIX)


def write_index(index, setting: str | Path, *, keep: int = 1, rebuild: bool = False) -> Path | None:
    """Write ``index`` as the new live version at ``setting``; the build folder (``None`` on an
    engine, which is sent only the changed documents' rows unless ``rebuild``). The previous
    version serves until the switch."""
    loc = locate(setting)
    if loc.is_folder:
        from rag.index import write_index as write_folder

        return write_folder(index, Path(loc.target), keep=keep)
    from rag.backends.engine import save_index

    with write_lock(setting):
        save_index(index, _safe_engine(loc), uri=loc.uri, prefix=PREFIX, rebuild=rebuild)
    return None


def write_lock(setting: str | Path) -> FileLock:
    """The lock every writer of ``setting`` holds: the folder's own; beside a local engine's
    file or folder; for a server, one per machine (writers on several machines must take
    turns by other means)."""
    loc = locate(setting)
    if loc.is_folder:
        from rag.index import write_lock as folder_lock

        return folder_lock(Path(loc.target))
    if loc.kind in ("milvus-lite", "qdrant-local"):
        path = Path(loc.target).with_name(Path(loc.target).name + ".write.lock")
        path.parent.mkdir(parents=True, exist_ok=True)
    else:
        path = Path(tempfile.gettempdir()) / f"studyrag-{hashlib.sha1(loc.uri.encode()).hexdigest()[:12]}.write.lock"
    return FileLock(str(path), is_singleton=True)


def live_key(setting: str | Path) -> str:
    """A string that changes whenever a new version goes live (the app caches its searcher by
    it): the build folder, or the engine URI with its version."""
    loc = locate(setting)
    if loc.is_folder:
        from rag.index import current_folder

        return str(current_folder(Path(loc.target)))
    from rag.backends.engine import pointer
    from rag.errors import IndexMissingError

    version = pointer(_safe_engine(loc), PREFIX)
    if version is None:
        raise IndexMissingError(f"no index at {loc.uri}: build one with `python -m ingest --index {loc.uri}`")
    return f"{loc.uri}#{version}"


def open_live(key: str):
    """The index :func:`live_key` named (a folder build, or an engine's live version)."""
    if "#" in key and locate(key.split("#", 1)[0]).kind != "folder":
        return open_index(key.split("#", 1)[0])
    from rag.index import Index

    return Index.load(Path(key))


def backend(setting: str | Path) -> IndexBackend:
    """The live index at ``setting`` through the :class:`IndexBackend` protocol."""
    loc = locate(setting)
    if loc.is_folder:
        from rag.backends.folder import FolderBackend

        return FolderBackend.from_index(open_index(setting), uri=loc.uri)
    from rag.backends.engine import live_backend

    return live_backend(_safe_engine(loc), uri=loc.uri, prefix=PREFIX)


def new_backend(setting: str | Path, *, dim: int, manifest: dict, hnsw: bool = False, prefix: str = PREFIX) -> IndexBackend:
    """An empty, writable :class:`IndexBackend` at ``setting`` — a new version that is not
    live (nothing reads it until :func:`write_index` switches one in); for tools and tests of
    the protocol itself. The folder's is in memory."""
    loc = locate(setting)
    if loc.is_folder:
        from rag.backends.folder import FolderBackend

        return FolderBackend(uri=loc.uri, manifest=manifest)
    from rag.backends.engine import EngineBackend, new_version

    be = EngineBackend(_safe_engine(loc), uri=loc.uri, prefix=prefix, version=new_version(), hnsw=hnsw,
                       manifest=manifest)
    be.create(dim)
    return be
