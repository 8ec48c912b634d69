"""Fault tests: the hardening probe (72 faults, 24 failed) as tests, one section per class.

1. reads outside the corpus          5. endpoint text rendered live
2. small input, huge cost            6. tracebacks and silent corruption
3. one bad file stops everything     7. a batch stops at the first bad line
4. lost data under concurrency

Every fault must end in one clear message, no traceback, nothing lost, and the old index
still serving. Everything runs on the deterministic FakeEncoder; command lines and
concurrent writers run as real child processes (:func:`child`) with the fake encoder.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, SMALL_CORPUS, FakeEncoder, fake_tuned, write_corpus
from ingest.loader import FrontMatterError, parse_document
from ingest.pipeline import ingest
from rag.corpus import UnreadableFileError, corpus_files, document_hashes, read_file, stale_documents
from rag.errors import IndexCorruptError
from rag.index import ARRAYS, Index, current_folder, open_index, write_index, write_lock

TESTS = Path(__file__).resolve().parent
pytestmark = pytest.mark.filterwarnings("ignore:skipped :UserWarning")  # skipped files are asserted on

# --- child processes ----------------------------------------------------------------------

PRELUDE = f"""
import sys
sys.path[:0] = [{str(ROOT)!r}, {str(TESTS)!r}]
from conftest import FakeEncoder
"""
# The command lines as a user runs them, with the fake encoder standing in for the model.
INGEST_CLI = """
import ingest.cli
ingest.cli.load_encoder = lambda name: FakeEncoder()
sys.exit(ingest.cli.main(sys.argv[1:]))
"""
SEARCH_CLI = """
import rag.cli, rag.search
rag.search.load_encoder = lambda name: FakeEncoder()
sys.exit(rag.cli.main(sys.argv[1:]))
"""


def child_cmd(code: str, *args: str) -> list[str]:
    return [sys.executable, "-c", PRELUDE + code, *map(str, args)]


def child(code: str, *args, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    """Run ``code`` (after :data:`PRELUDE`) in a fresh interpreter with this checkout first."""
    return subprocess.run(
        child_cmd(code, *args), capture_output=True, text=True, encoding="utf-8", errors="replace", timeout=timeout,
        check=False, **kw
    )


def assert_one_error_line(proc, *needles: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for n in needles:
        assert n in lines[0], lines[0]


def strict_json(line: str):
    """``json.loads`` that refuses NaN / Infinity (Python's default accepts them)."""
    return json.loads(line, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))


@pytest.fixture
def corpus(tmp_path) -> Path:
    return write_corpus(tmp_path / "corpus", SMALL_CORPUS)


@pytest.fixture
def built(corpus, tmp_path, fake_encoder):
    """(corpus, index root, encoder) with a first build written."""
    ingest(corpus, tmp_path / "index", encoder=fake_encoder)
    return corpus, tmp_path / "index", fake_encoder


def messages(report) -> str:
    return "\n".join(report.skipped_files)


# =========================================================================================
# 1. Reads outside the corpus
# =========================================================================================


@pytest.fixture
def secret(tmp_path) -> Path:
    """A file outside the corpus that must never be read (stands in for /etc/passwd)."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "passwd.md").write_text("root:x:0:0:TOPSECRET-PASSWD:/root:/bin/bash\n")
    (outside / "notes").mkdir()
    (outside / "notes" / "private.md").write_text("# Private\n\nTOPSECRET-FOLDER notes.\n")
    return outside


def test_links_out_of_the_corpus_are_skipped_with_a_warning(corpus, secret, tmp_path, fake_encoder):
    (corpus / "x.md").symlink_to(secret / "passwd.md")
    (corpus / "linked-notes").symlink_to(secret / "notes", target_is_directory=True)
    (corpus / "sub").mkdir()
    (corpus / "sub" / "up.md").symlink_to("../../outside/passwd.md")  # relative, still outside
    (corpus / "alias.md").symlink_to(corpus / "en-guide.md")  # inside: read like any file

    report = ingest(corpus, tmp_path / "index", encoder=fake_encoder)
    index = open_index(tmp_path / "index")
    everything = json.dumps([d.to_dict() for d in index.documents.values()], ensure_ascii=False)
    assert "TOPSECRET" not in everything
    assert sorted(index.documents) == sorted([*SMALL_CORPUS, "alias.md"])
    warned = report.skipped_files
    assert len(warned) == 2, warned
    for name in ("x.md", "sub/up.md"):
        assert any(m.startswith(f"skipped {name}: ") and "outside the corpus" in m for m in warned), warned
    # the stale check (search CLI, app) and the upload de-duplication apply the same rule
    assert "x.md" not in document_hashes(corpus)
    assert stale_documents(index.manifest, corpus) == []


def test_a_file_swapped_for_a_link_after_listing_is_not_followed(corpus, secret):
    files = corpus_files(corpus)
    target = corpus / "en-guide.md"
    assert target in files
    target.unlink()
    target.symlink_to(secret / "passwd.md")
    with pytest.raises(UnreadableFileError, match="outside the corpus"):
        read_file(target, corpus)


def test_a_corpus_folder_reached_through_a_link_is_read(corpus, tmp_path, fake_encoder):
    link = tmp_path / "corpus-link"
    link.symlink_to(corpus, target_is_directory=True)
    report = ingest(link, tmp_path / "index", encoder=fake_encoder)
    assert report.written and report.clean and report.documents == len(SMALL_CORPUS)


def test_fifos_are_never_opened(corpus, tmp_path, fake_encoder):
    os.mkfifo(corpus / "pipe.md")  # opening it for reading would block forever
    report = ingest(corpus, tmp_path / "index", encoder=fake_encoder)
    assert report.written and "skipped pipe.md: not a regular file" in report.skipped_files


# =========================================================================================
# 2. Small input, huge cost
# =========================================================================================

# 440 bytes that expanded to a 70 MB index: 9 ** 8 copies of "lol" once the title is a string.
ALIAS_BOMB = (
    "---\n"
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
    "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
    "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
    "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
    "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
    "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
    "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
    "title: *h\n"
    "---\n"
    "A note with a hostile title.\n"
)


def test_yaml_alias_bomb_is_refused_at_once(corpus, tmp_path, fake_encoder):
    assert len(ALIAS_BOMB.encode()) < 500
    t = time.perf_counter()
    with pytest.raises(FrontMatterError, match="aliases"):
        parse_document("bomb.md", ALIAS_BOMB.encode())
    assert time.perf_counter() - t < 1.0

    (corpus / "bomb.md").write_text(ALIAS_BOMB)
    report = ingest(corpus, tmp_path / "index", encoder=fake_encoder)
    assert report.written and report.documents == len(SMALL_CORPUS)
    assert [m for m in report.skipped_files if "bomb.md" in m] == [
        "skipped bomb.md: front matter: YAML aliases (*name) are not allowed"
    ]
    build = current_folder(tmp_path / "index")
    assert sum(f.stat().st_size for f in build.iterdir()) < 1_000_000


@pytest.mark.parametrize(
    "front, reason",
    [
        ("title: " + "[" * 5000, "nested deeper than"),
        ("title: x\nnotes: |\n" + "  filler line of front matter\n" * 700, "the limit is 16,384"),
        ("title: " + "T" * 301, "title is 301 characters"),
        ("source: " + "https://example.com/" + "s" * 2000, "source is 2,020 characters"),
        ("tags: [" + ", ".join(f"t{i}" for i in range(51)) + "]", "51 tags"),
        ("tags: [" + "x" * 101 + "]", "a tag of 101 characters"),
        ("title: {nested: map}", "title must be text"),
        ("tags: {a: 1}", "tags must be a list"),
        ("tags: [[a, b]]", "each of tags must be a word"),
    ],
    ids=["depth", "size", "title", "source", "tag-count", "tag-length", "title-map", "tags-map", "tags-nested"],
)
def test_front_matter_limits(front, reason):
    data = f"---\n{front}\n---\nThe body of the note.\n".encode()
    with pytest.raises(FrontMatterError) as e:
        parse_document("limits.md", data)
    assert reason in e.value.reason and e.value.reason.startswith("front matter: ")
    assert len(str(e.value)) < 200


def test_scalar_metadata_is_read_as_text():
    d = parse_document("ok.md", b"---\ntitle: 2024\ntags: 5\nsource: 12\n---\nBody text here.\n")
    assert (d.title, d.tags, d.source) == ("2024", ("5",), "12")


def make_document(n_lines: int, seed: int = 0) -> str:
    """A structured document of ``n_lines`` distinct lines (headings, Q&A items, bullets,
    paragraphs of 60+ characters: each one a teaser candidate)."""
    rnd = random.Random(seed)
    words = ["retrieval", "embedding", "token", "attention", "検索", "ベクトル", "向量", "检索", "model", "layer",
             "sampling", "decoding"]
    out = []
    for i in range(n_lines):
        r = rnd.random()
        if r < 0.03:
            out.append(f"## Section {i}")
        elif r < 0.06:
            out.append(f"{i % 999 + 1}. **Question {i}: what is {rnd.choice(words)}?**")
        elif r < 0.15:
            out.append("")
        elif r < 0.25:
            out.append(f"- item {i} " + " ".join(rnd.choice(words) for _ in range(8)))
        else:
            out.append(f"Line {i} " + " ".join(rnd.choice(words) for _ in range(12)) + ".")
    return "\n".join(out) + "\n"


def count_calls(fn) -> int:
    """Python and C function calls made by ``fn()``: a measure of work that does not depend
    on how busy the machine is."""
    calls = 0

    def profile(frame, event, arg):
        nonlocal calls
        if event in ("call", "c_call"):
            calls += 1

    sys.setprofile(profile)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return calls


def test_chunker_work_grows_linearly_with_lines():
    """4x the lines must cost about 4x the calls (measured 4.0x; the quadratic teaser scan
    made it 15.9x)."""
    from ingest.chunker import chunk_document

    docs = {n: parse_document("big.md", make_document(n).encode()) for n in (1000, 4000)}
    work = {n: count_calls(lambda d=d: chunk_document(d)) for n, d in docs.items()}
    ratio = work[4000] / work[1000]
    assert ratio < 5.0, (work, ratio)


def test_two_megabyte_upload_chunks_in_seconds():
    """The upload limit's worth of text (21.4k lines, 2 MB) took 71 s while holding the
    ingest lock; it takes well under a second (the bound is generous for a busy machine)."""
    from ingest.chunker import chunk_document
    from ingest.uploads import MAX_UPLOAD_BYTES, check_upload

    data = make_document(21_400).encode()
    assert 1_900_000 < len(data) <= MAX_UPLOAD_BYTES
    t = time.perf_counter()
    _, doc = check_upload("big.md", data)
    chunks = chunk_document(doc)
    assert time.perf_counter() - t < 15
    assert len(chunks) > 2000 and all(doc.text[c.start : c.end] == c.text for c in chunks)


# =========================================================================================
# 3. One bad file stops everything
# =========================================================================================

BAD_FILES: dict[str, bytes] = {
    "tags-map.md": b"---\ntags: {a: 1}\n---\nBody text of a note.\n",
    "nested.md": b"---\ntitle: " + b"[" * 5000 + b"\n---\nBody text of a note.\n",
    "bomb.md": ALIAS_BOMB.encode(),
    "empty.md": b"",
    "blank.txt": b" \n\n\t\n",
    "front-only.md": b"---\ntitle: Nothing else\n---\n",
    "late-nul.md": b"A long text. " * 700 + b"\x00" + b"more text\n",
    "latin1.txt": "Café notes: crème brûlée, naïve résumé.".encode("latin-1"),
}
REASONS = {
    "tags-map.md": "tags must be a list",
    "nested.md": "nested deeper than",
    "bomb.md": "aliases",
    "empty.md": "the file is empty",
    "blank.txt": "the file is empty",
    "front-only.md": "no text after the front matter",
    "late-nul.md": "binary",
    "latin1.txt": "not UTF-8",
}
BAD_NAME = os.fsdecode(b"caf\xe9-latin1-name.md")  # a file name that is not UTF-8


def bad_corpus(folder: Path) -> Path:
    write_corpus(folder, {**SMALL_CORPUS, **BAD_FILES, "scalar-tag.md": b"---\ntags: 5\n---\nA note with one tag.\n"})
    (folder / BAD_NAME).write_text("# Latin-1 name\n\nThe content is fine, the name is not UTF-8.\n")
    return folder


def test_each_bad_file_is_one_warning_and_the_rest_is_indexed(tmp_path, fake_encoder):
    corpus = bad_corpus(tmp_path / "corpus")
    with pytest.warns(UserWarning):
        report = ingest(corpus, tmp_path / "index", encoder=fake_encoder)
    index = open_index(tmp_path / "index")
    assert sorted(index.documents) == sorted([*SMALL_CORPUS, "scalar-tag.md"])
    assert index.documents["scalar-tag.md"].tags == ("5",)
    assert len(report.skipped_files) == len(BAD_FILES) + 1, messages(report)
    for name, reason in REASONS.items():
        [line] = [m for m in report.skipped_files if m.startswith(f"skipped {name}: ")]
        assert reason in line and "\n" not in line, line
    [line] = [m for m in report.skipped_files if "latin1-name" in m]
    assert line.startswith("skipped caf\\xe9-latin1-name.md: ") and "not valid UTF-8" in line
    # files skipped after decoding are remembered: an unchanged corpus is neither stale nor rebuilt
    assert stale_documents(index.manifest, corpus) == []
    with pytest.warns(UserWarning):
        again = ingest(corpus, tmp_path / "index", encoder=fake_encoder)
    assert not again.written and sorted(again.skipped_files) == sorted(report.skipped_files)


def test_a_document_the_chunker_fails_on_is_skipped_alone(corpus, tmp_path, fake_encoder, monkeypatch):
    from ingest import pipeline

    real = pipeline.chunk_document

    def chunker(doc, **kw):
        if doc.doc_id == "zh-notes.txt":
            raise RecursionError("maximum recursion depth exceeded")
        return real(doc, **kw)

    monkeypatch.setattr(pipeline, "chunk_document", chunker)
    with pytest.warns(UserWarning, match="zh-notes.txt"):
        report = ingest(corpus, tmp_path / "index", encoder=fake_encoder)
    assert report.written and sorted(open_index(tmp_path / "index").documents) == ["en-guide.md", "ja-qa.md"]
    assert report.skipped_files == [
        "skipped zh-notes.txt: could not be chunked (RecursionError: maximum recursion depth exceeded)"
    ]
    with pytest.warns(UserWarning, match="zh-notes.txt"):
        again = ingest(corpus, tmp_path / "index", encoder=fake_encoder)
    assert not again.written and again.skipped_files == report.skipped_files  # not retried until changed
    assert stale_documents(open_index(tmp_path / "index").manifest, corpus) == []


def test_ingest_command_exit_codes(tmp_path):
    clean = write_corpus(tmp_path / "clean", SMALL_CORPUS)
    proc = child(INGEST_CLI, "--corpus", clean, "--index", tmp_path / "i1", "--quiet")
    assert proc.returncode == 0 and not proc.stderr, proc.stderr

    proc = child(INGEST_CLI, "--corpus", bad_corpus(tmp_path / "bad"), "--index", tmp_path / "i2", "--quiet")
    assert proc.returncode == 1, proc.stderr  # done with warnings
    assert "Traceback" not in proc.stderr
    warnings = proc.stderr.strip().splitlines()
    assert len(warnings) == len(BAD_FILES) + 1 and all(w.startswith("warning: skipped ") for w in warnings)
    assert "warning: skipped caf\\xe9-latin1-name.md: the file name is not valid UTF-8" in proc.stderr
    assert f"indexed {len(SMALL_CORPUS) + 1} documents" in proc.stdout

    (tmp_path / "none").mkdir()
    proc = child(INGEST_CLI, "--corpus", tmp_path / "none", "--index", tmp_path / "i3", "--quiet")
    assert_one_error_line(proc, "no readable")

    helptext = child(INGEST_CLI, "--help").stdout
    assert "exit status" in helptext and "done with warnings" in helptext


def test_uploads_refuse_bad_files_with_the_reason(tmp_path):
    from ingest.uploads import save_uploads

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    uploads = [(name, data) for name, data in BAD_FILES.items()]
    uploads.append(("evil\nname [x](http://e).md", b"\x00"))
    uploads.append(("長い名前" * 60 + ".md", b"# A long Japanese name\n\nThe body is fine.\n"))
    result = save_uploads(uploads, corpus)
    refused = dict(result.refused)
    assert set(refused) == {*BAD_FILES, "evil\nname [x](http://e).md"}
    for name, reason in REASONS.items():
        assert refused[name].startswith(f"{name}: ") and reason in refused[name], refused[name]
    assert "\n" not in refused["evil\nname [x](http://e).md"]
    # a name too long for the file system is shortened, not a crash
    [saved] = result.saved
    assert len((corpus / saved).name.encode()) <= 255
    assert sorted(p.name for p in (corpus / "uploads").iterdir()) == [Path(saved).name]


# =========================================================================================
# 4. Lost data under concurrency
# =========================================================================================

SLOW_INGEST = """
import time
from pathlib import Path
from ingest.pipeline import ingest
from rag.bm25 import BM25Index

class Slow(FakeEncoder):
    def encode(self, texts, *, query):
        time.sleep(0.05)
        return super().encode(texts, query=query)

save = BM25Index.save
def slow_save(self, folder):  # a build stays unfinished for a while: a window for the other writer
    time.sleep(0.3)
    save(self, folder)
BM25Index.save = slow_save

corpus, index, rounds = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
print("ready", flush=True)
for _ in range(rounds):
    report = ingest(corpus, index, encoder=Slow(), rebuild=True)
    assert report.written
print("done", flush=True)
"""


def test_two_ingest_processes_at_once(built, tmp_path):
    corpus, index, _ = built
    procs = [subprocess.Popen(child_cmd(SLOW_INGEST, corpus, index, 3), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=240) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0 and "done" in out, err
    live = current_folder(index)
    assert (index / "builds").is_dir() and [p.name for p in (index / "builds").iterdir()] == [live.name]
    assert sorted(open_index(index).documents) == sorted(SMALL_CORPUS)
    assert not list(index.glob("*.tmp"))


def test_a_second_writer_waits_for_the_lock(built):
    corpus, index, _ = built
    before = current_folder(index)
    with write_lock(index):
        proc = subprocess.Popen(child_cmd(SLOW_INGEST, corpus, index, 1), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(1.5)
        assert proc.poll() is None and current_folder(index) == before  # blocked, nothing written
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert current_folder(index) != before


def test_the_build_switch_keeps_the_live_build_and_unfinished_ones(built):
    _, index, _ = built
    idx = open_index(index)
    live = current_folder(index)
    other = index / "builds" / "29990101-000000-otherone"  # another writer's build in progress
    other.mkdir()
    (other / "vectors.npy").write_bytes(b"partial")
    debris = index / "builds" / "20000101-000000-killedit"  # a killed ingest's, hours old
    debris.mkdir()
    os.utime(debris, (time.time() - 7200, time.time() - 7200))
    older = write_index(idx, index, keep=2)
    assert live.exists() and other.exists() and not debris.exists()
    # CURRENT names an older build (say, switched back by hand): it is never removed
    (index / "CURRENT").write_text(live.name)
    newest = write_index(idx, index, keep=1)
    assert (index / "CURRENT").read_text() == newest.name
    assert other.exists() and not older.exists() and not live.exists()


UPLOADER = """
from pathlib import Path
from ingest.uploads import save_uploads
corpus, who = Path(sys.argv[1]), sys.argv[2]
saved = []
for batch in range(6):  # six uploads of five files, all named notes.md
    files = [("notes.md", f"# Notes\\n\\nUpload {5 * batch + i} from writer {who}.\\n".encode()) for i in range(5)]
    saved += save_uploads(files, corpus).saved
print("\\n".join(saved))
"""


def test_eight_processes_uploading_the_same_name_lose_nothing(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    procs = [subprocess.Popen(child_cmd(UPLOADER, corpus, w), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for w in range(8)]
    reported = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        reported += out.split()
    assert len(reported) == 240 and len(set(reported)) == 240
    files = {p.name: p.read_text() for p in (corpus / "uploads").iterdir()}
    assert sorted(files) == sorted(Path(r).name for r in reported)  # no temp files left either
    expected = {f"# Notes\n\nUpload {i} from writer {w}.\n" for i in range(30) for w in range(8)}
    assert set(files.values()) == expected


def test_an_upload_that_cannot_be_written_is_refused_and_leaves_nothing(tmp_path, monkeypatch):
    import errno

    from ingest.uploads import save_uploads

    corpus = tmp_path / "corpus"
    corpus.mkdir()

    import rag.files

    def full(path, mode="r", **kw):  # the disk fills up partway through the bytes
        f = open(path, mode, **kw)
        f.write(b"# No" if "b" in mode else "# No")
        f.close()
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(rag.files, "open", full, raising=False)
    result = save_uploads([("notes.md", b"# Notes\n\nSome text to keep.\n")], corpus)
    assert result.saved == [] and result.refused == [("notes.md", "notes.md: could not be saved (No space left on device)")]
    assert list((corpus / "uploads").iterdir()) == []  # neither the reserved name nor a temp file


# =========================================================================================
# 5. Endpoint text rendered live
# =========================================================================================


class Endpoint:
    """A misbehaving OpenAI-compatible endpoint on localhost; ``behave(handler)`` answers."""

    def __init__(self, behave):
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    behave(self)
                except OSError:
                    pass

            def log_message(self, *a):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint():
    made = []

    def make(behave):
        made.append(Endpoint(behave))
        return made[-1]

    yield make
    for e in made:
        e.close()


def reply(handler, status: int, body: bytes, length: int | None = None) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body) if length is None else length))
    handler.end_headers()
    handler.wfile.write(body)


def completion(text: str) -> bytes:
    return json.dumps({"choices": [{"message": {"role": "assistant", "content": text}}]}).encode()


def test_the_client_lives_in_rag_llm():
    import rag.answer
    import rag.llm

    assert rag.answer.AnswererError is rag.llm.AnswererError
    assert rag.answer.chat_completion is rag.llm.chat_completion  # the answerer calls the one client


def test_a_slow_drip_is_cut_at_the_whole_request_deadline(endpoint):
    from rag.llm import AnswererError, chat_completion

    def drip(h):
        h.send_response(200)
        h.send_header("Content-Length", "1000")
        h.end_headers()
        for _ in range(1000):  # one byte every 0.1 s: each read is quick, the whole is not
            h.wfile.write(b" ")
            h.wfile.flush()
            time.sleep(0.1)

    def drip_headers(h):
        h.wfile.write(b"HTTP/1.1 200 OK\r\n")
        for _ in range(1000):
            h.wfile.write(b"X-Slow: y\r\n")
            h.wfile.flush()
            time.sleep(0.1)

    for behave in (drip, drip_headers):
        e = endpoint(behave)
        t = time.monotonic()
        with pytest.raises(AnswererError, match=r"did not reply within 1 s"):
            chat_completion(e.url, "m", [], timeout=1)
        assert time.monotonic() - t < 3


def test_a_huge_reply_is_refused(endpoint):
    from rag.llm import MAX_REPLY_BYTES, AnswererError, chat_completion

    declared = endpoint(lambda h: reply(h, 200, b"{}", length=20_000_000))
    with pytest.raises(AnswererError, match="over the 1,000,000-byte limit"):
        chat_completion(declared.url, "m", [], timeout=5)

    def undeclared(h):  # no Content-Length: read until the cap, then refused
        h.send_response(200)
        h.send_header("Connection", "close")
        h.end_headers()
        chunk = b'"' + b"x" * 65_534 + b'"'
        for _ in range(40):
            h.wfile.write(chunk)

    big = endpoint(undeclared)
    with pytest.raises(AnswererError, match="byte limit"):
        chat_completion(big.url, "m", [], timeout=10)
    assert MAX_REPLY_BYTES == 1_000_000


def test_an_error_body_is_quoted_short_and_on_one_line(endpoint):
    from rag.llm import AnswererError, chat_completion

    body = b"<h1>Oops</h1>\n\n![x](http://evil.example/p.png)\r\n" + b"A" * 5000
    e = endpoint(lambda h: reply(h, 500, body))
    with pytest.raises(AnswererError) as err:
        chat_completion(e.url, "m", [], timeout=5)
    msg = str(err.value)
    assert "HTTP 500" in msg and "\n" not in msg and "\r" not in msg and len(msg) < 400


def test_markdown_helpers_leave_nothing_live():
    from rag.highlight import inline, md_escape

    hostile = "[click](https://evil.example/x) ![img](http://evil.example/p.png) <img src=x> www.evil.example a@evil.example :red[x]"
    for out in (md_escape(hostile), inline(hostile)):
        assert "://" not in out and "www." not in out and "a@" not in out
    assert "\\[click\\]" in md_escape(hostile) and "\\!\\[img\\]" in md_escape(hostile)
    assert "\\<img src=x\\>" in md_escape(hostile) and "&lt;img src=x&gt;" in inline(hostile)


@pytest.fixture
def fake_app(built, monkeypatch, tmp_path):
    """The Streamlit app over the small index, on the fake encoder (registered by name)."""
    import streamlit as st

    import rag.search
    from rag.encoders import register_encoder

    corpus, index, _ = built
    register_encoder("fake-ngram-64", FakeEncoder)
    calibration = {"weights": {"passage": 10.0, "unit": 10.0}, "bias": -8.0, "threshold": 0.5}
    monkeypatch.setattr(rag.search, "load_tuned", lambda encoder_id, *a, **k: fake_tuned(
        answer={"calibration": calibration}))
    monkeypatch.setenv("STUDYRAG_CORPUS", str(corpus))
    monkeypatch.setenv("STUDYRAG_INDEX", str(index))
    monkeypatch.setenv("STUDYRAG_DATA", str(tmp_path / "data"))
    for var in ("STUDYRAG_LLM_URL", "STUDYRAG_LLM_MODEL", "STUDYRAG_LLM_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    st.cache_resource.clear()  # a searcher cached by another test must not be reused
    st.cache_data.clear()
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params["lang"] = "en"
    at.run()
    assert not at.exception, at.exception
    yield at
    register_encoder("fake-ngram-64", None)
    st.cache_resource.clear()
    st.cache_data.clear()


def ask_app(at, question: str) -> None:
    at.text_area(key="ask_box").set_value(question)
    next(b for b in at.button if b.label == "Ask").click()
    at.run()


def shown(elements) -> list[str]:
    return [e.value for e in elements]


def assert_inert(texts: list[str]) -> None:
    """Text Streamlit renders as Markdown: no link, image or auto-link can form."""
    for t in texts:
        assert "://" not in t and "www." not in t, t
        assert "](" not in t.replace("\\](", ""), t


def test_app_shows_endpoint_replies_and_errors_inert(fake_app, endpoint):
    at = fake_app
    hostile = "LoRA adds matrices [1]. See [the docs](https://evil.example/x) and www.evil.example ![p](https://evil.example/p.png)"
    good = endpoint(lambda h: reply(h, 200, completion(hostile)))
    broken = endpoint(lambda h: reply(h, 500, b"<img src='https://evil.example/t.png'> ![t](https://evil.example/t.png)"))
    at.radio(key="answerer").set_value("endpoint").run()
    at.text_input(key="llm_url").set_value(good.url).run()
    at.text_input(key="llm_model").set_value("fake").run()
    ask_app(at, "LoRAとQLoRAの違いは？")
    assert not at.exception, at.exception
    warnings = shown(at.warning)
    assert any("Not backed by the notes" in w and "the docs" in w for w in warnings), warnings
    assert_inert(warnings)

    at.text_input(key="llm_url").set_value(broken.url).run()
    ask_app(at, "温度パラメータの役割は？")
    assert not at.exception, at.exception
    notes = [c for c in shown(at.caption) if "HTTP 500" in c]
    assert notes, shown(at.caption)
    assert_inert(notes)
    assert all("<img" not in n.replace("\\<img", "") for n in notes)  # only as escaped text


def test_app_upload_of_bad_files_shows_reasons_not_tracebacks(fake_app):
    at = fake_app
    at.session_state["goto"] = "add"
    at.run()
    files = [("nested.md", BAD_FILES["nested.md"], "text/markdown"), ("bomb.md", BAD_FILES["bomb.md"], "text/markdown"),
             ("tags.md", BAD_FILES["tags-map.md"], "text/markdown")]
    at.file_uploader[0].set_value(files).run()
    at.button(key="add-files").click().run()
    assert not at.exception, at.exception
    errors = " ".join(shown(at.error))
    assert "nested.md" in errors and "nested deeper" in errors
    assert "bomb.md" in errors and "aliases" in errors
    assert "tags.md" in errors and "tags must be a list" in errors


# =========================================================================================
# 6. Tracebacks and silent corruption
# =========================================================================================


def _rewrite_jsonl(path: Path, edit) -> None:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in edit(rows)), encoding="utf-8")


def _edit_manifest(folder: Path, edit) -> None:
    m = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    edit(m)
    (folder / "manifest.json").write_text(json.dumps(m), encoding="utf-8")


def _npy(name: str, fn):
    def corrupt(folder: Path):
        a = np.load(folder / name)
        np.save(folder / name, fn(a), allow_pickle=False)

    return corrupt


def _nan_first(a):
    a = a.copy()
    a.flat[0] = np.nan
    return a


CORRUPTIONS = {
    "manifest without encoder": lambda f: _edit_manifest(f, lambda m: m.pop("encoder")),
    "manifest encoder dim is text": lambda f: _edit_manifest(f, lambda m: m["encoder"].update(dim="64")),
    "manifest chunk count off": lambda f: _edit_manifest(f, lambda m: m.update(chunks=m["chunks"] + 1)),
    "manifest unknown analyzer": lambda f: _edit_manifest(f, lambda m: m.update(analyzer="nosuch")),
    "manifest documents missing": lambda f: _edit_manifest(f, lambda m: m.pop("documents")),
    "empty documents.jsonl": lambda f: (f / "documents.jsonl").write_text(""),
    "chunk of a missing document": lambda f: _rewrite_jsonl(f / "documents.jsonl", lambda r: r[1:]),
    "chunk offsets past the document": lambda f: _rewrite_jsonl(
        f / "chunks.jsonl", lambda r: [{**r[0], "end": 10**9}, *r[1:]]
    ),
    "chunk text not the document's": lambda f: _rewrite_jsonl(
        f / "chunks.jsonl", lambda r: [{**r[0], "text": "x" + r[0]["text"][1:]}, *r[1:]]
    ),
    "chunk field of the wrong type": lambda f: _rewrite_jsonl(
        f / "chunks.jsonl", lambda r: [{**r[0], "start": str(r[0]["start"])}, *r[1:]]
    ),
    "document with an unknown field": lambda f: _rewrite_jsonl(
        f / "documents.jsonl", lambda r: [{**r[0], "evil": 1}, *r[1:]]
    ),
    "bm25 tokens not a list": lambda f: (f / "bm25_tokens.jsonl").write_text(
        '{"a": 1}\n' + "".join((f / "bm25_tokens.jsonl").read_text(encoding="utf-8").splitlines(True)[1:]),
        encoding="utf-8",
    ),
    "NaN vectors": _npy("vectors.npy", _nan_first),
    "infinite heading vectors": _npy("heads.npy", lambda a: np.full_like(a, np.inf)),
    "vectors of the wrong width": _npy("vectors.npy", lambda a: a[:, :-1]),
    "vectors stored as text": _npy("vectors.npy", lambda a: a.astype(str)),
    "vectors stored as integers": _npy("vectors.npy", lambda a: a.astype(np.int64)),
    "unit offsets decreasing": _npy("unit_offsets.npy", lambda a: np.concatenate([[0], a[1:][::-1]])),
    "unit spans outside their chunk": _npy("unit_spans.npy", lambda a: a + 10**6),
    "a unit row missing": _npy("units.npy", lambda a: a[:-1]),
    "CURRENT names a path": lambda f: (f.parent.parent / "CURRENT").write_text("../../etc"),
}


@pytest.mark.parametrize("corrupt", CORRUPTIONS.values(), ids=CORRUPTIONS.keys())
def test_every_corruption_is_the_rebuild_error(built, corrupt):
    _, index, _ = built
    corrupt(current_folder(index))
    with pytest.raises(IndexCorruptError) as e:
        open_index(index)
    msg = str(e.value)
    assert "rebuild" in msg and "python -m ingest" in msg and "\n" not in msg, msg


@pytest.mark.parametrize("spec", ARRAYS, ids=[a.name for a in ARRAYS])
def test_every_array_file_is_checked_for_dtype_and_shape(built, spec):
    """Driven by the ARRAYS table, so an array added to the format is covered here too (on an
    index without checksums, as one built before them: the checks themselves, not the sums)."""
    _, index, _ = built
    folder = current_folder(index)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    manifest.pop("checksums")
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    good = np.load(folder / spec.name)
    for bad in (good.astype("U8"), good[:-1], good.reshape(-1), np.zeros((0,) + good.shape[1:], good.dtype)):
        if bad.shape == good.shape and bad.dtype == good.dtype:
            continue
        np.save(folder / spec.name, bad, allow_pickle=False)
        with pytest.raises(IndexCorruptError, match="rebuild"):
            Index.load(folder)
    np.save(folder / spec.name, good, allow_pickle=False)
    Index.load(folder)


def test_a_corrupt_index_is_one_error_line_from_the_search_command(built, tmp_path):
    _, index, _ = built
    CORRUPTIONS["NaN vectors"](current_folder(index))
    proc = child(SEARCH_CLI, "search", "LoRA", "--json", "--index", index, "--corpus", tmp_path / "none")
    assert_one_error_line(proc, "unreadable", "vectors.npy", "--rebuild")
    assert proc.stdout == ""


def test_a_flipped_byte_in_any_index_file_is_the_rebuild_error(built):
    """A byte flipped in vectors.npy (or heads, units, the idf) loaded as finite floats and was
    served as altered scores; each file has its checksum in the manifest. The units graph is a
    cache rebuilt when bad, and the facts are derived again when stale: neither is summed."""
    _, index, _ = built
    folder = current_folder(index)
    sums = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))["checksums"]
    assert {"vectors.npy", "heads.npy", "units.npy", "bm25_idf.npy", "chunks.jsonl"} <= set(sums)
    for name in sums:
        data = (folder / name).read_bytes()
        (folder / name).write_bytes(data[:-9] + bytes([data[-9] ^ 1]) + data[-8:])
        with pytest.raises(IndexCorruptError, match=f"{re.escape(name)} was changed since the index was built"):
            open_index(index)
        (folder / name).write_bytes(data)
    open_index(index)


def test_json_output_never_holds_nan(built, monkeypatch, capsys):
    import rag.search
    from rag.cli import main
    from rag.types import Hit

    _, index, _ = built
    hit = open_index(index).chunks[0]
    monkeypatch.setattr(rag.search, "load_encoder", lambda name: FakeEncoder())
    monkeypatch.setattr(
        rag.search.Searcher, "search",
        lambda self, q, **kw: [Hit(hit, 1, float("nan"), {"bm25": float("inf"), "dense": float("-inf"), "fused": None})],
    )
    assert main(["search", "LoRA", "--json", "--index", str(index)]) == 0
    out = strict_json(capsys.readouterr().out)
    assert out["hits"][0]["score"] is None and set(out["hits"][0]["scores"].values()) == {None}


def test_full_disk_during_ingest_leaves_the_old_index_serving(built, tmp_path):
    corpus, index, _ = built
    before = current_folder(index)
    (corpus / "big.md").write_text("# Big\n\n" + "A long paragraph about retrieval and ranking. " * 6000)
    limit = 200_000  # the new documents.jsonl is larger: writing it fails with EFBIG
    code = f"import resource\nresource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))\n" + INGEST_CLI
    proc = child(code, "--corpus", corpus, "--index", index, "--quiet")
    assert_one_error_line(proc, "could not write the new index", "File too large", "previous index is unchanged")
    assert current_folder(index) == before
    assert [p.name for p in (index / "builds").iterdir()] == [before.name]  # the partial build is gone
    assert "big.md" not in open_index(index).documents
    assert not list(index.glob("CURRENT.*"))


# =========================================================================================
# 7. Batch stops at the first bad line
# =========================================================================================


def test_batch_reports_bad_lines_and_goes_on(built, tmp_path, monkeypatch, capsys):
    import rag.search
    from rag.cli import main

    _, index, _ = built
    monkeypatch.setattr(rag.search, "load_encoder", lambda name: FakeEncoder())
    batch = tmp_path / "queries.txt"
    batch.write_text("LoRAとQLoRAの違いは？\n\n" + "x" * 2001 + "\nreciprocal rank fusion\n", encoding="utf-8")
    code = main(["search", "--batch", str(batch), "--k", "2", "--index", str(index), "--corpus", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 1  # some lines failed
    records = [strict_json(line) for line in out.splitlines()]
    assert [r.get("line") for r in records] == [None, 3, None]
    assert records[0]["query"] == "LoRAとQLoRAの違いは？" and len(records[0]["hits"]) == 2
    assert "2,001 characters" in records[1]["error"] and set(records[1]) == {"line", "query", "error"}
    assert records[2]["query"] == "reciprocal rank fusion" and records[2]["hits"]  # line 4 was searched
    assert "blank line" in err and ": 2" in err and "1 of 3 queries failed" in err

    batch.write_text("LoRA\nfusion\n", encoding="utf-8")
    assert main(["search", "--batch", str(batch), "--index", str(index), "--corpus", str(tmp_path)]) == 0


def test_batch_in_a_real_process(built, tmp_path):
    _, index, _ = built
    batch = tmp_path / "q.txt"
    batch.write_text("温度\n" + "長" * 2001 + "\nfusion\n", encoding="utf-8")
    proc = child(SEARCH_CLI, "search", "--batch", batch, "--index", index, "--corpus", tmp_path / "none")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert [strict_json(line).get("line") for line in proc.stdout.splitlines()] == [None, 2, None]
