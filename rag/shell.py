"""What every command of the ``studyrag`` tree shares: the location options (``--corpus``,
``--index``, ``--data``, ``--store``, ``--encoder``: each overrides its ``STUDYRAG_*`` variable, resolved by
:func:`rag.context.resolve`), the exit codes, and the one wrapper that turns a library error
into one ``error:`` line and exit 2.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable

from rag.errors import RagError
from rag.safety import terminal_text

EXIT_OK = 0
EXIT_SOME_FAILED = 1  # done, but some inputs failed or were skipped (each named on stderr)
EXIT_ERROR = 2  # one 'error:' line; nothing was done
EXIT_INTERRUPTED = 130

_HELP = {
    "corpus": "documents folder (default $STUDYRAG_CORPUS or ./corpus)",
    "index": "index: a folder (default $STUDYRAG_INDEX or ./index), a Milvus Lite file (.db), "
             "milvus://HOST:PORT[?token=T], qdrant+local:///ABS/PATH or qdrant://HOST:PORT[?api_key=K]",
    "data": "study data folder (default $STUDYRAG_DATA or ./data)",
    "store": "progress store: a postgresql:// URL (default $STUDYRAG_STORE, else the data folder)",
    "encoder": "encoder (default $STUDYRAG_ENCODER or e5-small)",
}


def add_location_options(p: argparse.ArgumentParser, *names: str, encoder_help: str | None = None) -> None:
    """The shared options ``names`` (of corpus, index, data, encoder), all defaulting to None
    so that :func:`rag.context.resolve` applies the one rule."""
    for name in names:
        p.add_argument(f"--{name}", default=None, help=encoder_help if name == "encoder" and encoder_help else _HELP[name])


def error_line(e: BaseException) -> str:
    """One line for an error: its message with white space collapsed (a KeyError's key, an
    OSError's file and reason)."""
    if isinstance(e, KeyError) and e.args:
        msg = str(e.args[0])
    elif isinstance(e, OSError) and e.filename:
        msg = f"{e.filename}: {e.strerror or e}"
    else:
        msg = str(e)
    return "error: " + terminal_text(" ".join(msg.split()))


def guarded(main: Callable[..., int]) -> Callable[..., int]:
    """``main`` with library errors turned into one ``error:`` line on stderr and exit 2."""

    @functools.wraps(main)
    def run(*args, **kwargs) -> int:
        try:
            return main(*args, **kwargs)
        except (RagError, ValueError, KeyError, OSError) as e:
            print(error_line(e), file=sys.stderr)
            return EXIT_ERROR
        except KeyboardInterrupt:
            print("error: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED

    return run
