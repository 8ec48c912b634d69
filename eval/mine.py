"""Test my own notes: a learner's questions, each with the document that should answer it (and
optionally a phrase the right passage contains), asked of their index in every search mode.

Input is CSV (a header with ``question``, ``document`` and optionally ``phrase``) or JSONL
(objects with those keys). ``document`` is a document id (``notes/rag.md``), its file name or
its title. A search *hits* at k when one of its top-k passages is from that document (and, with
a phrase, contains it; compared without case or spacing differences). The result lists the
questions the default mode misses with the passage it found and the one it should have found
(the best passage of the expected document, searched on its own).

    python -m eval mine eval/data/mine_example.csv
"""

from __future__ import annotations

import csv
import io
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from eval.lines import json_lines
from rag.search import MODES, Searcher
from rag.types import Chunk

MAX_QUESTIONS = 2000
MAX_BYTES = 2_000_000
K = 5


class QuestionsError(ValueError):
    """An unusable questions file; the message names the line."""


@dataclass(frozen=True)
class MineQuestion:
    line: int
    question: str
    document: str
    phrase: str = ""


@dataclass(frozen=True)
class Miss:
    question: MineQuestion
    doc_id: str  # the expected document, resolved
    found: Chunk | None  # the default mode's first passage
    expected: Chunk | None  # the expected document's best passage (containing the phrase, if any)


@dataclass(frozen=True)
class MineReport:
    questions: int
    default_mode: str
    modes: dict[str, dict[str, float]]  # mode -> {"hit@1", "hit@5"}
    misses: tuple[Miss, ...]  # questions the default mode misses at 5
    seconds: float

    def to_dict(self) -> dict:
        def chunk(c: Chunk | None):
            return None if c is None else {"doc_id": c.doc_id, "chunk_id": c.id, "start": c.start, "end": c.end,
                                           "text": c.text}

        return {
            "modes": self.modes, "default_mode": self.default_mode, "n_queries": self.questions,
            "seconds": self.seconds,
            "misses": [{"line": m.question.line, "question": m.question.question, "document": m.doc_id,
                        "phrase": m.question.phrase, "found": chunk(m.found), "expected": chunk(m.expected)}
                       for m in self.misses],
        }


def _records(data: bytes, name: str) -> list[tuple[int, dict]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise QuestionsError(f"{name}: not UTF-8 text") from None
    if name.lower().endswith((".jsonl", ".json")):
        return list(json_lines(text.splitlines(), name, error=QuestionsError,
                               expect="an object with question and document"))
    reader = csv.DictReader(io.StringIO(text))
    fields = [f.strip().lower() for f in reader.fieldnames or []]
    if "question" not in fields or "document" not in fields:
        raise QuestionsError(f"{name}: the first line must name the columns question,document[,phrase]")
    reader.fieldnames = fields
    return [(n, row) for n, row in enumerate(reader, 2)]


def read_questions(data: bytes, name: str) -> list[MineQuestion]:
    """Parse an uploaded CSV/JSONL (by the file name's extension); every problem names its line."""
    if len(data) > MAX_BYTES:
        raise QuestionsError(f"{name}: larger than {MAX_BYTES // 1_000_000} MB")
    out = []
    for n, row in _records(data, name):
        q = str(row.get("question") or "").strip()
        d = str(row.get("document") or "").strip()
        if not q and not d:
            continue
        if not q:
            raise QuestionsError(f"{name}:{n}: no question")
        if not d:
            raise QuestionsError(f"{name}:{n}: no document for {q[:60]!r}")
        out.append(MineQuestion(n, q, d, str(row.get("phrase") or "").strip()))
    if not out:
        raise QuestionsError(f"{name}: no questions")
    if len(out) > MAX_QUESTIONS:
        raise QuestionsError(f"{name}: {len(out)} questions; at most {MAX_QUESTIONS}")
    return out


def _norm(s: str) -> str:
    return "".join(s.casefold().split())


def resolve_documents(index, questions: list[MineQuestion]) -> dict[str, str]:
    """``{reference: doc_id}``: a document id, a file name (with or without its extension) or a title."""
    by = {}
    for d in index.documents.values():
        name = Path(d.doc_id).name
        for key in (d.title, Path(name).stem, name, d.doc_id):  # later keys win: ids are the most exact
            by[_norm(key)] = d.doc_id
    out, unknown = {}, []
    for q in questions:
        doc = by.get(_norm(q.document))
        if doc is None:
            unknown.append(f"line {q.line}: {q.document[:60]!r}")
        else:
            out[q.document] = doc
    if unknown:
        names = ", ".join(sorted(index.documents)[:8])
        raise QuestionsError(f"unknown document(s) — {'; '.join(unknown[:5])}"
                             f"{' …' if len(unknown) > 5 else ''}. The notes have: {names}")
    return out


def _right(c: Chunk, doc_id: str, phrase: str) -> bool:
    return c.doc_id == doc_id and (not phrase or _norm(phrase) in _norm(c.text))


def _expected(searcher: Searcher, q: MineQuestion, doc_id: str) -> Chunk | None:
    """The passage the search should have found: the expected document's best passage for the
    question that contains the phrase (the first passage containing it, if none of the best does)."""
    for h in searcher.search(q.question, k=20, mode=searcher.default_mode, doc_ids=[doc_id]):
        if _right(h.chunk, doc_id, q.phrase):
            return h.chunk
    return next((c for c in searcher.index.chunks if _right(c, doc_id, q.phrase)), None)


def run(searcher: Searcher, questions: list[MineQuestion], modes=MODES) -> MineReport:
    """hit@1 / hit@5 of every mode, and the default mode's misses at 5."""
    t = time.perf_counter()
    docs = resolve_documents(searcher.index, questions)
    default = searcher.default_mode
    modes = list(dict.fromkeys([*modes, default]))
    scores, misses = {}, []
    for mode in modes:
        h1 = h5 = 0
        for q in questions:
            hits = searcher.search(q.question, k=K, mode=mode)
            ok = [_right(h.chunk, docs[q.document], q.phrase) for h in hits]
            h1 += bool(ok[:1] and ok[0])
            h5 += any(ok)
            if mode == default and not any(ok):
                misses.append(Miss(q, docs[q.document], hits[0].chunk if hits else None,
                                   _expected(searcher, q, docs[q.document])))
        scores[mode] = {"hit@1": h1 / len(questions), "hit@5": h5 / len(questions)}
    return MineReport(len(questions), default, scores, tuple(misses), time.perf_counter() - t)


def markdown(rep: MineReport, source: str) -> str:
    from eval import report

    lines = [f"# Test my own notes: {source}", "",
             f"{rep.questions} questions; default mode `{rep.default_mode}`; {rep.seconds:.1f} s.", "",
             report.table(rep.modes, ("hit@1", "hit@5")), "",
             f"## Missed by `{rep.default_mode}` in the top {K} ({len(rep.misses)})", ""]

    def cell(c: Chunk | None) -> str:
        if c is None:
            return "—"
        text = " ".join(c.text.split())[:120].replace("|", "\\|")
        return f"{c.doc_id}: {text}"

    if rep.misses:
        lines += ["| line | question | found instead | should have found |", "|---|---|---|---|"]
        lines += [f"| {m.question.line} | {m.question.question.replace('|', chr(92) + '|')} | {cell(m.found)} | "
                  f"{cell(m.expected)} |" for m in rep.misses]
    return "\n".join(lines) + "\n"


def main(path: Path | None, *, index_dir: Path | None, modes, out: Path, as_json: bool = False) -> int:
    from rag.errors import RagError

    if path is None or not Path(path).is_file():
        print("error: `python -m eval mine FILE` needs a CSV or JSONL file of questions "
              "(columns question, document[, phrase])", file=sys.stderr)
        return 2
    from rag.context import index_folder, index_location

    try:
        index_dir = index_folder(index_location(index_dir))
        questions = read_questions(Path(path).read_bytes(), Path(path).name)
        t = time.perf_counter()
        searcher = Searcher.open(index_dir)
        for m in modes:  # warm: models loaded, analyzers' dictionaries read
            searcher.search(questions[0].question + " ", k=K, mode=m)
        warm_s = time.perf_counter() - t
        rep = run(searcher, questions, modes)
    except (QuestionsError, RagError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    md = markdown(rep, Path(path).name)
    out.mkdir(parents=True, exist_ok=True)
    (out / "mine.md").write_text(md, encoding="utf-8")
    (out / "mine.json").write_text(json.dumps({**rep.to_dict(), "load_s": warm_s}, ensure_ascii=False, indent=1),
                                   encoding="utf-8")
    print(f"index loaded in {warm_s:.1f} s; questions asked in {rep.seconds:.1f} s; report: {out / 'mine.md'}",
          file=sys.stderr)
    print(json.dumps(rep.to_dict(), ensure_ascii=False) if as_json else md)
    return 0
