"""The composition root: where the command line and the app find the corpus, the index, the
learner's data, the tuned values, the encoder and the answer endpoint. Both call
:func:`resolve`; nothing else reads these environment variables or makes these defaults.

One rule for every folder: the command-line option if given, else the environment variable,
else a folder of that name in the current directory (``./corpus``, ``./index``, ``./data``) —
so ``python -m study`` and the app started from the same folder open the same database. The
shipped benchmark reports are found next to the code.

The index location is a string (:attr:`Context.index`): a folder today; a backend URI
(``milvus://…``, ``qdrant+local://…``) will be resolved in :func:`index_folder`, the one place
that turns a location into something to open.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from rag.encoders import DEFAULT_ENCODER

ROOT = Path(__file__).resolve().parents[1]  # the source checkout (shipped reports, tuned values)

CORPUS_ENV = "STUDYRAG_CORPUS"
INDEX_ENV = "STUDYRAG_INDEX"
DATA_ENV = "STUDYRAG_DATA"
ENCODER_ENV = "STUDYRAG_ENCODER"
LLM_URL_ENV, LLM_MODEL_ENV, LLM_KEY_ENV = "STUDYRAG_LLM_URL", "STUDYRAG_LLM_MODEL", "STUDYRAG_LLM_API_KEY"
RESULTS_ENV, RUNS_ENV = "STUDYRAG_EVAL_RESULTS", "STUDYRAG_EVAL_RUNS"

DEFAULT_K = 5  # passages an answer reads and a search prints, unless told otherwise


@dataclass(frozen=True)
class Context:
    """Everything resolved once for one run of the CLI or one app process."""

    corpus: Path
    index: str  # a folder path (later also a backend URI); see index_folder
    data: Path
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


def default_encoder() -> str:
    """``$STUDYRAG_ENCODER`` or the bundled e5-small: the encoder benchmarks and new indexes use."""
    return _env(ENCODER_ENV) or DEFAULT_ENCODER


def index_location(explicit: str | os.PathLike | None = None) -> str:
    """The index location string: ``explicit``, ``$STUDYRAG_INDEX``, or ``index``."""
    if explicit is not None and str(explicit).strip():
        return str(explicit)
    return _env(INDEX_ENV) or "index"


def index_folder(location: str | os.PathLike) -> Path:
    """The folder an index location names. A URI scheme (``milvus://``) is refused by name
    until a backend for it is plugged in here."""
    loc = str(location)
    if "://" in loc:
        scheme = loc.split("://", 1)[0]
        raise ValueError(f"index location {loc!r}: no backend for {scheme}:// (give an index folder)")
    return Path(loc)


def resolve(*, corpus=None, index=None, data=None, encoder=None, k: int | None = None) -> Context:
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
        encoder=encoder if encoder else default_encoder(),
        tuned_file=TUNED_FILE,
        k=k,
        llm_url=_env(LLM_URL_ENV),
        llm_model=_env(LLM_MODEL_ENV),
        llm_api_key=_env(LLM_KEY_ENV) or None,
        results=_path(None, RESULTS_ENV, ROOT / "eval" / "results"),
        runs=_path(None, RUNS_ENV, data_dir(data) / "runs"),  # quick runs are the learner's: the data folder
    )
