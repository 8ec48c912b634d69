"""One app replica for tests/test_replicas.py: its own process, its own Streamlit runtime and caches
(searcher, store, deck), one browser session of the app under AppTest, driven by JSON commands on
stdin, one JSON reply per line on stdout. The index, corpus and store come from the environment
(STUDYRAG_INDEX, STUDYRAG_CORPUS, STUDYRAG_STORE), as for ``streamlit run app.py``.

Commands: {"op": "ask", "q": TEXT} · {"op": "review", "n": N} · {"op": "open", "conv": ID} ·
{"op": "reload", "query": {...}, "page": NAME} (a page load) · {"op": "quit"}. Every reply
carries what the session shows: the questions in its conversation, the conversations in its
sidebar, the flashcard counts line.
"""

from __future__ import annotations

import html
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import rag.search  # noqa: E402
from conftest import ROOT, FakeEncoder, fake_tuned  # noqa: E402
from rag.encoders import register_encoder  # noqa: E402

FAKE = "fake-ngram-64"
CALIBRATION = {
    "weights": {"passage": 10.0, "unit": 10.0, "words_missing": -3.0, "other_language": -3.0},
    "bias": -9.0,
    "threshold": 0.5,
}


def new_session(query: dict | None = None):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    at.query_params["lang"] = "en"
    return ok(at.run())


def ok(at):
    if at.exception:
        raise RuntimeError([e.value for e in at.exception])
    return at


def shown(at) -> dict:
    md = [m.value for m in at.markdown]
    return {
        "asked": [html.unescape(re.sub(r"<[^>]+>", "", m)) for m in md if "studyrag-question" in m],
        "chats": sorted(int(b.key.split("-")[1]) for b in at.button if b.key and re.fullmatch(r"chat-\d+", b.key)),
        "counts": [c.value for c in at.caption if c.value.startswith("Due now")],
        "warnings": [w.value for w in at.warning],
    }


def main() -> None:
    register_encoder(FAKE, FakeEncoder)
    rag.search.load_tuned = lambda encoder_id, *a, **k: fake_tuned(answer={"calibration": CALIBRATION})
    at = new_session()
    print(json.dumps({"ready": True, **shown(at)}), flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        op = cmd["op"]
        if op == "quit":
            break
        if op == "ask":
            at.session_state["goto"] = "ask"
            ok(at.run())
            at.text_area(key="ask_box").set_value(cmd["q"])
            [b for b in at.button if b.label == "Ask"][-1].click()
            ok(at.run())
        elif op == "review":
            at.session_state["goto"] = "flashcards"
            ok(at.run())
            for _ in range(cmd["n"]):
                if "fc-show" in [b.key for b in at.button]:
                    at.button(key="fc-show").click()
                    ok(at.run())
                at.button(key="rate-good").click()
                ok(at.run())
        elif op == "reload":  # a page load (its address's parameters in "query"): a new session here
            at = new_session(cmd.get("query"))
            if "page" in cmd:
                at.session_state["goto"] = cmd["page"]
                ok(at.run())
        elif op == "open":
            at.button(key=f"chat-{cmd['conv']}").click()
            ok(at.run())
        print(json.dumps(shown(at)), flush=True)


if __name__ == "__main__":
    main()
