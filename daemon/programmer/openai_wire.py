"""OpenAI's chat-completions wire, spoken directly: the per-call path for models litellm resolves to it.

litellm stays the provider layer (which provider a model string names, keys, prices, token counts,
every other provider's protocol), but per streamed call its wrapper costs ~20 ms of CPU on the
daemon's one event loop: the OpenAI SDK's models for every chunk, its chunk rebuilding, a rebuilt
response, cost and success logging run twice. A pool of 32 spends that serially. Here a call is
one POST on a session shared by the loop and a loop over the server-sent events (~1-2 ms), and
the OpenAI SDK (13 MB of modules litellm loads on its first OpenAI call) is never imported.

Only requests litellm would pass through unchanged take this path: the provider is `openai`
(OpenAI, or any OpenAI-compatible server named by `api_base`) and the params are ones the wire
takes as they are. Failures come out as `StatusError` (the litellm exception class the status
maps to, so llm.py's one error table reads both paths) or as the HTTP client's own exceptions.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import ssl
import urllib.parse
import urllib.request
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

# params sent to an OpenAI-compatible server as they are (litellm maps or drops the others per model)
PLAIN_PARAMS = frozenset({"temperature", "top_p", "max_tokens", "seed", "stop", "presence_penalty",
                          "frequency_penalty", "user"})
OPENAI_BASE = "https://api.openai.com/v1"

# HTTP status -> the litellm exception class litellm raises for it on the OpenAI path
_STATUS = {400: "BadRequestError", 401: "AuthenticationError", 403: "PermissionDeniedError",
           404: "NotFoundError", 408: "Timeout", 422: "UnprocessableEntityError", 429: "RateLimitError",
           500: "InternalServerError", 502: "InternalServerError", 503: "ServiceUnavailableError",
           504: "Timeout"}


class StatusError(Exception):
    """The provider answered with an error: `litellm_kind` names the litellm exception it stands for."""

    def __init__(self, kind: str, message: str, status: int | None = None,
                 headers: Any = None) -> None:
        super().__init__(message)
        self.litellm_kind = kind
        self.status = status
        self.headers = headers


class NotAStream(StatusError):
    """The answer was neither server-sent events nor a JSON completion (e.g. a proxy's error page)."""

    def __init__(self, message: str) -> None:
        super().__init__("APIError", message)


@dataclass
class Answer:
    text: str
    usage: dict[str, Any] | None  # the provider's own usage, None when it sent none


def endpoint(api_base: str | None) -> str:
    base = api_base or os.environ.get("OPENAI_BASE_URL") or os.environ.get("OPENAI_API_BASE") or OPENAI_BASE
    return base.rstrip("/") + "/chat/completions"


_SESSIONS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aiohttp.ClientSession] = \
    weakref.WeakKeyDictionary()


def _session() -> aiohttp.ClientSession:
    """One session per event loop (the daemon's, or a Ray node's), so connections are reused."""
    loop = asyncio.get_running_loop()
    session = _SESSIONS.get(loop)
    if session is None or session.closed:
        # No connection limit: the pool size is the limit. Not trust_env: it looks up netrc and the
        # proxy variables on a thread at every request; `_proxy` reads them once per host instead.
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, ssl=_tls())
        session = aiohttp.ClientSession(connector=connector)
        _SESSIONS[loop] = session
    return session


def _tls() -> ssl.SSLContext:
    """Certificates as litellm's HTTP client trusts them: SSL_CERT_FILE, else certifi's bundle."""
    import certifi

    return ssl.create_default_context(cafile=os.environ.get("SSL_CERT_FILE") or certifi.where())


@functools.lru_cache(maxsize=64)
def _proxy(scheme: str, host: str) -> str | None:
    """The proxy the environment names for this host (HTTPS_PROXY, HTTP_PROXY, NO_PROXY), as litellm follows."""
    if urllib.request.proxy_bypass_environment(host):  # type: ignore[attr-defined]  # public, not in typeshed
        return None
    return urllib.request.getproxies_environment().get(scheme)


async def close() -> None:
    """Close this loop's session (at the backend's shutdown)."""
    session = _SESSIONS.pop(asyncio.get_running_loop(), None)
    if session is not None and not session.closed:
        await session.close()


async def stream(url: str, body: dict[str, Any], key: str | None, timeout: float,
                 on_text: Callable[[str], None] | None) -> Answer:
    """POST `body` with stream=True and read the events; cancelling closes the connection."""
    headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    org = os.environ.get("OPENAI_ORGANIZATION")
    if org and url.startswith(OPENAI_BASE):
        headers["OpenAI-Organization"] = org
    limits = aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout)
    where = urllib.parse.urlsplit(url)
    resp = await _session().post(url, data=json.dumps(body), headers=headers, timeout=limits,
                                 proxy=_proxy(where.scheme, where.hostname or ""))
    finished = False
    try:
        if resp.status >= 400:
            raise _status_error(resp.status, await resp.read(), resp.headers)
        kind = resp.headers.get("Content-Type", "")
        if "event-stream" not in kind:
            answer = _whole(await resp.read())
            if on_text is not None and answer.text:
                on_text(answer.text)
            finished = True
            return answer
        pieces: list[str] = []
        usage: dict[str, Any] | None = None
        done = False
        async for raw in resp.content:  # one line each; read to EOF so the connection can be reused
            if done or not raw.startswith(b"data:"):
                continue  # blank separators, comments (": keep-alive"), `event:` lines
            data = raw[5:].strip()
            if data == b"[DONE]":
                done = True
                continue
            chunk = _json(data)
            if "error" in chunk:
                raise _stream_error(chunk["error"])
            usage = chunk.get("usage") or usage
            for choice in chunk.get("choices") or ():
                piece = (choice.get("delta") or {}).get("content")
                if piece and choice.get("index", 0) == 0:
                    pieces.append(piece)
                    if on_text is not None:
                        on_text(piece)
        finished = True
        return Answer("".join(pieces), usage)
    finally:
        if finished:
            resp.release()
        else:
            resp.close()  # error, cancel or timeout mid-stream: the provider sees the hang-up and stops


def _json(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except ValueError:
        raise NotAStream(f"the provider's stream carried something that is not JSON: {data[:80]!r}") from None
    if not isinstance(value, dict):
        raise NotAStream(f"the provider's stream carried {type(value).__name__}, not a chunk")
    return value


def _whole(body: bytes) -> Answer:
    """A server that ignored stream=True and answered the whole completion as JSON."""
    try:
        value = json.loads(body)
        message = value["choices"][0]["message"]
        text = message.get("content") or ""
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        shown = body[:80].decode(errors="replace")
        raise NotAStream(f"the provider answered something that is not a completion: {shown!r}") from None
    return Answer(str(text), value.get("usage") if isinstance(value.get("usage"), dict) else None)


def _status_error(status: int, body: bytes, headers: Any) -> StatusError:
    message, code = _error_text(body, status)
    kind = _STATUS.get(status) or ("InternalServerError" if status >= 500 else "APIError")
    if status == 400:
        kind = _bad_request_kind(message, code)
    return StatusError(kind, message, status, headers)


def _stream_error(error: Any) -> StatusError:
    """An error event inside a stream that began well (OpenAI sends these on overload)."""
    message = str(error.get("message") or error) if isinstance(error, dict) else str(error)
    code = str(error.get("code") or error.get("type") or "") if isinstance(error, dict) else ""
    status = int(code) if code.isdigit() else None
    kind = (_STATUS.get(status) if status else None) or _bad_request_kind(message, code)
    if kind == "BadRequestError" and status is None:
        kind = "APIError"  # an unexplained failure mid-stream: retryable, as litellm treats it
    return StatusError(kind, message, status)


def _bad_request_kind(message: str, code: str) -> str:
    from litellm.litellm_core_utils.exception_mapping_utils import ExceptionCheckers

    text = f"{code} {message}"
    if "context_length_exceeded" in text or ExceptionCheckers.is_error_str_context_window_exceeded(text):
        return "ContextWindowExceededError"
    if "content_policy_violation" in text or "content_filter" in text:
        return "ContentPolicyViolationError"
    return "BadRequestError"


def _error_text(body: bytes, status: int) -> tuple[str, str]:
    """(the provider's message, its error code) from an OpenAI-style error body, else its first line."""
    try:
        value = json.loads(body)
    except ValueError:
        value = None
    if isinstance(value, dict):
        error = value.get("error", value)
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"]), str(error.get("code") or error.get("type") or "")
        if isinstance(error, str) and error:
            return error, ""
    text = body.decode(errors="replace").strip()
    return (text.splitlines()[0][:300] if text else f"HTTP {status}"), ""
