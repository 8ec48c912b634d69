"""Export & import: the deck with the learner's scheduling state for Anki (.apkg) and as CSV,
our progress file out and back in (refused with the reason when it is not one)."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import streamlit as st

from rag.highlight import md_escape
from study.export import (
    ImportFileError,
    deck_for_export,
    file_profile,
    import_progress,
    write_anki,
    write_csv,
    write_progress,
)
from study import validate
from study.store import StoreError
from ui import render as r
from ui import session
from ui import state
from ui.state import tr


def safe_stem(name: str) -> str:
    """A file-name stem for a learner's name (no folders, no odd characters)."""
    stem = re.sub(r"[^\w.-]+", "_", name, flags=re.UNICODE).strip("._")[:40]
    return stem or "learner"


def _file_bytes(write, suffix: str) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"deck{suffix}"
        write(path)
        return path.read_bytes()


def render() -> None:
    ctx = state.study()
    s, p = ctx.store, ctx.profile
    st.title(tr("exp.title"))
    st.write(tr("exp.intro"))
    cards, states = deck_for_export(s, p.name)
    stem = f"studyrag-{safe_stem(p.name)}"
    files = (  # label, writer, suffix, file name, MIME type, widget key
        ("exp.anki", lambda f: write_anki(f, cards, states, profile=p.name), ".apkg", f"{stem}.apkg",
         "application/octet-stream", "exp-anki"),
        ("exp.csv", lambda f: write_csv(f, cards, states), ".csv", f"{stem}.csv", "text/csv", "exp-csv"),
        ("exp.progress", lambda f: write_progress(f, s, p.name), ".json", f"{stem}-progress.json",
         "application/json", "exp-progress"),
    )
    for col, (label, write, suffix, name, mime, key) in zip(st.columns(len(files)), files):
        try:
            data = _file_bytes(write, suffix)
        except OSError as e:  # no room for the file (a full disk): said, and the page goes on
            col.error(tr("exp.write_failed", file=name, error=md_escape(str(e.strerror or e))))
            continue
        col.download_button(tr(label), data, file_name=name, mime=mime, key=key,
                            icon=":material/download:", on_click="ignore")
    st.divider()
    st.subheader(tr("exp.import"))
    tx = session.get(session.Transfer)
    r.uploader_in_language(["json"])
    up = st.file_uploader(
        tr("exp.import"), type=["json"], key=f"exp-upload-{tx.round}", label_visibility="collapsed"
    )
    if st.button(tr("exp.import_button"), key="exp-import", disabled=up is None, type="primary"):
        data = up.getvalue()
        owner = file_profile(data)
        if owner is not None and owner != p.name:  # another learner's progress: merged only when asked
            tx.pending, tx.messages = (up.name, data), []
        else:
            tx.pending = None
            _import(s, p.name, up.name, data)
    if tx.pending is not None:
        owner = file_profile(tx.pending[1])
        st.warning(tr("exp.other_learner", owner=md_escape(owner or ""), me=md_escape(p.name)))
        if st.button(tr("exp.import_anyway", me=md_escape(p.name)), key="exp-import-anyway"):
            (name, data), tx.pending = tx.pending, None
            _import(s, p.name, name, data)
    for kind, msg in tx.messages:
        getattr(st, kind)(msg)


def _import(s, profile: str, name: str, data: bytes) -> None:
    tx = session.get(session.Transfer)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "progress.json"
            path.write_bytes(data)
            try:
                rep = import_progress(s, profile, path)
            except ImportFileError as e:  # said in the interface language, the detail under it
                detail = str(e).replace(str(path), name)
                why = tr(f"exp.why.{e.kind}", mb=validate.MAX_BYTES // 2**20)
                tx.messages = [("error", tr("exp.refused", reason=why)),
                               ("caption", tr("exp.detail", detail=md_escape(detail)))]
                return
            except StoreError as e:
                tx.messages = [("error", tr("exp.refused", reason=md_escape(str(e))))]
                return
    except OSError as e:  # no room to receive the file: nothing was read or written
        tx.messages = [("error", tr("exp.refused", reason=md_escape(str(e.strerror or e))))]
        return
    msgs = [("success", tr("exp.imported", taken=rep.states_taken, reviews=rep.reviews_added, kept=rep.states_kept))]
    if rep.unknown_cards:
        msgs.append(("info", tr("exp.unknown", n=len(rep.unknown_cards))))
    tx.messages = msgs
    tx.round += 1
    st.rerun()
