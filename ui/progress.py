"""Progress: due today, reviews per day, retention and mastery per topic, as figures and plots."""

from __future__ import annotations

import altair as alt
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
    st.altair_chart(_per_day(per_day), width="stretch")
    st.subheader(tr("prog.mastery"))
    topics = state.topic_names(ctx.searcher)
    rows = [
        {"topic": topics(m["topic"]), "mastery": round(100 * m["mastery"], 1), "seen": m["seen"], "cards": m["cards"]}
        for m in data["mastery"]
    ]
    if rows:
        st.altair_chart(_mastery(rows), width="stretch")


def _per_day(per_day: list[dict]) -> alt.Chart:
    remembered, forgot = tr("col.reviews"), tr("col.again")
    values = [
        {"day": d["date"][5:], "kind": k, "n": n}
        for d in per_day
        for k, n in ((remembered, d["reviews"] - d["again"]), (forgot, d["again"]))
    ]
    return (
        alt.Chart(alt.Data(values=values), height=240)
        .mark_bar()
        .encode(
            x=alt.X("day:O", title=tr("col.date"), axis=alt.Axis(labelAngle=0)),
            y=alt.Y("n:Q", title=tr("col.reviews"), axis=alt.Axis(tickMinStep=1)),
            color=alt.Color(
                "kind:N",
                title=None,
                scale=alt.Scale(domain=[remembered, forgot], range=["#4e8fd6", "#e07b67"]),
                legend=alt.Legend(orient="bottom"),
            ),
            tooltip=["day:O", "kind:N", "n:Q"],
        )
    )


def _mastery(rows: list[dict]) -> alt.Chart:
    return (
        alt.Chart(alt.Data(values=rows), height=max(160, 24 * len(rows)))
        .mark_bar(color="#6aa84f")
        .encode(
            x=alt.X("mastery:Q", title=f"{tr('col.mastery')} (%)", scale=alt.Scale(domain=[0, 100])),
            y=alt.Y("topic:N", title=None, sort=None, axis=alt.Axis(labelLimit=320)),
            tooltip=["topic:N", "mastery:Q", "seen:Q", "cards:Q"],
        )
    )
