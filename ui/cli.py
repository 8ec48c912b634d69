"""``studyrag``: one command for the shells of every package (``ingest``, ``search``, ``ask``, ``study``).

Each subcommand's module is imported only when it runs (``studyrag search`` never loads
the ingest pipeline).
"""

from __future__ import annotations

import sys

USAGE = "usage: studyrag {ingest,search,ask,study} [options]"


def studyrag(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    cmd, rest = (argv[0], argv[1:]) if argv else ("", [])
    if cmd == "search":
        from rag.cli import search_main

        return search_main(rest)
    if cmd == "ask":
        from rag.cli import ask_main

        return ask_main(rest)
    if cmd == "ingest":
        from ingest.cli import main

        return main(rest)
    if cmd == "study":
        from study.cli import main as study_main

        return study_main(rest)
    print(USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(studyrag())
