"""The command lines, run as a user runs them (``python -m rag`` / ``python -m ingest``).

Error cases must print one clear ``error:`` line on stderr, exit non-zero, and never show a
traceback. Subprocesses cannot use the fake encoder, so the tests that need a searchable
index use the session index built with the bundled encoder (marked ``model``); the rest
fail before any model loads.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

from conftest import CORPUS, SMALL_CORPUS, FakeEncoder, run_cli, write_corpus
from ingest.pipeline import ingest
from rag.index import current_folder

HIT_KEYS = {"rank", "score", "chunk_id", "doc_id", "title", "lang", "section", "start", "end", "text", "scores"}
STAGES = {"bm25", "dense", "fused", "rerank"}


def assert_clean_error(proc, *needles: str) -> None:
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.lstrip().startswith(("error:", "usage:")), proc.stderr
    for n in needles:
        assert n in proc.stderr, proc.stderr


@pytest.fixture
def fake_index_dir(tmp_path):
    corpus = write_corpus(tmp_path / "corpus", SMALL_CORPUS)
    ingest(corpus, tmp_path / "index", encoder=FakeEncoder())
    return tmp_path / "index"


# --- errors that happen before any model loads -------------------------------------------------


def test_missing_index_folder(tmp_path):
    proc = run_cli("rag", "search", "LoRA", "--index", str(tmp_path / "nope"), cwd=tmp_path)
    assert_clean_error(proc, "no index at", "python -m ingest")


def test_truncated_vectors(fake_index_dir, tmp_path):
    vec = current_folder(fake_index_dir) / "vectors.npy"
    vec.write_bytes(vec.read_bytes()[:100])
    proc = run_cli("rag", "search", "LoRA", "--index", str(fake_index_dir), cwd=tmp_path)
    assert_clean_error(proc, "unreadable", "rebuild")


def test_garbage_manifest(fake_index_dir, tmp_path):
    (current_folder(fake_index_dir) / "manifest.json").write_bytes(b"\x00\xffgarbage")
    proc = run_cli("rag", "search", "LoRA", "--index", str(fake_index_dir), cwd=tmp_path)
    assert_clean_error(proc, "rebuild")


def test_unknown_encoder_name(tmp_path):
    proc = run_cli("ingest", "--encoder", "nosuch", "--corpus", str(CORPUS), "--index", str(tmp_path / "idx"), "--quiet", cwd=tmp_path)
    assert_clean_error(proc, "unknown encoder 'nosuch'")
    assert not (tmp_path / "idx").exists()


@pytest.mark.parametrize("kind", ["missing", "directory", "binary", "empty"])
def test_unreadable_batch_file(tmp_path, kind):
    batch = tmp_path / "queries.txt"
    if kind == "directory":
        batch.mkdir()
    elif kind == "binary":
        batch.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00LoRA\n")
    elif kind == "empty":
        batch.write_text("\n  \n")
    proc = run_cli("rag", "search", "--batch", str(batch), "--index", str(tmp_path / "nope"), cwd=tmp_path)
    assert_clean_error(proc, str(batch))
    assert ("has no queries" if kind == "empty" else "cannot read batch file") in proc.stderr


def test_a_batch_file_is_decoded_as_a_notes_file_is():
    """Notepad's UTF-8 with a byte-order mark kept the mark in the first question
    ("\\ufeffWhat is the KV cache?"); Shift_JIS and UTF-16 files were refused although notes
    in them are read."""
    from rag.cli import _read_batch

    for data in ("\ufeffWhat is the KV cache?\r\nLoRAとは？\r\n".encode("utf-8"),
                 "What is the KV cache?\nLoRAとは？\n".encode("utf-16"),
                 "What is the KV cache?\nLoRAとは？\n".encode("shift_jis")):
        path = Path(tempfile.mkdtemp()) / "q.txt"
        path.write_bytes(data)
        assert _read_batch(path) == [(1, "What is the KV cache?"), (2, "LoRAとは？")]


def test_query_and_batch_together_or_neither(tmp_path):
    (tmp_path / "q.txt").write_text("LoRA\n")
    assert_clean_error(run_cli("rag", "search", "x", "--batch", str(tmp_path / "q.txt"), cwd=tmp_path), "not both")
    assert_clean_error(run_cli("rag", "search", cwd=tmp_path), "give a query")
    assert_clean_error(run_cli("rag", cwd=tmp_path), "usage")


# --- in process, with the fake encoder (fast checks of the output format) ------------------------


@pytest.fixture
def fake_cli(fake_index_dir, monkeypatch):
    """``rag.cli.main`` with the fake encoder standing in for the one the index names."""
    import rag.search

    monkeypatch.setattr(rag.search, "load_encoder", lambda name: FakeEncoder())
    from rag.cli import main

    return lambda *args: main(["search", *args, "--index", str(fake_index_dir)])


def test_json_output_in_process(fake_cli, capsys):
    assert fake_cli("LoRAとQLoRAの違いは？", "--k", "2", "--json", "--mode", "hybrid") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["query"] == "LoRAとQLoRAの違いは？" and len(out["hits"]) == 2
    for h in out["hits"]:
        assert HIT_KEYS <= set(h) and set(h["scores"]) == STAGES
        assert h["scores"]["rerank"] is None and h["score"] == h["scores"]["fused"]
        src = SMALL_CORPUS[h["doc_id"]]
        assert src[h["start"] : h["end"]] == h["text"]


@pytest.mark.parametrize("query", ["", "  \t "])
def test_empty_query_in_process(fake_cli, capsys, query):
    assert fake_cli(query) == 2
    assert "error: query is empty" in capsys.readouterr().err


# --- with the bundled encoder ------------------------------------------------------------------


@pytest.mark.model
@pytest.mark.parametrize(
    "query, needle",
    [("", "query is empty"), ("   \t  ", "query is empty"), ("あ" * 10_000, "10,000 characters")],
    ids=["empty", "whitespace", "10k"],
)
def test_bad_queries(real_index, tmp_path, query, needle):
    proc = run_cli("rag", "search", query, "--index", str(real_index), cwd=tmp_path)
    assert_clean_error(proc, needle)
    assert proc.stdout == ""


@pytest.mark.model
def test_batch_writes_json_lines(real_index, tmp_path):
    queries = ["LoRAとQLoRAの違いは？", "", "什么是分词?", "What is top-p sampling?"]
    batch = tmp_path / "queries.txt"
    batch.write_text("\n".join(queries) + "\n", encoding="utf-8")
    proc = run_cli("rag", "search", "--batch", str(batch), "--k", "3", "--index", str(real_index), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 3  # blank lines are not queries
    texts = {p.name: p.read_text(encoding="utf-8") for p in CORPUS.iterdir()}
    for line, q in zip(lines, [q for q in queries if q]):
        obj = json.loads(line)
        assert set(obj) == {"query", "hits"} and obj["query"] == q
        assert [h["rank"] for h in obj["hits"]] == [1, 2, 3]
        for h in obj["hits"]:
            assert HIT_KEYS <= set(h)
            # the default mode (hybrid, rag/tuned.json): every stage up to fusion scored, no rerank
            assert set(h["scores"]) == STAGES and all(isinstance(h["scores"][s], float) for s in ("bm25", "dense", "fused"))
            assert h["scores"]["rerank"] is None and h["score"] == h["scores"]["fused"]
            assert h["lang"] in ("ja", "zh", "en")
            assert texts[h["doc_id"]][h["start"] : h["end"]] == h["text"]


@pytest.mark.model
def test_json_bm25_mode(real_index, tmp_path):
    proc = run_cli("rag", "search", "LoRA与QLoRA有什么区别", "--json", "--mode", "bm25", "--k", "2", "--index", str(real_index), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    obj = json.loads(proc.stdout)
    assert len(obj["hits"]) == 2
    for h in obj["hits"]:
        assert h["scores"]["dense"] is None and h["scores"]["fused"] is None and h["scores"]["rerank"] is None
        assert h["score"] == h["scores"]["bm25"] > 0


@pytest.mark.model
def test_an_index_of_other_notes_is_not_called_stale(real_index, tmp_path):
    """`rag ask --index` of a learner's own notes without --corpus compared them with ./corpus
    and said "the index is stale (6 documents changed …); run python -m ingest" — which would
    rebuild it from ./corpus and drop them. Documents with no file in the folder are named as
    such, with the folder to give."""
    other = tmp_path / "other"
    other.mkdir()
    (other / "mine.md").write_text("# 自分のノート\n\nLoRAは低ランク行列を学習します。\n", encoding="utf-8")
    proc = run_cli("rag", "search", "LoRA", "--k", "1", "--index", str(real_index), "--corpus", str(other), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "document(s) of the index are not in" in proc.stderr and "--corpus" in proc.stderr, proc.stderr
    assert "llm-interview-top50-ja.md" in proc.stderr
    assert "(1 document(s) changed: mine.md)" in proc.stderr  # a file the index lacks is still a change


@pytest.mark.model
def test_text_output_and_stale_warning(real_index, corpus_copy, tmp_path):
    edited = corpus_copy / "senior-ai-engineer-questions-ja.md"
    edited.write_text(edited.read_text(encoding="utf-8") + "\n追記です。\n", encoding="utf-8")
    proc = run_cli("rag", "search", "LoRAとQLoRAの違いは？", "--k", "2", "--index", str(real_index), "--corpus", str(corpus_copy), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "warning: the index is stale" in proc.stderr and "senior-ai-engineer-questions-ja.md" in proc.stderr
    first = proc.stdout.splitlines()[0]
    assert first.startswith("[1] ") and "llm-interview-top50-ja.md" in first and "Q4" in first
    assert "[2] " in proc.stdout


@pytest.mark.model
def test_ingest_cli_skips_unreadable_files(tmp_path):
    corpus = write_corpus(tmp_path / "corpus", {**SMALL_CORPUS, "scan.md": b"\x00\x01\x02"})
    proc = run_cli("ingest", "--corpus", str(corpus), "--index", str(tmp_path / "idx"), "--quiet", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr  # done with warnings
    assert "warning: skipped scan.md" in proc.stderr and "Traceback" not in proc.stderr
    assert f"indexed {len(SMALL_CORPUS)} documents" in proc.stdout
    again = run_cli("ingest", "--corpus", str(corpus), "--index", str(tmp_path / "idx"), "--quiet", cwd=tmp_path)
    assert again.returncode == 1 and "up to date" in again.stdout


@pytest.mark.model
def test_ingest_cli_empty_corpus(tmp_path):
    (tmp_path / "corpus").mkdir()
    proc = run_cli("ingest", "--corpus", str(tmp_path / "corpus"), "--index", str(tmp_path / "idx"), "--quiet", cwd=tmp_path)
    assert_clean_error(proc, "no readable")


def test_device_applies_to_sentence_transformers_models_only():
    from rag.encoders import load_encoder
    from rag.errors import ModelLoadError

    with pytest.raises(ModelLoadError, match="CPU only.*st:"):
        load_encoder("e5-small", device="cuda")


def test_ask_and_search_take_the_shared_location_options():
    """The README says every command takes --corpus/--index/--data/--encoder; ``rag ask`` took
    neither --data nor --encoder, ``rag search`` no --data."""
    from rag.cli import ask_parser, search_parser

    for parser, first in ((ask_parser(), "LoRAとは？"), (search_parser(), "LoRA")):
        args = parser.parse_args([first, "--data", "d", "--encoder", "e5-small", "--corpus", "c", "--index", "i"])
        assert (args.data, args.encoder, args.corpus, args.index) == ("d", "e5-small", "c", "i")


def test_a_citation_line_keeps_a_newline_in_a_file_name_on_one_line():
    import io

    from rag.answer import Answer
    from rag.citations import Citation
    from rag.cli import _print_answer
    from rag.types import Chunk, Hit

    chunk = Chunk(id="c1", doc_id="weird\nname.md", title="weird\nname", section="", text="Attention heads.",
                  start=0, end=16, lang="en")
    out = io.StringIO()
    _print_answer(Answer(question="q", text="Attention heads [1].", citations=(Citation(1, chunk, Hit(chunk, 1, 1.0)),), abstained=False,
                         lang="en", answerer="extractive", relevance=1.0), False, out)
    assert out.getvalue().splitlines()[1] == "  [1] weird\\nname (weird\\nname.md, en, characters 0-16)"


def test_a_search_result_line_keeps_a_newline_in_a_file_name_on_one_line():
    """`rag search` printed a file named ``x.md\\n[2] 1.000 …`` over two lines: a forged result line."""
    import io

    from rag.cli import _print_hits
    from rag.types import Chunk, Hit

    chunk = Chunk(id="c1", doc_id="x.md\n[2] 1.000  evil.md", title="t", section="A\nB", text="Attention heads.",
                  start=0, end=16, lang="en")
    out = io.StringIO()
    _print_hits("q", [Hit(chunk, 1, 1.0)], False, out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].startswith("[1] 1.000  x.md\\n[2] 1.000  evil.md · A\\nB · en"), lines


def test_a_corpus_path_that_is_a_file_says_so(tmp_path):
    from rag.corpus import corpus_files
    from rag.errors import CorpusError

    note = tmp_path / "ok.md"
    note.write_text("# ok\n\nLoRA adapters are small.\n")
    with pytest.raises(CorpusError, match="is a file; give the folder"):
        corpus_files(note)
