"""Benchmarks page: the shipped reports, readable, and a quick benchmark (under a minute);
the full run stays a command (``python -m eval``)."""

from __future__ import annotations

import os
import re
import subprocess
import time

import streamlit as st

from rag.highlight import md_escape
from ui import i18n, state
from ui import render as r
from ui.notes import markdown_html
from ui.reports import QUICK_QUESTIONS, available, pieces, quick_command
from rag.context import ROOT
from ui import session
from ui.state import tr

_PERCENT = re.compile(r"(\d{1,3})%\|")
_COUNT = re.compile(r"\b(\d+)/(\d+)\b")


def render() -> None:
    st.title(tr("bench.title"))
    st.write(tr("bench.intro", command="`python -m eval`"))
    reports = available(state.results_dir(), state.runs_dir())
    if not reports:
        st.info(tr("bench.none"))
    else:
        names = [n for n, _ in reports]
        bench = session.get(session.Bench)
        if bench.pick_next is not None:  # the radio's own widget value, set before it is drawn
            st.session_state["bench_pick"], bench.pick_next = bench.pick_next, None
        if st.session_state.get("bench_pick") not in names:
            st.session_state["bench_pick"] = names[0]
        lang = state.lang()  # fixed now: a format function may be called outside this run
        name = st.radio(
            tr("bench.report"),
            names,
            format_func=lambda n: _label(n, lang),
            horizontal=True,
            key="bench_pick",
            persist_state="session",
        )
        path = dict(reports)[name]
        st.caption(tr("bench.written", when=time.strftime("%Y-%m-%d %H:%M", time.localtime(path.stat().st_mtime))))
        for piece in pieces(path):
            if piece.image is not None:
                st.image(str(piece.image), caption=md_escape(piece.caption), width="stretch")
            else:
                r.html(f'<div class="studyrag-notes studyrag-report">{markdown_html(piece.text)}</div>')
    st.divider()
    _quick()


def _label(name: str, lang: str) -> str:
    try:
        return i18n.t(f"report.{name}", lang)
    except KeyError:
        return name


def _quick() -> None:
    out = state.runs_dir() / "quick"
    harness = (ROOT / "eval" / "__main__.py").is_file()
    st.caption(tr("bench.quick_help", n=QUICK_QUESTIONS, folder=f"`{md_escape(str(out))}`"))
    if not harness:
        st.caption(tr("bench.no_harness"))
    if st.button(tr("bench.quick"), disabled=not harness, key="bench-quick", icon=":material/play_arrow:"):
        _run(quick_command(out, index=state.index_dir()))
    bench = session.get(session.Bench)
    done, bench.done = bench.done, None
    if done is not None:
        st.success(tr("bench.done", s=done))
    log = bench.log
    if log:
        with st.expander(tr("bench.log")):
            st.code(log[-6000:], language=None)


def _run(cmd: list[str]) -> None:
    bar = st.progress(0.0, text=tr("bench.running"))
    tail = st.empty()
    lines: list[str] = []
    t0 = time.monotonic()
    try:
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
    except OSError as e:
        st.error(tr("bench.failed", code=md_escape(str(e))))
        return
    assert proc.stdout is not None
    for raw in proc.stdout:  # text mode splits on \r too: each progress redraw is a line
        line = raw.rstrip()
        if not line:
            continue
        m, c = _PERCENT.search(line), _COUNT.search(line)
        if m or c:
            frac = int(m.group(1)) / 100 if m else int(c.group(1)) / max(1, int(c.group(2)))
            bar.progress(min(1.0, frac), text=tr("bench.running"))
            if lines and (_PERCENT.search(lines[-1]) or _COUNT.search(lines[-1])):
                lines[-1] = line
                continue
        lines.append(line)
        tail.code("\n".join(lines[-12:]), language=None)
    rc = proc.wait()
    bench = session.get(session.Bench)
    bench.log = "\n".join(lines)
    tail.empty()
    if rc == 0:
        bar.progress(1.0, text=tr("bench.done", s=f"{time.monotonic() - t0:.0f}"))
        bench.pick_next, bench.done = "quick", f"{time.monotonic() - t0:.0f}"
        st.rerun()
    else:
        bar.empty()
        st.error(tr("bench.failed", code=rc))
