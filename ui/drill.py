"""Mock interview: pick a question (the interview list or any card), type an answer, see
which key points of the notes it makes and misses, each cited; plainly says when the notes do
not cover the question, and asks for an answer when there is none."""

from __future__ import annotations

import streamlit as st

from rag.errors import RagError
from rag.highlight import md_escape
from study.drill import MAX_ANSWER_CHARS, grade, reference
from ui import session
from ui import i18n, state
from ui import render as r
from ui.notes import marker_html, source_panel, source_target, with_panels
from ui.state import tr

VERDICT_BOX = {"good": st.success, "partial": st.warning, "wrong": st.error}


def _questions(ctx: state.Study, kind: str) -> dict[str, tuple[str, ...]]:
    """The questions to pick from, each with the passages it is about: a card's own chunks (its
    section or Q&A item), none for a question of the interview list (the notes are searched)."""
    lang = state.lang()
    if kind == "list":
        return {q.text: () for q in ctx.deck.questions}
    out: dict[str, tuple[str, ...]] = {}
    for c in ctx.deck.cards:
        out.setdefault(c.front[c.pick(lang)], c.chunk_ids)
    return out


def render() -> None:
    ctx = state.study()
    drill = session.get(session.Drill)
    st.title(tr("drill.title"))
    st.write(tr("drill.intro"))
    kinds = ["list", "cards"] if ctx.deck.questions else ["cards"]
    lang = state.lang()  # fixed now: a format function may be called outside this run
    kind = st.radio(
        tr("drill.from"),
        kinds,
        format_func=lambda k: i18n.t(f"drill.from_{k}", lang),
        horizontal=True,
        key="drill_from",
        persist_state="session",
    )
    questions = _questions(ctx, kind)
    if not questions:
        st.info(tr("drill.no_questions"))
        return
    # a select box shows its options as plain text (inert as they are); radio options are Markdown
    question = st.selectbox(tr("drill.question"), list(questions), key=f"drill_q_{kind}", persist_state="session")
    answer = st.text_area(tr("drill.answer"), key="drill_answer", persist_state="session", height=160)
    st.caption(tr("ask.limit", limit=f"{MAX_ANSWER_CHARS:,}"))
    if st.button(tr("drill.grade"), key="drill-grade", type="primary", icon=":material/grading:"):
        n = len((answer or "").strip())
        if n > MAX_ANSWER_CHARS:  # graded whole or not at all: the answer stays in the box to shorten
            drill.result = None
            st.error(tr("drill.too_long", n=f"{n:,}", limit=f"{MAX_ANSWER_CHARS:,}"))
            return
        try:
            ref = _reference(ctx, question, questions.get(question, ()))
            drill.result = (question, grade(ctx.searcher, ref, answer or "", lang=state.lang()))
        except RagError as e:
            st.error(tr("ask.failed", error=md_escape(str(e))))
            return
    result = drill.result
    if result and result[0] == question:
        _show(ctx, result[1])


def _reference(ctx: state.Study, question: str, passages: tuple[str, ...]):
    """The notes' reference for a question, kept while the learner tries again."""
    drill = session.get(session.Drill)
    key = (state.build_key(ctx.searcher), question, passages)
    if drill.ref_key != key:
        drill.ref, drill.ref_key = reference(ctx.searcher, question, passages=passages), key
    return drill.ref


def _show(ctx: state.Study, g) -> None:
    if g.verdict == "empty":
        st.warning(md_escape(g.message))
        return
    if g.verdict == "uncovered":
        st.info(md_escape(g.message))
        return
    label, message = tr(f"drill.verdict.{g.verdict}"), md_escape(g.message)
    # a message may open with the verdict's own words ("Good: …", 「よくできました。…」): say them once
    said = f"**{label}**{message[len(label):]}" if message.startswith(label) else f"**{label}** — {message}"
    VERDICT_BOX.get(g.verdict, st.info)(said)
    titles = state.titles(ctx.searcher)
    points = list(g.covered) + list(g.missed)
    number = {id(pr): n for n, pr in enumerate(points, start=1)}
    panels = [
        source_panel(
            number[id(pr)],
            pr.point.source,
            titles.get(pr.point.source.doc_id, ""),
            [(pr.point.source.start, pr.point.source.end)],
        )
        for pr in points
    ]
    lines = []
    for title, group in ((tr("drill.covered"), g.covered), (tr("drill.missed"), g.missed)):
        if not group:
            continue
        items = "".join(f"<li>{r.escape(pr.point.text)} {marker_html('sr-drill', number[id(pr)])}</li>" for pr in group)
        lines.append(f"<p><b>{r.escape(title)}</b></p><ul>{items}</ul>")
    r.html(with_panels("sr-drill", "".join(lines), panels, close=tr("ask.panel_close")))
    sources = {pr.point.source.doc_id: pr.point.source for pr in points}
    for k, src in enumerate(sources.values()):
        r.source_button(
            f"{tr('study.source')}: {md_escape(titles.get(src.doc_id, src.doc_id))}",
            source_target(src),
            key=f"drill-source-{k}",
            back={"page": "drill"},
        )
