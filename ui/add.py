"""Add documents: uploads checked before anything is written, then read into the notes
(incrementally; searching keeps working); files changed outside the app can be re-read."""

from __future__ import annotations

import streamlit as st

from ingest.uploads import MAX_UPLOAD_BYTES, add_documents, overall_fraction, update_index
from rag.corpus import stale_documents
from rag.errors import RagError
from rag.highlight import md_escape
from ui import render as r
from ui import state
from ui.state import tr

STAGES = ("chunks", "headings", "sentences", "analyze")


def render() -> None:
    searcher = state.load_searcher()
    st.title(tr("add.title"))
    st.write(tr("add.intro", mb=MAX_UPLOAD_BYTES // 1_000_000))
    ss = st.session_state
    ss.setdefault("uploader_round", 0)
    r.uploader_labels(
        tr("add.upload_button"), tr("add.upload_limit", mb=MAX_UPLOAD_BYTES // 1_000_000, types="MD, TXT")
    )
    files = st.file_uploader(
        tr("add.files"),
        type=["md", "txt"],
        accept_multiple_files=True,
        max_upload_size=max(1, MAX_UPLOAD_BYTES // 1_000_000),
        key=f"uploader-{ss['uploader_round']}",
    )
    if st.button(tr("add.button"), type="primary", disabled=not files, key="add-files"):
        _upload([(f.name, f.getvalue()) for f in files], searcher.index.encoder_id)
    for kind, key, values in ss.get("upload_messages", []):  # worded now: in today's language
        getattr(st, kind)(tr(key, **values))
    _stale(searcher)
    uploads = state.uploads_dir()
    mine = sorted(p.name for p in uploads.glob("*") if p.suffix.lower() in (".md", ".txt")) if uploads.is_dir() else []
    if mine:
        st.caption(tr("add.so_far", names=r.joined(mine)))


def _progress_bar():
    """A progress bar and the callback that moves it through the ingest stages."""
    bar = st.progress(0.0, text=tr("stage.checking"))

    def progress(desc: str, n: int, total: int | None) -> None:
        label = tr(f"stage.{desc}") if desc in STAGES else tr("stage.checking")
        bar.progress(overall_fraction(desc, n, total), text=f"{label} {n}/{total or '?'}")

    return bar, progress


def _upload(files: list[tuple[str, bytes]], encoder: str) -> None:
    ss = st.session_state
    bar, progress = _progress_bar()
    messages: list[tuple[str, str, dict]] = []  # (kind, i18n key, values)
    try:
        result, report = add_documents(
            files,
            state.corpus_dir(),
            state.index_dir(),
            state.get_encoder(encoder),
            progress=progress,
            uploads=state.uploads_dir(),
        )
    except (RagError, OSError) as e:
        bar.empty()
        ss["upload_messages"] = [("error", "add.failed", {"error": md_escape(str(e))})]
        return
    bar.progress(1.0, text=tr("stage.done"))
    for _name, why in result.refused:
        messages.append(("error", "add.refused", {"reason": md_escape(why)}))
    for d in result.unchanged:
        messages.append(("info", "add.unchanged", {"name": md_escape(d)}))
    if result.saved:
        messages.append(("success", "add.added", {"names": r.joined(result.saved), "docs": report.documents}))
    ss["upload_messages"] = messages
    if result.saved:
        ss["uploader_round"] += 1  # clears the uploader
        st.rerun()


def _stale(searcher) -> None:
    """Offer to re-read files that changed in the notes folder outside the app."""
    try:
        stale = stale_documents(searcher.index.manifest, state.corpus_dir(), uploads=state.uploads_dir())
    except (RagError, OSError):
        return
    if not stale:
        return
    names = r.joined(stale[:5]) + ("…" if len(stale) > 5 else "")
    st.warning(tr("add.stale", n=len(stale), names=names))
    if st.button(tr("add.update"), key="update-index"):
        bar, progress = _progress_bar()
        try:
            report = update_index(
                state.corpus_dir(),
                state.index_dir(),
                state.get_encoder(searcher.index.encoder_id),
                progress=progress,
                uploads=state.uploads_dir(),
            )
        except (RagError, OSError) as e:
            bar.empty()
            st.error(tr("add.failed", error=md_escape(str(e))))
            return
        bar.progress(1.0, text=tr("stage.done"))
        st.session_state["upload_messages"] = [("success", "add.updated", {"docs": report.documents})]
        st.rerun()
