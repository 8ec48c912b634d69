"""Quiz: multiple choice from the Q&A cards (three near-miss distractors), the explanation
with its citation after each answer, and a per-topic summary at the end."""

from __future__ import annotations

import time

import streamlit as st

from rag.highlight import md_escape
from study.quiz import check, make_quiz, score
from ui import session
from ui import render as r
from ui import state
from ui.notes import card_panel_head, cited_text_html, source_panel, source_target
from ui.state import tr

LETTERS = "ABCDEFGH"
SIZES = (5, 10, 20)


def _new(ctx: state.Study) -> None:
    quiz = session.get(session.Quiz)
    n = int(st.session_state.get("quiz_n", 10))  # the size picker's widget value
    learner = session.get(session.Learner).profile
    try:
        quiz.questions = make_quiz(
            list(ctx.deck.cards), ctx.deck.vectors, n=n, lang=state.lang(), seed=f"{learner}|{time.time_ns()}"
        )
    except ValueError:
        quiz.questions = []
    quiz.i, quiz.answers, quiz.checked = 0, [], False
    quiz.n = n


def render() -> None:
    ctx = state.study()
    qs = session.get(session.Quiz)
    st.title(tr("quiz.title"))
    left, right = st.columns([1, 3], vertical_alignment="bottom")
    left.selectbox(tr("quiz.n"), SIZES, index=1, key="quiz_n", persist_state="session")
    if (
        right.button(tr("quiz.start"), key="quiz-new", icon=":material/refresh:")
        or qs.questions is None
        or qs.lang != state.lang()
        or qs.n != int(st.session_state.get("quiz_n", 10))  # the size just chosen, at once
    ):
        qs.lang = state.lang()
        _new(ctx)
    quiz = qs.questions
    if not quiz:
        st.info(tr("quiz.too_few"))
        return
    i = qs.i
    if i >= len(quiz):
        _result(qs.answers, state.topic_names(ctx.searcher))
        return
    _question(ctx, quiz, i)


def _question(ctx: state.Study, quiz, i: int) -> None:
    qs = session.get(session.Quiz)
    q = quiz[i]
    st.caption(tr("quiz.progress", i=i + 1, n=len(quiz)))
    with st.container(border=True, key="quiz-card"):
        r.html(f'<div class="studyrag-card-front">{r.text(q.prompt)}</div>')
        checked = qs.checked
        choice = st.radio(
            tr("quiz.choose"),
            list(range(len(q.options))),
            format_func=lambda k: f"{LETTERS[k]}. {md_escape(q.options[k].text)}",
            index=None,
            key=f"quiz_choice_{i}",
            disabled=checked,
        )
        if not checked:
            if st.button(tr("quiz.check"), key="quiz-check", type="primary"):
                if choice is None:
                    st.warning(tr("quiz.pick"))
                    return
                qs.answers.append(check(q, int(choice)))
                qs.checked = True
                st.rerun()
            return
        a = qs.answers[-1]
        if a.correct:
            st.success(tr("quiz.right"))
        else:
            st.error(tr("quiz.wrong", letter=LETTERS[q.answer]))
        st.caption(tr("quiz.explanation"))
        titles = state.titles(ctx.searcher)
        # where the passage is (its Q&A number), not the topic the score counts it under: that is
        # often a section of another document
        card = next((c for c in ctx.deck.cards if c.id == q.card_id), None)
        head = card_panel_head(
            titles.get(q.source.doc_id, q.source.doc_id),
            card.qnum if card is not None else None,
            state.topic_names(ctx.searcher)(q.topic),
        )
        r.html(
            cited_text_html(q.explanation, f"sr-quiz-{i}", source_panel(1, q.source, head), close=tr("ask.panel_close"))
        )
        r.source_button(tr("study.source"), source_target(q.source), key=f"quiz-source-{i}", back={"page": "quiz"})
    last = i + 1 >= len(quiz)
    if st.button(tr("quiz.finish") if last else tr("quiz.next"), key="quiz-next", type="primary"):
        qs.i, qs.checked = i + 1, False
        st.rerun()


def _result(answers, topic_name) -> None:
    sc = score(answers)
    st.subheader(tr("quiz.score", right=sc.correct, total=sc.total, pct=round(100 * sc.ratio)))
    st.caption(tr("quiz.by_topic"))
    r.html(topic_score_html(sc.by_topic, topic_name))


def topic_score_html(by_topic: dict, topic_name) -> str:
    """The per-topic score as a small table of text (topics come from the notes: escaped)."""
    head = "".join(f"<th>{r.escape(tr(k))}</th>" for k in ("col.topic", "col.right", "col.total"))
    rows = "".join(
        f'<tr class="topic"><td>{r.escape(topic_name(t))}</td><td>{v["correct"]}</td><td>{v["total"]}</td></tr>'
        for t, v in sorted(by_topic.items(), key=lambda kv: (-kv[1]["total"], kv[0]))
    )
    return f'<div class="studyrag-notes"><table class="studyrag-topic-score"><tr>{head}</tr>{rows}</table></div>'
