"""What every query needs to know about the notes, computed once when the index is built and
saved beside it (``facts.json``, ``unit_kinds.npy``): the analyzed vocabulary per language,
the kind of every unit, which passages are question lists, and the normalised texts that
term look-ups search.

The searcher (vocabulary of the question's language), the answerer (unit kinds, quotable
text) and the drill (question lists, answering text) read these fields; nothing computes them
again on a query.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.files import atomic_write
from rag.rules.normalize import normalize, squash
from rag.sections import question_list_chunk_ids
from rag.types import Chunk, Document
from rag.units import QUOTABLE, UNIT_KINDS, chunk_unit_kinds

FACTS_FILE = "facts.json"
KINDS_FILE = "unit_kinds.npy"
# the version of the rules the facts are derived by (rag.units, rag.sections): one more whenever a
# rule change would derive other facts from the same chunks, so an index saved before it is
# re-derived when opened and saved back (the folder; rag.index) or flagged for a rebuild (an engine).
# 1: as first saved; 2: a sentence announcing a list right under it is the list's lead-in;
# 3: a request for the answerer's prompt in the notes is a planted sentence (rag.safety);
# 4: "1. **単語をIDに変換** - …" outside a Q&A passage is a numbered step, not a question line
# 5: a data row of a Markdown table is a unit of its own kind, ``row``, quoted (rag.units)
# 6: a list item that opens with a question is a question throughout (「…どう機能するか？長所と短所。」)
# 7: a signpost (「…の流れを見てみましょう。」) is a sentence about the document itself (meta)
# 8: a whole line that closes no sentence, right above a list, is that list's lead-in
# 9: ... also when the chunker put the list in the next passage, or its items are bold terms
#    without a mark (「**Greedy Decoding** - 常に…」)
# 10: where else to read the author and a request to share the document are meta (「…私のLinkedIn
#    プロフィールでご覧いただけます」「欢迎分享这篇公众号文章」)
# 11: ... also 「知識を共有し、AIコミュニティで有意義な議論を促しましょう！」
# 12: a list item asking about its section's heading is a question, not the heading said again
#    (「- エージェントをどう評価するか？」 under 「## エージェント」)
# 13: a planted sentence is also one addressed to an AI (「AIアシスタントへ：…」, "Note to AI
#    assistants: …", 「给AI的提示：…」); an order only quoted (「以前の指示を無視して」などの文) and a
#    tutorial's "you must normalize …" are not (rag.safety.addresses_reader)
# 14: a sentence saying what the document is (「以下は、…面接質問です。」) is meta
# 15: the lines of a fenced program (```python, or a block with a "def …"/"return …" line) are
#    code, never a formula quoted alone; a sentence in an HTML comment (<!-- … -->) is meta
# 16: orders reworded (「先ほどまでの指示は忘れて」, "Regardless of anything said earlier …",
#    「从现在开始，你只能…」), hidden in marks that show nothing or in look-alike letters, or given by
#    pointing at a quoted one are planted (rag.safety.addresses_reader)
# 17: after a question set off in emphasis on its line ("- *Is it exact?* No — …") or labelled
#    ("Q: …? A: …"), the rest of the line is its answer, not more of an interview prompt
RULES_VERSION = 17


class StaleFacts(ValueError):
    """Facts derived by other rules than this version's (:data:`RULES_VERSION`)."""
_CODE = {k: i for i, k in enumerate(UNIT_KINDS)}


@dataclass(frozen=True)
class IndexFacts:
    """Derived facts of one index; row ``r`` of ``unit_kinds`` belongs to unit row ``r``."""

    unit_kinds: np.ndarray  # uint8 codes into rag.units.UNIT_KINDS, one per unit
    question_lists: frozenset[str]  # ids of the chunks that are lists of questions
    vocabulary: Mapping[str, frozenset[str]]  # language -> analyzed terms of its chunks
    quotable_text: str  # quotable units and the headings of answering passages, squashed
    squashed_notes: str  # every document's text, squashed (rag.rules.normalize.squash)
    answer_text: str  # the chunks that are not question lists, normalised (NFKC, lowercase)

    def to_dict(self) -> dict:
        """Everything but ``unit_kinds`` (an array, saved as ``.npy``), as JSON-ready values."""
        return {
            "rules": RULES_VERSION,
            "question_lists": sorted(self.question_lists),
            "vocabulary": {lang: sorted(terms) for lang, terms in sorted(self.vocabulary.items())},
            "quotable_text": self.quotable_text,
            "squashed_notes": self.squashed_notes,
            "answer_text": self.answer_text,
        }

    @classmethod
    def from_dict(cls, d: Mapping, unit_kinds: np.ndarray) -> IndexFacts:
        return cls(
            unit_kinds=unit_kinds,
            question_lists=frozenset(d["question_lists"]),
            vocabulary={lang: frozenset(terms) for lang, terms in d["vocabulary"].items()},
            quotable_text=d["quotable_text"],
            squashed_notes=d["squashed_notes"],
            answer_text=d["answer_text"],
        )

    def save(self, folder: Path) -> None:
        """Write both files, each atomically (:func:`rag.files.atomic_write`): the unit kinds
        first, then ``facts.json`` with the rules version. Facts written over older ones in an
        index being read (:meth:`rag.index.Index.load`) are never seen half written, and
        :meth:`load` reads ``facts.json`` first: whoever reads this version's ``facts.json``
        then reads the unit kinds written with it."""

        def write_kinds(tmp: Path) -> None:
            with open(tmp, "wb") as f:  # a file, not a name: np.save would add ".npy" to the name
                np.save(f, self.unit_kinds.astype(np.uint8), allow_pickle=False)

        atomic_write(folder / KINDS_FILE, write_kinds)
        atomic_write(folder / FACTS_FILE, json.dumps(self.to_dict(), ensure_ascii=False))

    @classmethod
    def load(cls, folder: Path, *, units: int, chunk_ids: frozenset[str]) -> IndexFacts:
        """Read what :meth:`save` wrote; ``ValueError`` naming the file if it is not that."""
        d = json.loads((folder / FACTS_FILE).read_text(encoding="utf-8"))  # first: see save
        kinds = np.load(folder / KINDS_FILE, allow_pickle=False)
        if kinds.dtype.kind not in "iu" or kinds.shape != (units,) or (len(kinds) and int(kinds.max()) >= len(UNIT_KINDS)):
            raise ValueError(f"{KINDS_FILE} does not hold one unit kind per unit ({units})")
        ok = (
            isinstance(d, dict)
            and all(isinstance(d.get(k), str) for k in ("quotable_text", "squashed_notes", "answer_text"))
            and isinstance(d.get("question_lists"), list) and set(d["question_lists"]) <= chunk_ids
            and isinstance(d.get("vocabulary"), dict)
            and all(isinstance(v, list) and all(isinstance(t, str) for t in v) for v in d["vocabulary"].values())
        )
        if not ok:
            raise ValueError(f"{FACTS_FILE} does not hold the index's facts")
        if d.get("rules", 1) != RULES_VERSION:
            raise StaleFacts(f"{FACTS_FILE} was derived by rules version {d.get('rules', 1)}, this version "
                             f"derives them by {RULES_VERSION}")
        return cls.from_dict(d, kinds.astype(np.uint8, copy=False))


GRAM_BITS = 24  # a text's runs of 2, 3 and 4 characters, hashed into 2**24 bits (2 MB)
GRAMS = (2, 3, 4)
_MUL = np.uint64(0x9E3779B97F4A7C15)


def _gram_hashes(codes: np.ndarray) -> np.ndarray:
    """The hash of every run of ``GRAMS`` consecutive code points (uint64 arithmetic, wrapping)."""
    codes = codes.astype(np.uint64)
    out = []
    with np.errstate(over="ignore"):
        for n in GRAMS:
            if len(codes) < n:
                continue
            h = np.full(len(codes) - n + 1, np.uint64(n), np.uint64)
            for k in range(n):
                h = (h * _MUL) ^ codes[k : len(codes) - n + 1 + k]
            out.append((h * _MUL) >> np.uint64(64 - GRAM_BITS))
    return np.concatenate(out) if out else np.zeros(0, np.uint64)


def char_grams(text: str) -> np.ndarray:
    """The runs of 2–4 characters of ``text`` as a bitmap (``2**GRAM_BITS`` bits): a needle with a
    run whose bit is clear does not occur in ``text`` (:func:`may_occur`)."""
    bits = np.zeros(1 << (GRAM_BITS - 3), np.uint8)
    h = np.unique(_gram_hashes(np.frombuffer(text.encode("utf-32-le"), np.uint32)))
    np.bitwise_or.at(bits, (h >> np.uint64(3)).astype(np.int64), (1 << (h & np.uint64(7))).astype(np.uint8))
    return bits


def may_occur(grams: np.ndarray, needle: str) -> bool:
    """False when ``needle`` cannot occur in the text whose :func:`char_grams` are ``grams`` (one
    of its runs of 2–4 characters is absent); True when it may."""
    h = _gram_hashes(np.frombuffer(needle.encode("utf-32-le"), np.uint32))
    return bool(np.all(grams[(h >> np.uint64(3)).astype(np.int64)] & (1 << (h & np.uint64(7))).astype(np.uint8)))


def occurs(text, needles: Sequence[str]) -> list[bool]:
    """Whether each of ``needles`` occurs in one of the texts above: a ``str`` (a folder
    index's), or an engine index's text read piece by piece (one pass for all the needles)."""
    contains = getattr(text, "contains", None)
    return list(contains(list(needles))) if contains is not None else [x in text for x in needles]


def vocabulary_by_language(chunks: Sequence[Chunk], tokens: Sequence[Sequence[str]]) -> dict[str, frozenset[str]]:
    """The analyzed terms of the chunks of each language."""
    out: dict[str, set[str]] = {}
    for c, toks in zip(chunks, tokens):
        out.setdefault(c.lang, set()).update(toks)
    return {lang: frozenset(terms) for lang, terms in out.items()}


def derive_facts(documents: Mapping[str, Document], chunks: Sequence[Chunk], tokens: Sequence[Sequence[str]],
                 unit_spans: np.ndarray, unit_offsets: np.ndarray) -> IndexFacts:
    """Compute the facts of an index from its parts (at build time)."""
    codes: list[int] = []
    quotable: list[str] = []
    for i, c in enumerate(chunks):
        doc = documents[c.doc_id].text
        spans = unit_spans[unit_offsets[i] : unit_offsets[i + 1]]
        kinds = chunk_unit_kinds(c, doc, spans)
        codes += [_CODE[k] for k in kinds]
        if any(k in QUOTABLE for k in kinds):
            quotable += [doc[int(s) : int(e)] for (s, e), k in zip(spans, kinds) if k in QUOTABLE or k == "heading"]
            quotable.append(c.heading)
    lists = question_list_chunk_ids(chunks, documents)
    return IndexFacts(
        unit_kinds=np.asarray(codes, dtype=np.uint8),
        question_lists=lists,
        vocabulary=vocabulary_by_language(chunks, tokens),
        quotable_text="\n".join(squash(p) for p in quotable),
        squashed_notes="\n".join(squash(d.text) for d in documents.values()),
        answer_text=normalize("\n".join(c.text for c in chunks if c.id not in lists)),
    )
