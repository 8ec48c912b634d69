"""Two app replicas sharing one PostgreSQL store and one Milvus Lite server (``milvus-lite
server`` in a process of its own, reached as ``milvus://127.0.0.1:PORT``): two processes, each
its own Streamlit runtime (tests/replica.py drives one session of app.py in it). A question
asked in one and cards reviewed in the other: each sees the other's conversation and progress."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT, FakeEncoder

from study.conversations import Conversations
from study.store import Store

ASKED = "LoRAとQLoRAの違いは？"
FOLLOW_UP = "QLoRAの量子化は？"


@pytest.fixture
def shared_index(milvus_server, tmp_path):
    """The seed corpus indexed with the fake encoder (as tests/test_app.py does) on the Milvus
    Lite server both replicas read."""
    import rag.parallel
    from ingest.pipeline import ingest

    shutil.copytree(ROOT / "corpus", tmp_path / "corpus", ignore=shutil.ignore_patterns("uploads"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(rag.parallel, "MIN_DOC_SIMILARITY", -1.0)
        mp.setattr(rag.parallel, "MIN_ITEM_SIMILARITY", -1.0)
        ingest(tmp_path / "corpus", milvus_server, encoder=FakeEncoder())
    return milvus_server, tmp_path / "corpus"


class Replica:
    def __init__(self, env: dict, cwd):
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "replica.py")],
            env=env,
            cwd=str(cwd),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def reply(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(timeout=30)
            raise AssertionError(f"replica ended: {self.proc.stderr.read()[-3000:]}")
        return json.loads(line)

    def send(self, **cmd) -> dict:
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        return self.reply()

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.communicate(json.dumps({"op": "quit"}) + "\n", timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.communicate()


def test_two_replicas_share_progress_and_conversations(shared_index, pg_url, tmp_path):
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("STUDYRAG_")},
        "PYTHONPATH": str(ROOT),
        "STUDYRAG_INDEX": shared_index[0],
        "STUDYRAG_CORPUS": str(shared_index[1]),
        "STUDYRAG_DATA": str(tmp_path / "data"),  # must stay unused: the store is the server
        "STUDYRAG_STORE": pg_url,
        "STUDYRAG_ENCODER": "fake-ngram-64",
        "STUDYRAG_EVAL_RESULTS": str(tmp_path / "eval-results"),
        "STUDYRAG_EVAL_RUNS": str(tmp_path / "eval-runs"),
    }
    a, b = Replica(env, tmp_path), Replica(env, tmp_path)
    try:
        first_a, first_b = a.reply(), b.reply()
        assert first_a["ready"] and first_b["ready"] and not first_a["warnings"], first_a
        # ask in replica A
        ra = a.send(op="ask", q=ASKED)
        assert ra["asked"] == [ASKED]
        [conv] = ra["chats"]
        # review two cards in replica B; a page load there lists A's conversation
        rb = b.send(op="review", n=2)
        assert rb["counts"] and rb["counts"][0].endswith("Reviewed today: 2"), rb
        rb = b.send(op="reload")
        assert rb["chats"] == [conv]
        # B opens it and asks a follow-up in it
        rb = b.send(op="open", conv=conv)
        assert rb["asked"] == [ASKED]
        rb = b.send(op="ask", q=FOLLOW_UP)
        assert rb["asked"] == [ASKED, FOLLOW_UP] and rb["chats"] == [conv]
        # A, on a page load, sees B's reviews and B's follow-up
        ra = a.send(op="reload", page="flashcards")
        assert ra["counts"][0].endswith("Reviewed today: 2"), ra
        ra = a.send(op="open", conv=conv)
        assert ra["asked"] == [ASKED, FOLLOW_UP]
        # the address A's session shows, loaded in B (a load balancer sent the reload there)
        rb = b.send(op="reload", query={"profile": "learner", "chat": str(conv)})
        assert rb["asked"] == [ASKED, FOLLOW_UP]
    finally:
        a.stop()
        b.stop()
    with Store.open(pg_url) as s:
        p = s.profile("learner")
        assert len(s.reviews(p.id)) == 2 and [c.messages for c in Conversations(s).list(p.id)] == [2]
    assert not (tmp_path / "data").exists() and not (tmp_path / "index").exists()  # nothing local
