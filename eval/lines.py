"""Line-oriented benchmark files, each read one way everywhere: JSON Lines and qrels (BEIR
``qrels/*.tsv`` or TREC). A bad line is an error that names the file and the line."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path


def json_lines(lines: Iterable[str], name: str, *, error: type[ValueError] = ValueError,
               expect: str = "a JSON object") -> Iterator[tuple[int, dict]]:
    """``(line number, object)`` per non-blank line of ``lines``; a line that is not JSON, or not
    an object, raises ``error("{name}:{n}: …")`` (``expect`` says what an object should be).

    >>> list(json_lines(['{"a": 1}', "", '{"b": 2}'], "x.jsonl"))
    [(1, {'a': 1}), (3, {'b': 2})]
    """
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise error(f"{name}:{n}: not JSON ({e.msg})") from None
        if not isinstance(obj, dict):
            raise error(f"{name}:{n}: expected {expect}")
        yield n, obj


def qrels_lines(path: Path, name: str | None = None, *, error: type[ValueError] = ValueError
                ) -> Iterator[tuple[str, str, str, int]]:
    """``(where, query id, passage id, grade)`` for every judgement of a BEIR qrels file
    (``query-id  corpus-id  score``, a header line first) or a TREC one (``qid 0 docid grade``),
    grades as written (0 and below: judged not relevant). ``where`` is ``"{name}:{line}"``."""
    name = name if name is not None else Path(path).name
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            where = f"{name}:{n}"
            if len(parts) == 4:
                parts = [parts[0], parts[2], parts[3]]
            if len(parts) != 3:
                raise error(f"{where}: expected query-id, corpus-id, score (BEIR) or qid 0 docid grade (TREC)")
            try:
                grade = int(parts[2])
            except ValueError:
                if n == 1:
                    continue  # the BEIR header
                raise error(f"{where}: score {parts[2]!r} is not a whole number") from None
            yield where, parts[0], parts[1], grade
