"""The client for an OpenAI-compatible ``/v1/chat/completions`` endpoint (Ollama, vLLM,
llama.cpp …) behind the generative answerer.

Everything the endpoint sends is untrusted. The whole request has one deadline — connect,
headers and body together: a server that drips one byte at a time is cut off when the
deadline passes, not only when a single read stalls. A reply over :data:`MAX_REPLY_BYTES`
is refused. Text quoted from a reply in an error (:func:`quote`) is one printable line of
at most :data:`MAX_QUOTED_CHARS` characters; displaying it escaped is the caller's job.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import threading
import time
import urllib.parse

from rag.context import hide_password
from rag.errors import RagError

LLM_TIMEOUT_S = 60.0
MAX_REPLY_BYTES = 1_000_000
MAX_QUOTED_CHARS = 200
_READ_BYTES = 65_536


class AnswererError(RagError):
    """The generative answer endpoint failed (unreachable, timed out, bad reply)."""


def endpoint_url(url: str) -> str:
    """``http://host:port`` or ``…/v1`` → the full ``…/v1/chat/completions`` URL."""
    u = url.strip().rstrip("/")
    if not re.match(r"^https?://", u):
        raise AnswererError(f"answer endpoint URL must start with http:// or https://, got {quote(hide_password(url))!r}")
    if u.endswith("/chat/completions"):
        return u
    if u.endswith("/v1"):
        return u + "/chat/completions"
    return u + "/v1/chat/completions"


def quote(raw: bytes | str, limit: int = MAX_QUOTED_CHARS) -> str:
    """A short excerpt of text an endpoint sent, for an error message: one line, printable
    characters only, at most ``limit`` characters.

    >>> quote(b"<h1>Oops</h1>\\n\\n![x](http://e/x.png)" + b"!" * 300, 40)
    '<h1>Oops</h1> ![x](http://e/x.png)!!!!!…'
    """
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    text = " ".join("".join(c if c.isprintable() else " " for c in text[: limit * 4]).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _Expired(Exception):
    """The request's deadline passed."""


class _TooLarge(Exception):
    """The reply is over the size cap."""


def _post(target: str, body: bytes, headers: dict[str, str], timeout: float, max_bytes: int) -> tuple[int, str, bytes]:
    """POST ``body`` to ``target``; ``(status, reason, reply bytes)``, all within ``timeout`` s.

    A timer shuts the socket down at the deadline, which ends any read in progress
    (status line, headers or body); the body is read in chunks and counted against
    ``max_bytes``. Raises :class:`_Expired`, :class:`_TooLarge`, or what the connection
    raised (``OSError``, ``http.client.HTTPException``) tagged with ``connected``.
    """
    parts = urllib.parse.urlsplit(target)
    conn_cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = conn_cls(parts.hostname, parts.port, timeout=timeout)
    expired = threading.Event()

    def cut() -> None:
        expired.set()
        if conn.sock is not None:
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    timer = threading.Timer(timeout, cut)
    timer.daemon = True
    timer.start()
    connected = False
    try:
        conn.connect()
        connected = True
        conn.request("POST", parts.path + (f"?{parts.query}" if parts.query else ""), body=body, headers=headers)
        resp = conn.getresponse()
        length = resp.getheader("Content-Length", "")
        if length.strip().isdigit() and int(length) > max_bytes:
            raise _TooLarge(int(length))
        chunks, size = [], 0
        while not expired.is_set():
            chunk = resp.read1(_READ_BYTES)
            if not chunk:
                break
            size += len(chunk)
            if size > max_bytes:
                raise _TooLarge(size)
            chunks.append(chunk)
        if expired.is_set():
            raise _Expired
        return resp.status, resp.reason, b"".join(chunks)
    except (OSError, http.client.HTTPException) as e:
        if expired.is_set():
            raise _Expired from None
        e.connected = connected
        raise
    finally:
        timer.cancel()
        conn.close()


def chat_completion(
    url: str,
    model: str,
    messages: list[dict[str, str]],
    *,
    timeout: float = LLM_TIMEOUT_S,
    api_key: str | None = None,
    max_reply_bytes: int = MAX_REPLY_BYTES,
) -> str:
    """POST to an OpenAI-compatible chat completions endpoint; the reply's text.

    ``timeout`` bounds the whole request; a reply over ``max_reply_bytes`` is refused.
    Every failure is an :class:`AnswererError` with a one-line message.
    """
    target = endpoint_url(url)
    shown = hide_password(target)  # for messages: they are shown, and saved with the conversation
    if not model.strip():
        raise AnswererError("no model name for the answer endpoint: set it in the sidebar or STUDYRAG_LLM_MODEL")
    if timeout <= 0:
        raise ValueError(f"timeout must be > 0, got {timeout}")
    body = json.dumps({"model": model.strip(), "messages": messages, "temperature": 0.1, "stream": False}).encode()
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    t0 = time.monotonic()
    try:
        status, reason, raw = _post(target, body, headers, timeout, max_reply_bytes)
    except _Expired:
        raise AnswererError(f"the answer endpoint {shown} did not reply within {timeout:g} s") from None
    except _TooLarge:
        raise AnswererError(
            f"the answer endpoint {shown} sent a reply over the {max_reply_bytes:,}-byte limit; it was not read"
        ) from None
    except TimeoutError:
        raise AnswererError(f"the answer endpoint {shown} did not reply within {timeout:g} s") from None
    except (OSError, http.client.HTTPException) as e:
        why = quote(getattr(e, "strerror", None) or str(e) or type(e).__name__)
        if not getattr(e, "connected", True):
            raise AnswererError(
                f"cannot reach the answer endpoint {shown} ({why}); check the URL, or switch the answerer to extractive"
            ) from None
        raise AnswererError(f"the answer endpoint {shown} failed after {time.monotonic() - t0:.1f} s: {why}") from None
    if not 200 <= status < 300:
        raise AnswererError(f"the answer endpoint {shown} returned HTTP {status} {quote(reason, 60)}: {quote(raw)}".strip())
    try:
        data = json.loads(raw.decode("utf-8"))
        content = data["choices"][0]["message"]["content"]
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, IndexError, TypeError):
        raise AnswererError(
            f"the answer endpoint {shown} sent a reply that is not an OpenAI-style chat completion: {quote(raw)}"
        ) from None
    if not isinstance(content, str) or not content.strip():
        raise AnswererError(f"the answer endpoint {shown} sent an empty answer")
    # Reasoning models may prepend their thinking.
    return re.sub(r"<think>.*?</think>", "", content, flags=re.DOTALL).strip()
