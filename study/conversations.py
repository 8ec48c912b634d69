"""Saved conversations: a learner's questions and answers, one JSON message each (the app
stores :meth:`rag.answer.Answer.to_dict` through :mod:`ui.conversation`).

The conversation record and its queries; the tables, the connection and the migrations are
the study store's (:class:`study.store.Store`), and SQL stays in these two modules.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass

from study.store import MAX_TITLE, Store


@dataclass(frozen=True)
class Conversation:
    """A saved conversation: ``messages`` is how many question-and-answer messages it holds."""

    id: int
    profile_id: int
    title: str
    created: float
    updated: float
    messages: int = 0

    @classmethod
    def from_row(cls, r: sqlite3.Row) -> Conversation:
        return cls(r["id"], r["profile_id"], r["title"], r["created"], r["updated"], r["n"])




class Conversations:
    """The conversations in ``store``, each belonging to one profile (another profile's
    conversations are invisible: every query names the profile)."""

    def __init__(self, store: Store):
        self.store = store

    def add(self, profile_id: int, title: str) -> Conversation:
        """Start a conversation for the profile; ``title`` is cut to :data:`MAX_TITLE` characters."""
        t = " ".join(str(title).split())[:MAX_TITLE] or "…"
        now = time.time()
        with self.store.write() as c:
            cur = c.execute(
                "INSERT INTO conversations(profile_id, title, created, updated) VALUES (?,?,?,?)",
                (profile_id, t, now, now),
            )
            cid = cur.lastrowid
        return Conversation(cid, profile_id, t, now, now, 0)

    def list(self, profile_id: int) -> list[Conversation]:  # noqa: A003
        """The profile's conversations, the most recently updated first."""
        rows = self.store.conn.execute(
            "SELECT c.*, (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id) AS n "
            "FROM conversations c WHERE c.profile_id = ? ORDER BY c.updated DESC, c.id DESC",
            (profile_id,),
        )
        return [Conversation.from_row(r) for r in rows]

    def get(self, profile_id: int, conversation_id: int) -> Conversation | None:
        """One of the profile's conversations (``None`` if it has none with that id)."""
        r = self.store.conn.execute(
            "SELECT c.*, (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id) AS n "
            "FROM conversations c WHERE c.profile_id = ? AND c.id = ?",
            (profile_id, conversation_id),
        ).fetchone()
        return None if r is None else Conversation.from_row(r)

    def add_message(self, profile_id: int, conversation_id: int, content: dict) -> int:
        """Append ``content`` (JSON-ready) to the profile's conversation; returns its position.
        :class:`KeyError` when the profile has no such conversation (e.g. deleted meanwhile)."""
        blob = json.dumps(content, ensure_ascii=False)
        now = time.time()
        with self.store.write() as c:
            if c.execute(
                "SELECT 1 FROM conversations WHERE id = ? AND profile_id = ?", (conversation_id, profile_id)
            ).fetchone() is None:
                raise KeyError(f"no conversation {conversation_id} for profile {profile_id}")
            pos = c.execute(
                "SELECT coalesce(max(position) + 1, 0) FROM messages WHERE conversation_id = ?", (conversation_id,)
            ).fetchone()[0]
            c.execute(
                "INSERT INTO messages(conversation_id, position, content, created) VALUES (?,?,?,?)",
                (conversation_id, pos, blob, now),
            )
            c.execute("UPDATE conversations SET updated = ? WHERE id = ?", (now, conversation_id))
        return pos

    def messages(self, profile_id: int, conversation_id: int) -> list[dict]:
        """The messages of the profile's conversation, in order (``[]`` if there is no such one)."""
        rows = self.store.conn.execute(
            "SELECT m.content FROM messages m JOIN conversations c ON c.id = m.conversation_id "
            "WHERE c.profile_id = ? AND c.id = ? ORDER BY m.position",
            (profile_id, conversation_id),
        )
        return [json.loads(r[0]) for r in rows]

    def rename(self, profile_id: int, conversation_id: int, title: str) -> None:
        t = " ".join(str(title).split())[:MAX_TITLE] or "…"
        with self.store.write() as c:
            c.execute(
                "UPDATE conversations SET title = ? WHERE id = ? AND profile_id = ?", (t, conversation_id, profile_id)
            )

    def delete(self, profile_id: int, conversation_id: int) -> bool:
        """Delete the profile's conversation and its messages; ``False`` if there was none."""
        with self.store.write() as c:
            c.execute(
                "DELETE FROM messages WHERE conversation_id IN "
                "(SELECT id FROM conversations WHERE id = ? AND profile_id = ?)",
                (conversation_id, profile_id),
            )
            n = c.execute(
                "DELETE FROM conversations WHERE id = ? AND profile_id = ?", (conversation_id, profile_id)
            ).rowcount
        return n > 0
