"""JSON Lines read one way everywhere: ``(line number, object)`` for every non-blank line,
and a bad line is an error that names the file and the line."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator


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
