"""Progress: due today, reviews per day, retention and mastery per topic, as figures and plots."""

from __future__ import annotations

import streamlit as st

from study import progress
from ui import render as r
from ui import state
from ui.state import tr

DAYS = 14


def render() -> None:
    ctx = state.study()
    st.title(tr("prog.title"))
    data = progress.summary(ctx.store, ctx.profile.id, days=DAYS)
    due, ret = data["due"], data["retention"]
    cols = st.columns(4)
    cols[0].metric(tr("prog.due_now"), due["due_now"])
    cols[1].metric(tr("prog.due_today"), due["due_today"])
    cols[2].metric(tr("prog.new_left"), due["new_left_today"])
    cols[3].metric(tr("prog.retention"), r.pct(ret["retention"]))
    per_day = data["reviews_per_day"]
    if not any(d["reviews"] for d in per_day):
        st.info(tr("prog.nothing"))
    st.subheader(tr("prog.per_day"))
    day, rev, again = tr("col.date"), tr("col.reviews"), tr("col.again")
    st.bar_chart(
        [{day: d["date"][5:], rev: d["reviews"] - d["again"], again: d["again"]} for d in per_day],
        x=day, y=[rev, again], color=["#4e8fd6", "#e07b67"], height=260, width="stretch",
    )
    st.subheader(tr("prog.mastery"))
    topic, mastery = tr("col.topic"), tr("col.mastery")
    rows = [{topic: m["topic"][:40], mastery: round(100 * m["mastery"], 1)} for m in data["mastery"]]
    if rows:
        st.bar_chart(rows, x=topic, y=mastery, horizontal=True, height=max(200, 28 * len(rows)), width="stretch",
                     color="#6aa84f")
