"""Streamlit helpers the pages share: the style sheet, inert HTML output, "open in the
document" buttons, scrolling, and times in the learner's words."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable

import streamlit as st

from rag.highlight import escape, md_escape
from ui import session, state
from ui.notes import MAX_PANELS
from ui.state import tr

_PANEL_RULES = "\n".join(
    f".sr-toggle:nth-of-type({k}):checked ~ .sr-panels > .sr-panel:nth-child({k}) {{ display: block; }}"
    for k in range(1, MAX_PANELS + 1)
)
_ACTIVE_RULES = "\n".join(
    f'div:has(> .sr-toggle[data-n="{n}"]:checked) > .sr-body .studyrag-cite[data-n="{n}"] '
    "{ background: #1c4e80; color: #fff; }"
    for n in range(1, MAX_PANELS + 1)
)

CSS = f"""
<style>
.studyrag-notes {{ line-height: 1.7; overflow-wrap: anywhere; }}
.studyrag-h1, .studyrag-h2, .studyrag-h3, .studyrag-h4, .studyrag-h5, .studyrag-h6 {{ font-weight: 700;
  line-height: 1.4; }}
.studyrag-h1 {{ font-size: 1.45rem; margin: 1rem 0 .4rem; }}
.studyrag-h2 {{ font-size: 1.25rem; margin: .9rem 0 .35rem; }}
.studyrag-h3 {{ font-size: 1.1rem; margin: .8rem 0 .3rem; }}
.studyrag-h4, .studyrag-h5, .studyrag-h6 {{ font-size: 1rem; margin: .6rem 0 .25rem; }}
.studyrag-notes p {{ margin: 0 0 .6rem; }}
.studyrag-notes pre, .studyrag-code {{ background: rgba(128,128,128,.10); padding: .5rem .7rem; border-radius: 4px;
  overflow-x: auto; white-space: pre; font-size: .85rem; margin: .2rem 0 .7rem; overflow-wrap: normal;
  font-family: "Source Code Pro", ui-monospace, monospace; line-height: 1.5; }}
.studyrag-notes table {{ border-collapse: collapse; margin: .4rem 0 .8rem; font-size: .9rem; }}
.studyrag-notes th, .studyrag-notes td {{ border: 1px solid rgba(128,128,128,.35); padding: .2rem .5rem;
  overflow-wrap: normal; word-break: normal; }}
.studyrag-notes th {{ white-space: nowrap; }}
.studyrag-notes table {{ display: block; max-width: 100%; overflow-x: auto; }}
/* "Open [n] in its document" scrolls the page to the passage: the way back stays in view */
.st-key-source-back {{ position: sticky; top: 3.75rem; z-index: 990; width: fit-content; }}
.st-key-source-back button {{ background: var(--background-color, #fff); box-shadow: 0 1px 4px rgba(0,0,0,.18); }}
[class*="st-key-chat-"] button {{ justify-content: flex-start; text-align: left; padding-left: .6rem;
  padding-right: .6rem; }}
[class*="st-key-chat-"] button div, [class*="st-key-chat-"] button span {{ justify-content: flex-start; }}
[class*="st-key-chat-"] button[data-testid="stBaseButton-tertiary"] {{ border: 1px solid transparent; }}
[class*="st-key-chat-"] button p {{ text-align: left; }}
.studyrag-mastery {{ display: grid; grid-template-columns: minmax(8rem, max-content) 1fr; gap: .3rem .8rem;
  align-items: center; font-size: .9rem; margin: .3rem 0 1rem; }}
.studyrag-mastery .bar {{ background: rgba(128,128,128,.15); border-radius: 3px; height: 1.1rem; position: relative; }}
.studyrag-mastery .fill {{ background: #6aa84f; border-radius: 3px; height: 100%; }}
.studyrag-mastery .pct {{ position: absolute; left: .4rem; top: 0; font-size: .75rem; line-height: 1.1rem; }}
.studyrag-notes blockquote {{ border-left: 3px solid rgba(128,128,128,.4); margin: .3rem 0; padding-left: .7rem; }}
.studyrag-link {{ text-decoration: underline dotted; }}
.studyrag-image {{ color: #777; }}
.studyrag-passage {{ font-size: .92rem; max-height: 24rem; overflow-y: auto; }}
/* the box scrolls, so it clips what lies left of it: room for a Q&A number ("47.") */
.studyrag-passage > ol {{ padding-left: 1.4em; }}
mark.studyrag-quote {{ background: #ffe58f; color: inherit; padding: 0 1px; border-radius: 2px; }}
mark.studyrag-cited {{ background: #dcebff; color: inherit; padding: 0; }}
.studyrag-answer-text, .studyrag-card-text {{ white-space: normal; line-height: 1.75; font-size: 1.02rem; }}
.studyrag-answer-text .studyrag-code {{ white-space: pre; overflow-x: auto; margin: .3rem 0 .1rem; padding: .4rem .6rem; background: #f6f8fa; border-radius: 4px; font-size: .9rem; line-height: 1.45; }}
.studyrag-lead {{ color: #666; font-style: italic; margin-bottom: .2rem; }}
.studyrag-flagged {{ background: #fff3cd; border-bottom: 2px dotted #c0392b; }}
.studyrag-cite {{ display: inline-block; font-size: .78em; font-weight: 600; color: #1c4e80; background: #e3eefa;
  border-radius: 4px; padding: 0 4px; margin: 0 1px; vertical-align: super; line-height: 1.25; cursor: pointer;
  user-select: none; }}
.studyrag-cite:hover {{ background: #c9defa; }}
.studyrag-nobr {{ white-space: nowrap; }}
.studyrag-bad-cite {{ font-size: .78em; color: #c0392b; vertical-align: super; }}
.sr-toggle {{ display: none; }}
.sr-panel {{ display: none; border-left: 3px solid #5b9bd5; background: rgba(91,155,213,.08); padding: .5rem .8rem;
  margin: .5rem 0 .2rem; border-radius: 4px; }}
.sr-panel-head {{ font-size: .85rem; color: #555; margin-bottom: .35rem; font-weight: 600; }}
.sr-num {{ color: #1c4e80; }}
.sr-close {{ float: right; cursor: pointer; font-size: 1.2rem; line-height: 1; color: #777; padding: 0 .3rem; }}
.sr-note {{ font-size: .8rem; color: #777; margin-bottom: .25rem; }}
.studyrag-notice {{ font-size: .85rem; color: #8a5a00; background: #fff6e0; border-radius: .3rem; padding: .3rem .5rem; margin-bottom: .5rem; white-space: normal; }}
.sr-panel details summary {{ cursor: pointer; font-size: .85rem; color: #555; margin-top: .3rem; }}
.studyrag-meta {{ font-size: .85rem; color: #777; overflow-wrap: anywhere; }}
.studyrag-report table {{ font-size: .85rem; }}
{_PANEL_RULES}
{_ACTIVE_RULES}
</style>
"""


def style() -> None:
    st.html(CSS)


def _css_string(text: str) -> str:
    """``text`` as a CSS string literal (our own interface words; quotes and backslashes escaped)."""
    return '"' + "".join(f"\\{ord(c):x} " if c in '"\\<>\n' else c for c in text) + '"'


def uploader_labels(button: str, limit: str) -> None:
    """The file uploader's own words in the interface language. Streamlit writes "Upload" and
    "2MB per file • MD, TXT" itself, in English, with no parameter for them: its texts are
    hidden and ours shown in their place (style only; the button and the drop zone work as
    before, and the accessible name comes from the uploader's label)."""
    zone = '[data-testid="stFileUploaderDropzone"]'
    st.html(
        "<style>"
        f'{zone} button [data-testid="stMarkdownContainer"] p {{ display: none; }}'
        f'{zone} button [data-testid="stMarkdownContainer"]::after {{ content: {_css_string(button)}; }}'
        f'{zone} [data-testid="stFileUploaderDropzoneInstructions"] span {{ display: none; }}'
        f'{zone} [data-testid="stFileUploaderDropzoneInstructions"] > div::after {{ content: {_css_string(limit)};'
        " font-size: .875rem; opacity: .7; }"
        "</style>"
    )


def uploader_in_language(types: Iterable[str], mb: int | None = None) -> None:
    """:func:`uploader_labels` for an uploader of ``types`` (file suffixes) with a limit of ``mb``
    per file (the server's ``server.maxUploadSize`` when ``None``), in the interface language."""
    mb = mb if mb is not None else int(st.get_option("server.maxUploadSize"))
    kinds = ", ".join(t.lstrip(".").upper() for t in types)
    uploader_labels(tr("add.upload_button"), tr("add.upload_limit", mb=mb, types=kinds))


def html(markup: str) -> None:
    """Inert HTML we built (every outside text in it escaped)."""
    st.markdown(markup, unsafe_allow_html=True)


def text(value: str) -> str:
    """Outside text for Markdown with HTML (a question, a title): escaped, no links."""
    from rag.highlight import inline

    return inline(value)


def caption(value: str) -> None:
    """An inert caption of outside text."""
    st.caption(md_escape(value))


def source_button(label: str, target: dict, *, key: str, back: dict | None = None) -> None:
    """A button that opens a document at ``target`` (``doc_id``, ``start``, ``end``, ``text``,
    ``quotes``); ``back`` says where its "back" button returns to."""
    if st.button(label, key=key, icon=":material/description:", type="tertiary"):
        session.get(session.Sources).target = {**target, "back": back or {}}
        st.session_state["source_doc"] = target["doc_id"]  # the document picker's widget value
        state.go("sources")


def scroll_to(selector: str, *, block: str = "start") -> None:
    """Scroll the page so the element matching ``selector`` (one we made) is in view."""
    script = (
        "<script>(function () {"
        f"const sel = {json.dumps(selector)}, block = {json.dumps(block)}; let tries = 0;"
        "function go() {"
        "  const el = window.parent.document.querySelector(sel) || document.querySelector(sel);"
        "  if (el) { el.scrollIntoView({block: block, behavior: 'instant'}); return; }"
        "  if (++tries < 50) setTimeout(go, 100);"
        "}"
        "setTimeout(go, 50);"
        "})();</script>"
    )
    st.html(script, unsafe_allow_javascript=True)


def when(ts: float | None, now: float | None = None) -> str:
    """A future time as "in 10 min" / "in 3 h" / "in 4 d" in the learner's language."""
    if ts is None:
        return ""
    secs = max(0.0, ts - (now if now is not None else time.time()))
    if secs < 3600:
        return tr("time.minutes", n=max(1, round(secs / 60)))
    if secs < 86400:
        return tr("time.hours", n=round(secs / 3600))
    return tr("time.days", n=round(secs / 86400))


def pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.0f}%"


def joined(items: Iterable[str]) -> str:
    return ", ".join(md_escape(i) for i in items)


__all__ = ["CSS", "caption", "escape", "html", "joined", "pct", "scroll_to", "source_button", "style", "text", "when"]
