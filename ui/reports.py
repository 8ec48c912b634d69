"""Benchmark reports for the app: which exist, and each as Markdown pieces and figures.

Streamlit-free. The shipped reports live in ``eval/results/``; the quick run (the command in
:func:`quick_command`) writes to the data folder's ``runs/quick/``.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

SHIPPED = ("report", "answers", "phrasing", "speed", "drill", "tuning", "ablations", "ceiling", "scale", "sparse", "encoders")
QUICK_QUESTIONS = 40
QUICK_MODES = "hybrid,rerank"
LONG_HEADING = 60
_IMAGE = re.compile(r"^\s*!\[([^\]]*)\]\(([^)\s]+)\)\s*$")
_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")


def quick_command(out: Path, python: str = sys.executable, *, index: Path | None = None) -> list[str]:
    """The quick benchmark: seed questions of the held-out half, two search modes (under a
    minute). With ``index`` (the app's) it searches that index instead of embedding the notes
    again (eval falls back to building one when the index holds other documents)."""
    cmd = [python, "-m", "eval", "seed", "--limit", str(QUICK_QUESTIONS), "--modes", QUICK_MODES, "--out", str(out)]
    return cmd + (["--index", str(index)] if index is not None else [])


def available(results: Path, runs: Path) -> list[tuple[str, Path]]:
    """``(name, path)`` of the reports there are: the quick run's first, then the shipped ones
    in a fixed order, then any other Markdown file in the results folder."""
    out = []
    quick = runs / "quick" / "report.md"
    if quick.is_file():
        out.append(("quick", quick))
    for name in SHIPPED:
        p = results / f"{name}.md"
        if p.is_file():
            out.append((name, p))
    if results.is_dir():
        out += [(p.stem, p) for p in sorted(results.glob("*.md")) if p.stem not in SHIPPED]
    return out


def title(report: Path) -> str:
    """A report's own title: its first ``# `` heading, a long one shortened as on the page
    ("Dense-leg encoder ensemble" of "Dense-leg encoder ensemble, weight per …"); else its file name."""
    try:
        with report.open(encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("# "):
                    return _heading(line.rstrip("\n"))[0][2:].strip() or report.stem
    except OSError:
        pass
    return report.stem


@dataclass(frozen=True)
class Piece:
    """A run of Markdown (``text``) or a figure (``image``, with its caption)."""

    text: str = ""
    image: Path | None = None
    caption: str = ""


def _balanced(text: str) -> bool:
    """No bracket or code span left open (a cut there would split "Answers (…)" in two)."""
    return text.count("(") == text.count(")") and text.count("[") == text.count("]") and text.count("`") % 2 == 0


def _heading(line: str) -> list[str]:
    """A long heading ("## seed — test split, 116 queries …") as a short heading and a line;
    "## Answers (`python -m eval answers`, details in …)" as "Answers" and the bracket's text.
    Never cut inside brackets or code."""
    m = _HEADING.match(line)
    if not m or len(m.group(2)) <= LONG_HEADING:
        return [line]
    text = m.group(2)
    for sep in (" — ", ", "):
        head, found, rest = text.partition(sep)
        if found and _balanced(head):
            break
    else:
        b = re.match(r"^(.+?)\s*\((.+)\)\s*$", text)
        if not b or not _balanced(b.group(1)) or not _balanced(b.group(2)):
            return [line]
        head, rest = b.group(1), b.group(2)
    return [f"{m.group(1)} {head}", "", rest[0].upper() + rest[1:] if rest else rest, ""]


def pieces(report: Path) -> list[Piece]:
    """The report as Markdown pieces and figures: a figure line naming an image inside the
    report's folder becomes a figure; long headings are split; other images are left as text."""
    folder = report.parent.resolve()
    out: list[Piece] = []
    buf: list[str] = []
    for line in report.read_text(encoding="utf-8", errors="replace").splitlines():
        m = _IMAGE.match(line)
        path = (report.parent / m.group(2)).resolve() if m and "://" not in m.group(2) else None
        if path is not None and path.is_file() and folder in path.parents:
            if buf:
                out.append(Piece(text="\n".join(buf)))
                buf = []
            out.append(Piece(image=path, caption=m.group(1) or path.stem))
        else:
            buf.extend(_heading(line))
    if buf:
        out.append(Piece(text="\n".join(buf)))
    return out
