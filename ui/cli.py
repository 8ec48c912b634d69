"""``studyrag``: one command tree for the shells of every package — ``ingest``, ``search``,
``ask``, ``study``, ``eval``. Every subcommand takes the same location options (``--corpus``,
``--index``, ``--data``, ``--encoder``; :mod:`rag.shell`), resolves them in the one composition
root (:func:`rag.context.resolve`) and reports errors through the one wrapper (one ``error:``
line, exit 2). ``python -m rag|ingest|eval`` are aliases of the same functions.

Each subcommand's module is imported only when it runs (``studyrag search`` never loads the
ingest pipeline).
"""

from __future__ import annotations

import importlib
import sys

from rag.shell import EXIT_ERROR

# name -> (module, function, one line of help)
COMMANDS = {
    "ingest": ("ingest.cli", "main", "build or update the index from the corpus folder"),
    "search": ("rag.cli", "search_main", "search the notes"),
    "ask": ("rag.cli", "ask_main", "a cited answer from the notes"),
    "study": ("study.cli", "main", "flashcards, progress, export and the mock-interview drill"),
    "eval": ("eval.cli", "main", "benchmarks, tuning and ablations"),
}
USAGE = "usage: studyrag {" + ",".join(COMMANDS) + "} [options]\n" + "\n".join(
    f"  {name:<7} {help_}" for name, (_, _, help_) in COMMANDS.items()
)


def studyrag(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    cmd, rest = (argv[0], argv[1:]) if argv else ("", [])
    if cmd in ("-h", "--help"):
        print(USAGE)
        return 0
    if cmd not in COMMANDS:
        print(USAGE, file=sys.stderr)
        return EXIT_ERROR
    module, function, _ = COMMANDS[cmd]
    return getattr(importlib.import_module(module), function)(rest)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(studyrag())
