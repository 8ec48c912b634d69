"""The composition root: where the command line and the app find the corpus, the index, the
learner's data, the tuned values, the encoder and the answer endpoint. Both call
:func:`resolve`; nothing else reads these environment variables or makes these defaults.

One rule for every folder: the command-line option if given, else the environment variable,
else a folder of that name in the current directory (``./corpus``, ``./index``, ``./data``) —
so ``python -m study`` and the app started from the same folder open the same database. The
shipped benchmark reports are found next to the code.

The progress store is the data folder's SQLite file unless ``--store`` / ``$STUDYRAG_STORE``
names a PostgreSQL database (``postgresql://…``) that several app replicas share.

The index location is a string (:attr:`Context.index`): a folder, a Milvus Lite file
(``….db``) or an engine URI (``milvus://…``, ``qdrant://…``, ``qdrant+local://…``), parsed by
:func:`rag.backends.locate` and opened by :func:`rag.backends.open_index`;
:func:`index_folder` is for what only a folder can be.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from rag.encoders import DEFAULT_ENCODER

ROOT = Path(__file__).resolve().parents[1]  # the source checkout (shipped reports, tuned values)

CORPUS_ENV = "STUDYRAG_CORPUS"
INDEX_ENV = "STUDYRAG_INDEX"
DATA_ENV = "STUDYRAG_DATA"
STORE_ENV = "STUDYRAG_STORE"
STORE_URL_SCHEMES = ("postgresql://", "postgres://")
ENCODER_ENV = "STUDYRAG_ENCODER"
LLM_URL_ENV, LLM_MODEL_ENV, LLM_KEY_ENV = "STUDYRAG_LLM_URL", "STUDYRAG_LLM_MODEL", "STUDYRAG_LLM_API_KEY"
RESULTS_ENV, RUNS_ENV = "STUDYRAG_EVAL_RESULTS", "STUDYRAG_EVAL_RUNS"

DEFAULT_K = 5  # passages an answer reads and a search prints, unless told otherwise


@dataclass(frozen=True)
class Context:
    """Everything resolved once for one run of the CLI or one app process."""

    corpus: Path
    index: str  # a folder path or a backend URI (rag.backends.locate); see index_folder
    data: Path
    store: str  # where progress lives: a postgresql:// URL, or the data folder (its study.sqlite3)
    encoder: str  # the encoder a new index is built with
    tuned_file: Path
    k: int
    llm_url: str
    llm_model: str
    llm_api_key: str | None
    results: Path
    runs: Path

    @property
    def index_folder(self) -> Path:
        return index_folder(self.index)

    @property
    def store_label(self) -> str:
        """:attr:`store` for messages: a URL's password hidden."""
        return hide_password(self.store)

    @property
    def index_target(self) -> str | Path:
        """The index to open or write (:func:`index_target`): a folder or an engine setting."""
        return index_target(self.index)

    @property
    def uploads(self) -> Path:
        """The learner's uploaded documents: in the data folder, never in the checkout."""
        from rag.corpus import uploads_folder

        return uploads_folder(self.data)


def _env(var: str) -> str:
    return os.environ.get(var, "").strip()


def _path(explicit: str | os.PathLike | None, var: str, default: Path) -> Path:
    if explicit is not None and str(explicit).strip():
        return Path(explicit)
    return Path(_env(var)) if _env(var) else default


def data_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The learner's data folder: ``explicit``, ``$STUDYRAG_DATA``, or ``./data``."""
    return _path(explicit, DATA_ENV, Path("data"))


def store_location(explicit: str | os.PathLike | None = None, data: str | os.PathLike | None = None) -> str:
    """Where progress and conversations live: ``explicit`` (``--store``), else ``$STUDYRAG_STORE``
    (a ``postgresql://`` URL), else the data folder (:func:`data_dir` of ``data``)."""
    if explicit is not None and str(explicit).strip():
        return str(explicit).strip()
    return _env(STORE_ENV) or str(data_dir(data))


def hide_password(location: str) -> str:
    """``location`` with a URL's password replaced by ``***`` (for messages and the sidebar)."""
    parts = urlsplit(location)
    if "://" not in location or parts.password is None:
        return location
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)))


def default_encoder() -> str:
    """``$STUDYRAG_ENCODER`` or the bundled e5-small: the encoder benchmarks and new indexes use."""
    return _env(ENCODER_ENV) or DEFAULT_ENCODER


def index_location(explicit: str | os.PathLike | None = None) -> str:
    """The index location string: ``explicit``, ``$STUDYRAG_INDEX``, or ``index``."""
    if explicit is not None and str(explicit).strip():
        return str(explicit)
    return _env(INDEX_ENV) or "index"


def index_folder(location: str | os.PathLike) -> Path:
    """The folder an index location names; an engine location (``milvus://``, ``….db`` …) is
    refused by name: open those with :func:`rag.backends.open_index`."""
    from rag.backends import locate

    where = locate(str(location))
    if not where.is_folder:
        raise ValueError(f"index location {where.uri!r} is a {where.kind} index, not a folder")
    return Path(where.target)


def index_target(location: str | os.PathLike) -> str | Path:
    """What :mod:`rag.backends` and the ingest take: the folder as a ``Path``, or the engine
    setting as given (checked here, so a bad URI is an error before anything loads)."""
    from rag.backends import locate

    where = locate(str(location))
    return Path(where.target) if where.is_folder else str(location)


def resolve(*, corpus=None, index=None, data=None, store=None, encoder=None, k: int | None = None) -> Context:
    """The run's context; each argument (a command-line option) overrides its environment
    variable, which overrides the default."""
    from rag.tuned import TUNED_FILE

    k = DEFAULT_K if k is None else k
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive number of passages, got {k!r}")
    return Context(
        corpus=_path(corpus, CORPUS_ENV, Path("corpus")),
        index=index_location(index),
        data=data_dir(data),
        store=store_location(store, data),
        encoder=encoder if encoder else default_encoder(),
        tuned_file=TUNED_FILE,
        k=k,
        llm_url=_env(LLM_URL_ENV),
        llm_model=_env(LLM_MODEL_ENV),
        llm_api_key=_env(LLM_KEY_ENV) or None,
        results=_path(None, RESULTS_ENV, ROOT / "eval" / "results"),
        runs=_path(None, RUNS_ENV, data_dir(data) / "runs"),  # quick runs are the learner's: the data folder
    )
