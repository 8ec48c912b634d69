"""Where a document's text came from: offsets back to PDF pages (with character boxes),
slides or paragraphs of the original file.

Every reader (``ingest/readers``) turns a file into one Markdown-like text plus an
:class:`Origin`; chunking, search and answers only see the text, and a citation asks the
origin for the page and the boxes of the sentences it quotes.

* ``units`` — ``(start, end, number)``: ``text[start:end]`` came from page / slide /
  paragraph ``number`` (1-based), sorted by ``start``, not overlapping.
* ``lines`` (PDF only) — one :class:`Line` per line of text on a page: its page, its
  top and bottom (PDF points, origin at the page's top left) and the x edge of every
  character (``len(xs) == end - start + 1``), so the box of character ``i`` is
  ``(xs[i - start], top, xs[i - start + 1], bottom)``.
* ``sizes`` (PDF only) — ``(width, height)`` of every page in points.

Text the reader added (a ``#`` before a heading, a line break) belongs to no unit.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any

KINDS = ("page", "slide", "paragraph")
_LABEL = {"page": "p. {}", "slide": "slide {}", "paragraph": "¶ {}"}


@dataclass(frozen=True)
class Line:
    """One line of a PDF page: characters ``start:end`` of the text."""

    start: int
    end: int
    page: int
    top: float
    bottom: float
    xs: tuple[float, ...]

    def box(self, start: int, end: int) -> tuple[float, float, float, float]:
        """``(x0, top, x1, bottom)`` of characters ``start:end`` (clipped to the line)."""
        s, e = max(start, self.start) - self.start, min(end, self.end) - self.start
        return (self.xs[s], self.top, self.xs[max(s, e)], self.bottom)


@dataclass(frozen=True)
class Box:
    """A highlight on page ``page`` (1-based), in PDF points from the page's top left."""

    page: int
    x0: float
    top: float
    x1: float
    bottom: float

    def to_list(self) -> list:
        return [self.page, round(self.x0, 1), round(self.top, 1), round(self.x1, 1), round(self.bottom, 1)]


@dataclass(frozen=True)
class Origin:
    """The map from a document's text offsets back to its original file."""

    kind: str
    units: tuple[tuple[int, int, int], ...] = ()
    lines: tuple[Line, ...] = ()
    sizes: tuple[tuple[float, float], ...] = ()

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        last = 0
        for s, e, n in self.units:
            if not (last <= s <= e) or n < 1:
                raise ValueError(f"origin units must be sorted, non-overlapping, numbered from 1: {(s, e, n)}")
            last = e
        for ln in self.lines:
            if len(ln.xs) != ln.end - ln.start + 1 or not 1 <= ln.page <= max(1, len(self.sizes)):
                raise ValueError(f"origin line {ln.start}:{ln.end} has {len(ln.xs)} edges or page {ln.page}")

    @property
    def extent(self) -> int:
        """The largest offset the map refers to (checked against the text on load)."""
        return max([e for _, e, _ in self.units] + [ln.end for ln in self.lines] + [0])

    def numbers(self, start: int, end: int) -> tuple[int, ...]:
        """The pages / slides / paragraphs that text ``start:end`` comes from, in order."""
        i = bisect.bisect_right(self.units, (start, float("inf"), 0)) - 1
        out: list[int] = []
        for s, e, n in self.units[max(i, 0) :]:
            if s >= end and out:
                break
            if e > start and s < end and n not in out:
                out.append(n)
        if not out:  # text the reader added (a heading's '#'): the unit that follows it
            j = bisect.bisect_left(self.units, (start, 0, 0))
            if j < len(self.units):
                out.append(self.units[j][2])
            elif self.units:
                out.append(self.units[-1][2])
        return tuple(out)

    def label(self, start: int, end: int) -> str:
        """``"p. 12"``, ``"pp. 3–4"``, ``"slide 7"``, ``"¶ 5"`` for text ``start:end``."""
        nums = self.numbers(start, end)
        if not nums:
            return ""
        if self.kind == "page" and len(nums) > 1:  # text may go back a page (footnotes read after a paragraph)
            return f"pp. {min(nums)}–{max(nums)}"
        return _LABEL[self.kind].format(nums[0])

    def boxes(self, start: int, end: int) -> tuple[Box, ...]:
        """The boxes of the characters ``start:end`` on their pages, one per line touched."""
        i = bisect.bisect_right([ln.start for ln in self.lines], start) - 1
        out = []
        for ln in self.lines[max(i, 0) :]:
            if ln.start >= end:
                break
            if ln.end > start:
                x0, top, x1, bottom = ln.box(start, end)
                out.append(Box(ln.page, x0, top, x1, bottom))
        return tuple(out)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "units": [list(u) for u in self.units],
            "lines": [[ln.start, ln.end, ln.page, ln.top, ln.bottom, list(ln.xs)] for ln in self.lines],
            "sizes": [list(s) for s in self.sizes],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Origin:
        """Rebuild (and check) an origin; malformed input raises ``ValueError``."""
        try:
            return cls(
                kind=d["kind"],
                units=tuple((int(s), int(e), int(n)) for s, e, n in d.get("units", ())),
                lines=tuple(
                    Line(int(s), int(e), int(p), float(t), float(b), tuple(float(x) for x in xs))
                    for s, e, p, t, b, xs in d.get("lines", ())
                ),
                sizes=tuple((float(w), float(h)) for w, h in d.get("sizes", ())),
            )
        except (KeyError, TypeError) as e:
            raise ValueError(f"malformed origin map ({type(e).__name__}: {e})") from None


@dataclass(frozen=True)
class Location:
    """Where a cited passage is in the original file: its first page / slide / paragraph,
    the label to show ("p. 12"), and (PDFs) the boxes of the quoted characters."""

    kind: str
    number: int
    label: str
    boxes: tuple[Box, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "page": self.number if self.kind == "page" else None,
            "slide": self.number if self.kind == "slide" else None,
            "location": self.label,
            "boxes": [b.to_list() for b in self.boxes] if self.kind == "page" else None,
        }

    @staticmethod
    def empty_dict() -> dict[str, Any]:
        """The location keys of a passage from a text file (no pages)."""
        return {"page": None, "slide": None, "location": "", "boxes": None}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Location:
        kind = "page" if d.get("page") is not None else "slide" if d.get("slide") is not None else "paragraph"
        number = d.get("page") or d.get("slide") or 1
        boxes = tuple(Box(int(p), float(a), float(b), float(c), float(e)) for p, a, b, c, e in d.get("boxes") or ())
        return cls(kind, int(number), str(d.get("location", "")), boxes)


def locate(origin: Origin | None, spans) -> Location | None:
    """The :class:`Location` of text ``spans`` (``(start, end)`` offsets, the quoted
    sentences in order); the page is that of the first span."""
    spans = [tuple(s) for s in spans if s[1] > s[0]]
    if origin is None or not spans:
        return None
    first = origin.numbers(*spans[0])
    if not first:
        return None
    boxes = tuple(b for s, e in spans for b in origin.boxes(s, e))
    label = origin.label(spans[0][0], spans[-1][1]) if origin.kind == "page" else origin.label(*spans[0])
    return Location(origin.kind, first[0], label, boxes)
