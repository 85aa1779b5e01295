"""An OpenAI-compatible model server on loopback: scripted answers and faults for tests and demos.

Control: POST /control/script (responses queued in order), /control/rules, /control/latency,
/control/reset; GET /control/requests (every request and its answer) and /control/reads (pasd's
answers to file requests, as the model saw them). A response with `"read": [paths]` asks for those
files (`READ path`) until pasd has answered each request, then answers as scripted; without
`content` the answer is a real edit of the task's files as the latest round shows them.

It also speaks the Anthropic Messages API (POST /v1/messages, streamed or not, with tool use) for
agent CLIs such as Claude Code, which edit the files with their own tools: see that section.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import signal
import socket
import struct
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

MODEL_ID = "pasd-offline"
NO_EDITS = "I read the code and the instruction; I would leave it as it is, so there are no edits."
_ERROR_TYPES = {401: "authentication_error", 404: "not_found_error", 429: "rate_limit_error"}
_PREFIXES = {
    **dict.fromkeys(("js", "ts", "go", "rs", "c", "h", "cpp", "java", "kt", "swift"), "//"),
    **dict.fromkeys(("lua", "sql"), "--"),
}


# ---------------------------------------------------------------- the default answer


_NOTE = re.compile(r"\s+\((as it is now|read-only)\)$")
_READ_ANSWER = re.compile(r"^- (.+?): (sent below, read-only|refused: (.*))", re.M)


def _sections(text: str) -> list[tuple[str, str, str]]:
    """(kind, argument, body) of each `### FILE|SELECTION|INSTRUCTION` section of a message."""
    parts = re.split(r"^### (FILE|SELECTION|INSTRUCTION)\b:?[ \t]*(.*)$", text, flags=re.M)
    return list(zip(parts[1::3], parts[2::3], parts[3::3], strict=True))


def _fenced(body: str) -> str | None:
    lines = body.strip("\n").split("\n")
    fence = re.match(r"`{3,}|~{3,}", lines[0]) if lines else None
    if fence is None:
        return None
    # The last line that is the same fence closes the file, so inner ``` lines survive.
    close = max((i for i, x in enumerate(lines) if i and x.strip() == fence.group()), default=0)
    inner = lines[1:close] if close else lines[1:]
    return "".join(line + "\n" for line in inner)


def parse_prompt(text: str) -> tuple[dict[str, str], tuple[str, int, int] | None, str]:
    """Files, selection (path, start, end) and instruction from pasd's prompt layout.

    A repair message's `### FILE: path (as it is now)` updates that file; files sent on request
    (`(read-only)`) are not the task's and are left out.
    """
    files: dict[str, str] = {}
    selection: tuple[str, int, int] | None = None
    instruction: list[str] = []
    for kind, arg, body in _sections(text):
        if kind == "FILE":
            note = _NOTE.search(arg.strip())
            if note is not None and note.group(1) == "read-only":
                continue
            content = _fenced(body)
            if content is not None:
                files[_NOTE.sub("", arg.strip())] = content
        elif kind == "SELECTION":
            m = re.fullmatch(r"(.+):(\d+)-(\d+)", arg.strip())
            if m:
                selection = (m.group(1), int(m.group(2)), int(m.group(3)))
        else:
            instruction = [line for line in body.split("\n") if line.strip()]
    return files, selection, instruction[0].strip() if instruction else ""


def read_answers(text: str) -> list[dict[str, Any]]:
    """pasd's answers to file requests in one message: path, whether it was sent, and the reason if not."""
    if "Your file requests:" not in text:
        return []
    listed = text.split("Your file requests:", 1)[1].split("\n\n", 1)[0]
    return [{"path": m.group(1), "sent": m.group(3) is None, "reason": m.group(3) or ""}
            for m in _READ_ANSWER.finditer(listed)]


def user_texts(messages: list[Any]) -> list[str]:
    """The user's side of a conversation: the task, then each later round's message (what comes before
    the task, such as the repo map, is context, not the task)."""
    texts = [_text_of(m.get("content")) for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    first = next((i for i, text in enumerate(texts) if re.search(r"^### INSTRUCTION\b", text, flags=re.M)), 0)
    return texts[first:]


def _answered(messages: list[Any]) -> set[str] | None:
    """Paths pasd has answered a request for; None once it refuses any more requests."""
    done: set[str] = set()
    for m in messages:
        if isinstance(m, dict) and m.get("role") == "user":
            text = _text_of(m.get("content"))
            if "file requests refused:" in text:
                return None
            done |= {a["path"] for a in read_answers(text)}
    return done


def _comment_prefix(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    return _PREFIXES.get(name.rsplit(".", 1)[-1], "#") if "." in name else "#"


def default_answer(prompt: str, later: list[str] | None = None) -> str:
    """A real, deterministic edit: a `pas:` comment above the selection (or the file's top).

    `later`: the conversation's later user messages (repair rounds, revisions): their files as they
    are now replace the prompt's, so the edit applies to what the files have become, and a
    revision's instruction (the reviewer's comment) replaces the task's.
    """
    files, selection, instruction = parse_prompt(prompt.replace("\r\n", "\n"))
    for text in later or []:
        now, _, said = parse_prompt(text.replace("\r\n", "\n"))
        files.update((path, content) for path, content in now.items() if path in files)
        instruction = said or instruction  # a revision's comment is the instruction from then on
    if not files:
        return NO_EDITS
    path = selection[0] if selection and selection[0] in files else next(iter(files))
    lines = files[path].split("\n")[:-1]
    if selection and selection[0] == path and lines:
        start = min(max(selection[1], 1), len(lines))
        end = min(max(selection[2], start), len(lines))
    else:
        start, end = 1, min(3, len(lines))
    chosen = lines[start - 1 : end]
    indent = chosen[0][: len(chosen[0]) - len(chosen[0].lstrip())] if chosen else ""
    comment = f"{indent}{_comment_prefix(path)} pas: {instruction or 'change requested'}"
    # apply_edit takes the first match: widen SEARCH upwards until the selection is that match.
    first = start
    while first > 1 and _first_match(lines, lines[first - 1 : end]) != first - 1:
        first -= 1
    context = lines[first - 1 : start - 1]
    search = "\n".join([*context, *chosen])
    replace = "\n".join([*context, comment, *chosen])
    fence = "````" if any(line.lstrip().startswith("```") for line in lines) else "```"
    return (
        f"I added a note above the lines in question.\n\n{path}\n{fence}\n<<<<<<< SEARCH\n"
        + (search + "\n" if chosen else "")
        + f"=======\n{replace}\n>>>>>>> REPLACE\n{fence}\n"
    )


def _first_match(lines: list[str], block: list[str]) -> int:
    return next(i for i in range(len(lines)) if lines[i : i + len(block)] == block)


# ---------------------------------------------------------------- HTTP


def _text_of(content: Any) -> str:
    """A message's text, whether it is a string or a list of OpenAI content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _error_body(status: int, message: str) -> dict[str, Any]:
    kind = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": str(status)}}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog of 5 drops the SYNs of a pool's first burst of connections
    # beyond it; each dropped one is resent a second later, a second no real provider adds
    request_queue_size = 128
    model: OfflineModel

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionResetError | BrokenPipeError):
            return  # a client hanging up (a cancelled stream) is what clients do, not a server error
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as httpx expects from a real provider
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests and the demo read the request log, not stderr noise

    def _send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _read_json(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw or b"null")
        except ValueError:
            self._send_json(400, _error_body(400, "request body is not valid JSON"))
            raise

    def do_GET(self) -> None:
        model = self.server.model
        if self.path.rstrip("/") in ("/v1/models", "/models"):
            card = {"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "pasd"}
            self._send_json(200, {"object": "list", "data": [card]})
        elif self.path == "/control/requests":
            with model._lock:
                log = list(model.requests)
            self._send_json(200, log)
        elif self.path == "/control/reads":
            with model._lock:
                answers = [a for entry in model.requests for a in entry.get("reads", [])]
            self._send_json(200, answers)
        else:
            self._send_json(404, _error_body(404, f"no route {self.path}"))

    def do_POST(self) -> None:
        try:
            body = self._read_json()
        except ValueError:
            return
        model = self.server.model
        path = self.path.rstrip("/")
        route = path.split("?", 1)[0]  # the Anthropic client adds `?beta=true`
        if route in ("/v1/messages", "/messages"):
            _messages(self, body)
        elif route in ("/v1/messages/count_tokens", "/messages/count_tokens"):
            _count_tokens(self, body)
        elif path in ("/v1/chat/completions", "/chat/completions"):
            if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
                self._send_json(400, _error_body(400, "'messages' must be a list"))
                return
            self._chat(body)
        elif path in ("/control/script", "/control/rules"):
            if not isinstance(body, list) or not all(isinstance(x, dict) for x in body):
                self._send_json(400, _error_body(400, "expected a list of response objects"))
                return
            if path == "/control/script":
                model.script(body)
            else:
                model.set_rules(body)
            self._send_json(200, {"ok": True})
        elif path == "/control/latency":
            seconds = body.get("seconds") if isinstance(body, dict) else None
            chunk = body.get("chunk_seconds") if isinstance(body, dict) else None
            if (not isinstance(seconds, int | float) or seconds < 0
                    or not (chunk is None or (isinstance(chunk, int | float) and chunk >= 0))):
                self._send_json(400, _error_body(400, "expected {\"seconds\": <number >= 0>, "
                                                      "\"chunk_seconds\": <number >= 0, optional>}"))
                return
            model.set_latency(float(seconds), None if chunk is None else float(chunk))
            self._send_json(200, {"ok": True})
        elif path == "/control/reset":
            model.reset()
            self._send_json(200, {"ok": True})
        else:
            self._send_json(404, _error_body(404, f"no route {self.path}"))

    def _chat(self, body: dict[str, Any]) -> None:
        model = self.server.model
        messages: list[Any] = body["messages"]
        users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
        last_user = _text_of(users[-1].get("content")) if users else ""
        spec, default_latency = model._next_spec(last_user, _answered(messages))
        entry: dict[str, Any] = {
            "reads": read_answers(last_user),
            "time": time.time(),
            "model": body.get("model"),
            # the sampling parameters the client sent (a model's configured `params` reach here)
            "params": {k: body[k] for k in ("temperature", "max_tokens", "top_p", "seed") if k in body},
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "messages": messages,
            "response": {},
            "usage": {},
        }
        fault = spec.get("fault")
        if fault == "hang":
            model._stopping.wait(float(spec.get("latency", 3600)))
            entry["response"] = {"fault": "hang"}
            model._log(entry)
            self.close_connection = True
            return
        model._stopping.wait(float(spec.get("latency", default_latency)))

        if fault == "reset":
            entry["response"] = {"fault": "reset"}
            model._log(entry)
            # Linger 0 makes close() send RST instead of FIN: a real dropped connection.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.rfile.close()  # the socket only really closes once its file objects are gone
            self.connection.close()
            return
        if "status" in spec:
            status = int(spec["status"])
            err = _error_body(status, str(spec.get("content") or f"offline model answered {status}"))
            headers = {"Retry-After": str(spec["retry_after"])} if "retry_after" in spec else {}
            entry["response"] = {"status": status, **err}
            model._log(entry)
            self._send_json(status, err, headers)
            return
        if fault == "garbage":
            data = b"<html>502 upstream garbage, not JSON"
            entry["response"] = {"fault": "garbage"}
            model._log(entry)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return

        content = NO_EDITS if fault == "no_edits" else spec.get("content")
        if not isinstance(content, str):
            texts = user_texts(messages)
            content = default_answer(texts[0], texts[1:]) if texts else NO_EDITS
        prompt_text = "".join(_text_of(m.get("content")) for m in messages if isinstance(m, dict))
        prompt_tokens = int(spec.get("prompt_tokens", len(prompt_text) // 4 + 1))
        completion_tokens = int(spec.get("completion_tokens", len(content) // 4 + 1))
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "completion_tokens_details": {"reasoning_tokens": int(spec.get("reasoning_tokens", 0))},
        }
        cached = model._cached_tokens(prompt_text, spec)
        if cached is not None:
            usage["prompt_tokens_details"] = {"cached_tokens": min(cached, prompt_tokens)}
        entry["usage"] = usage
        head = {
            "id": f"chatcmpl-offline-{next(model._ids)}",
            "created": int(time.time()),
            "model": str(body.get("model") or MODEL_ID),
        }
        if body.get("stream"):
            options = body.get("stream_options") or {}
            include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
            if spec.get("stream_usage") is False:  # a provider that never reports usage on a stream
                include_usage = False
            chunk_chars = spec.get("chunk_chars")
            chunks = _chunks(head, content, usage if include_usage else None,
                             int(chunk_chars) if chunk_chars else None)
            # logged as the answer it adds up to (as unstreamed), with the chunks it went out in
            message = {"role": "assistant", "content": content}
            entry["response"] = {**head, "object": "chat.completion", "usage": usage, "stream": True, "chunks": chunks,
                                 "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}
            entry["sent_chunks"] = 0
            entry["disconnected"] = False
            model._log(entry)
            self._send_stream(chunks, entry, float(spec.get("chunk_latency", model._chunk_latency)))
            return
        message = {"role": "assistant", "content": content}
        response = {
            **head,
            "object": "chat.completion",
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": usage,
        }
        entry["response"] = response
        model._log(entry)
        self._send_json(200, response)

    def _send_stream(self, chunks: list[dict[str, Any]], entry: dict[str, Any], delay: float) -> None:
        """Send the SSE chunks, `delay` seconds apart; a client that hangs up is recorded in `entry`
        (`disconnected`, and `sent_chunks` how far it got), as a real provider stops generating."""
        model = self.server.model
        events = [f"data: {json.dumps(c)}\n\n" for c in chunks] + ["data: [DONE]\n\n"]
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.flush()
            for n, event in enumerate(events):
                if n and delay and model._stopping.wait(delay):
                    break
                data = event.encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()
                model._update(entry, sent_chunks=min(n + 1, len(chunks)))
            else:
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
                return
        except OSError:  # BrokenPipe / ConnectionReset: the client closed the stream
            pass
        model._update(entry, disconnected=True)
        self.close_connection = True


def _chunks(head: dict[str, Any], content: str, usage: dict[str, Any] | None,
            chunk_chars: int | None = None) -> list[dict[str, Any]]:
    """The SSE chunks of one streamed answer: role, content by line (or by `chunk_chars`
    characters), stop, then usage if asked."""
    base = {**head, "object": "chat.completion.chunk"}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    out = [chunk({"role": "assistant", "content": ""})]
    if chunk_chars:
        pieces = [content[i : i + chunk_chars] for i in range(0, len(content), chunk_chars)]
    else:
        pieces = content.splitlines(keepends=True)
    out += [chunk({"content": piece}) for piece in pieces]
    out.append(chunk({}, "stop"))
    if usage is not None:
        out.append({**base, "choices": [], "usage": usage})
    return out


# ---------------------------------------------------------------- the Anthropic Messages API (agent CLIs)
#
# An agent CLI such as Claude Code speaks the Messages API with tool use and edits the files itself.
# Its prompt names the task's files as the engine runner's does (`Change only these files: a.py, b.py.`,
# `Apply this to lines 3-7 of a.py.`). The default answer reads the first (the selection's if there is one)
# with the agent's Read tool, makes the default answer's edit with its Edit tool (Write for an empty
# file), then ends the turn. A scripted `tool_use` ({"name", "input"} or a list of them; "{cwd}" in an
# input's strings is the agent's working directory) answers one request with those tool calls.

_AGENT_FILES = re.compile(r"^Change only these files: (.+?)\.?$", re.M)
_AGENT_LINES = re.compile(r"^Apply this to lines (\d+)-(\d+) of (.+?)\.?$", re.M)
_WORKDIR = re.compile(r"(?:Primary working directory|Working directory): (\S+)")
_NUMBERED = re.compile(r"^ *(\d+)(?:\t|→)(.*)$")  # a line of the Read tool's `cat -n` output


def _blocks(content: Any) -> list[dict[str, Any]]:
    """A Messages API content as a list of blocks (a plain string is one text block)."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []


def _block_text(block: dict[str, Any]) -> str:
    """The text of a text block or of a tool_result (whose content is a string or text blocks)."""
    if block.get("type") == "tool_result":
        return "".join(_block_text(b) for b in _blocks(block.get("content")))
    return str(block.get("text") or "") if block.get("type") == "text" else ""


def agent_task(text: str) -> tuple[list[str], tuple[str, int, int] | None, str]:
    """Files, selection (path, start, end) and instruction from an agent's prompt."""
    files = [p.strip() for m in _AGENT_FILES.finditer(text) for p in m.group(1).split(", ") if p.strip()]
    m = _AGENT_LINES.search(text)
    selection = (m.group(3).strip(), int(m.group(1)), int(m.group(2))) if m else None
    said = [line.strip() for line in text.split("\n")
            if line.strip() and not _AGENT_FILES.match(line) and not _AGENT_LINES.match(line)]
    return files, selection, said[0] if said else ""


def numbered_text(output: str) -> str | None:
    """The file a Read tool result shows (`cat -n` lines), or None when it shows no line (an empty file)."""
    lines = [m.group(2) for m in map(_NUMBERED.match, output.split("\n")) if m]
    return "".join(line + "\n" for line in lines) if lines else None


def agent_edit(path: str, text: str, selection: tuple[str, int, int] | None,
               instruction: str) -> tuple[str, str]:
    """(old_string, new_string) of the default answer's note for the Edit tool; old_string is widened
    (upwards, then downwards) until the file holds it once, as the Edit tool requires."""
    lines = text.split("\n")[:-1]
    if selection and selection[0] == path:
        start = min(max(selection[1], 1), len(lines))
        end = min(max(selection[2], start), len(lines))
    else:
        start, end = 1, min(3, len(lines))
    chosen = lines[start - 1 : end]
    indent = chosen[0][: len(chosen[0]) - len(chosen[0].lstrip())]
    comment = f"{indent}{_comment_prefix(path)} pas: {instruction or 'change requested'}"
    first, last = start, end
    while text.count("\n".join(lines[first - 1 : last])) > 1 and (first > 1 or last < len(lines)):
        if first > 1:
            first -= 1
        else:
            last += 1
    old = "\n".join(lines[first - 1 : last])
    return old, "\n".join([*lines[first - 1 : start - 1], comment, *lines[start - 1 : last]])


def _conversation(body: dict[str, Any]) -> tuple[str, str, dict[str, tuple[str, dict[str, Any]]], list[dict[str, Any]]]:
    """The task (the first user message's text, reminders left out), the working directory, the
    agent's tool calls so far by id, and the tool results of the last message."""
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    texts = [_block_text(b) for m in messages for b in _blocks(m.get("content"))]
    texts += [_block_text(b) for b in _blocks(body.get("system"))]
    cwd = next((m.group(1) for m in map(_WORKDIR.search, texts) if m), "")
    users = [m for m in messages if m.get("role") == "user"]
    task = "\n".join(t for b in _blocks(users[0].get("content")) if users
                     for t in [_block_text(b)] if not t.lstrip().startswith("<system-reminder>"))
    calls: dict[str, tuple[str, dict[str, Any]]] = {
        str(b.get("id")): (str(b.get("name")), b["input"] if isinstance(b.get("input"), dict) else {})
        for m in messages if m.get("role") == "assistant"
        for b in _blocks(m.get("content")) if b.get("type") == "tool_use"}
    last = _blocks(messages[-1].get("content")) if messages and messages[-1].get("role") == "user" else []
    return task, cwd, calls, [b for b in last if b.get("type") == "tool_result"]


def _tool_use(name: str, tool_input: dict[str, Any], ids: Any) -> dict[str, Any]:
    return {"type": "tool_use", "id": f"toolu_offline_{next(ids)}", "name": name, "input": tool_input}


def _with_cwd(value: Any, cwd: str) -> Any:
    if isinstance(value, str):
        return value.replace("{cwd}", cwd)
    if isinstance(value, dict):
        return {k: _with_cwd(v, cwd) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_cwd(v, cwd) for v in value]
    return value


def agent_answer(body: dict[str, Any], ids: Any) -> tuple[list[dict[str, Any]], str]:
    """The default answer's content blocks and stop reason at this point of an agent's conversation."""
    task, cwd, calls, results = _conversation(body)
    files, selection, instruction = agent_task(task)
    if not results:
        if not files:
            return [{"type": "text", "text": NO_EDITS}], "end_turn"
        path = selection[0] if selection and selection[0] in files else files[0]
        return [{"type": "text", "text": f"I will read {path} first."},
                _tool_use("Read", {"file_path": os.path.join(cwd, path) if cwd else path}, ids)], "tool_use"
    result = results[-1]
    name, args = calls.get(str(result.get("tool_use_id")), ("tool", {}))
    output = _block_text(result)
    if result.get("is_error"):
        first = output.strip().split("\n", 1)[0][:200]
        said = f"The {name} call failed ({first}), so I leave the code as it is."
        return [{"type": "text", "text": said}], "end_turn"
    if name != "Read":
        return [{"type": "text", "text": "I added a note above the lines in question."}], "end_turn"
    file_path = str(args.get("file_path") or "")
    path = os.path.relpath(file_path, cwd) if cwd and os.path.isabs(file_path) else file_path
    text = numbered_text(output)
    if text is None:
        note = f"{_comment_prefix(path)} pas: {instruction or 'change requested'}\n"
        call = _tool_use("Write", {"file_path": file_path, "content": note}, ids)
    else:
        old, new = agent_edit(path, text, selection, instruction)
        call = _tool_use("Edit", {"file_path": file_path, "old_string": old, "new_string": new}, ids)
    return [{"type": "text", "text": "I add a note above the lines in question."}, call], "tool_use"


def _anthropic_error(status: int, message: str) -> dict[str, Any]:
    kinds = {**_ERROR_TYPES, 529: "overloaded_error"}
    kind = kinds.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": message}}


def _message_events(message: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The SSE events of one streamed message: start, each block (text by line, tool input in two
    pieces of JSON), the stop reason with the output tokens, stop."""
    usage = message["usage"]
    start = {**message, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
    events: list[tuple[str, dict[str, Any]]] = [("message_start", {"type": "message_start", "message": start}),
                                                ("ping", {"type": "ping"})]
    for i, block in enumerate(message["content"]):
        if block["type"] == "tool_use":
            raw = json.dumps(block["input"])
            opening = {**block, "input": {}}
            deltas = [{"type": "input_json_delta", "partial_json": piece}
                      for piece in (raw[: len(raw) // 2], raw[len(raw) // 2 :])]
        else:
            opening = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": piece} for piece in block["text"].splitlines(keepends=True)]
        events.append(("content_block_start", {"type": "content_block_start", "index": i, "content_block": opening}))
        events += [("content_block_delta", {"type": "content_block_delta", "index": i, "delta": d}) for d in deltas]
        events.append(("content_block_stop", {"type": "content_block_stop", "index": i}))
    delta = {"stop_reason": message["stop_reason"], "stop_sequence": None}
    events.append(("message_delta", {"type": "message_delta", "delta": delta,
                                     "usage": {"output_tokens": usage["output_tokens"]}}))
    events.append(("message_stop", {"type": "message_stop"}))
    return events


def _count_tokens(handler: _Handler, body: Any) -> None:
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        handler._send_json(400, _anthropic_error(400, "'messages' must be a list"))
        return
    text = json.dumps({k: body.get(k) for k in ("system", "messages", "tools")})
    handler._send_json(200, {"input_tokens": len(text) // 4 + 1})


def _messages(handler: _Handler, body: Any) -> None:
    """Answer POST /v1/messages as the Anthropic API does, streamed (SSE) or not; logged like a chat."""
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        handler._send_json(400, _anthropic_error(400, "'messages' must be a list"))
        return
    model = handler.server.model
    _, cwd, _, results = _conversation(body)
    last = body["messages"][-1] if body["messages"] else {}
    last_user = "\n".join(_block_text(b) for b in _blocks(last.get("content") if isinstance(last, dict) else None))
    spec, default_latency = model._next_spec(last_user)
    entry: dict[str, Any] = {
        "api": "messages",
        "time": time.time(),
        "model": body.get("model"),
        "headers": {k.lower(): v for k, v in handler.headers.items()},
        "messages": body["messages"],
        "system": body.get("system"),
        "tools": [t.get("name") for t in body.get("tools") or [] if isinstance(t, dict)],
        "response": {},
        "usage": {},
    }
    fault = spec.get("fault")
    if fault == "hang":  # logged before it hangs, so a test sees the agent waiting on it
        entry["response"] = {"fault": fault}
        model._log(entry)
    model._stopping.wait(float(spec.get("latency", 3600 if fault == "hang" else default_latency)))
    if fault in ("hang", "reset", "garbage"):
        if fault != "hang":
            entry["response"] = {"fault": fault}
            model._log(entry)
        handler.close_connection = True
        if fault == "reset":
            handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            handler.rfile.close()
            handler.connection.close()
        elif fault == "garbage":
            data = b"<html>502 upstream garbage, not JSON"
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
        return
    if "status" in spec:
        status = int(spec["status"])
        err = _anthropic_error(status, str(spec.get("content") or f"offline model answered {status}"))
        headers = {"Retry-After": str(spec["retry_after"])} if "retry_after" in spec else {}
        entry["response"] = {"status": status, **err}
        model._log(entry)
        handler._send_json(status, err, headers)
        return

    blocks: list[dict[str, Any]]
    if fault == "no_edits" or isinstance(spec.get("content"), str):
        blocks, stop = [{"type": "text", "text": NO_EDITS if fault == "no_edits" else spec["content"]}], "end_turn"
    elif spec.get("tool_use"):
        calls = spec["tool_use"] if isinstance(spec["tool_use"], list) else [spec["tool_use"]]
        blocks = [_tool_use(str(c.get("name")), _with_cwd(c.get("input") or {}, cwd), model._ids)
                  for c in calls if isinstance(c, dict)]
        stop = "tool_use"
    else:
        blocks, stop = agent_answer(body, model._ids)
    prompt_text = json.dumps({k: body.get(k) for k in ("system", "messages", "tools")})
    prompt_tokens = int(spec.get("prompt_tokens", len(prompt_text) // 4 + 1))
    cached = min(model._cached_tokens(prompt_text, spec) or 0, prompt_tokens)
    usage = {
        "input_tokens": prompt_tokens - cached,  # Anthropic counts cached prompt tokens apart
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
        "output_tokens": int(spec.get("completion_tokens", len(json.dumps(blocks)) // 4 + 1)),
    }
    message = {"id": f"msg_offline_{next(model._ids)}", "type": "message", "role": "assistant",
               "model": str(body.get("model") or MODEL_ID), "content": blocks, "stop_reason": stop,
               "stop_sequence": None, "usage": usage}
    entry["usage"] = usage
    entry["response"] = message
    entry["tool_results"] = len(results)
    if not body.get("stream"):
        model._log(entry)
        handler._send_json(200, message)
        return
    events = _message_events(message)
    entry.update(stream=True, sent_chunks=0, disconnected=False)
    model._log(entry)
    _send_events(handler, [f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events],
                 entry, float(spec.get("chunk_latency", model._chunk_latency)))


def _send_events(handler: _Handler, events: list[str], entry: dict[str, Any], delay: float) -> None:
    """Send SSE events `delay` seconds apart; a client that hangs up is recorded in `entry`."""
    model = handler.server.model
    try:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Cache-Control", "no-cache")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        for n, event in enumerate(events):
            if n and delay and model._stopping.wait(delay):
                break
            data = event.encode()
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            handler.wfile.flush()
            model._update(entry, sent_chunks=n + 1)
        else:
            handler.wfile.write(b"0\r\n\r\n")
            handler.wfile.flush()
            return
    except OSError:  # the client closed the stream
        pass
    model._update(entry, disconnected=True)
    handler.close_connection = True



# ---------------------------------------------------------------- the server object


def _asks(spec: dict[str, Any], answered: set[str] | None) -> dict[str, Any] | None:
    """The READ answer a spec with `read` gives while some of its files are unanswered, else None."""
    wanted = spec.get("read") or []
    if answered is None or not isinstance(wanted, list):
        return None
    missing = [str(x) for x in wanted if str(x).removeprefix("./") not in answered]
    if not missing:
        return None
    out: dict[str, Any] = {"content": "I need to see more before I edit.\n" + "".join(f"READ {x}\n" for x in missing)}
    if "latency" in spec:
        out["latency"] = spec["latency"]
    return out



class OfflineModel:
    """The server and its script, rules and request log; start() serves it on a thread."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        seed_rules: list[dict[str, Any]] | None = None,
        *,
        chunk_latency: float = 0.0,
        prompt_cache: bool = False,
    ) -> None:
        self._address = (host, port)
        self._initial_latency = latency
        self._latency = latency
        self._seed_rules = list(seed_rules or [])
        self._rules = list(self._seed_rules)
        self._script: deque[dict[str, Any]] = deque()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._initial_chunk_latency = chunk_latency
        self._chunk_latency = chunk_latency
        self.prompt_cache = prompt_cache  # report the prefix shared with an earlier prompt as cached
        self._prompts: deque[str] = deque(maxlen=32)
        self._stopping = threading.Event()
        self._ids = itertools.count(1)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.requests: list[dict[str, Any]] = []
        self.url = ""

    def start(self) -> OfflineModel:
        """Bind and serve in a background thread; `url` is valid once this returns."""
        server = _Server(self._address, _Handler)
        server.model = self
        host, port = server.server_address[:2]
        self._server = server
        self.url = f"http://{host!s}:{port}/v1"
        self._stopping.clear()
        self._thread = threading.Thread(target=server.serve_forever, name="offline-model", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; hung and sleeping requests are released."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> OfflineModel:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def script(self, responses: list[dict[str, Any]]) -> None:
        """Queue responses; each chat request takes the oldest one."""
        with self._lock:
            self._script.extend(dict(r) for r in responses)

    def set_rules(self, rules: list[dict[str, Any]]) -> None:
        """Replace the rules answering when the script is empty; each has a `match` regex."""
        for rule in rules:
            re.compile(str(rule.get("match", "")))  # a bad regex fails here, not mid-request
        with self._lock:
            self._rules = [dict(r) for r in rules]

    def set_latency(self, seconds: float, chunk_seconds: float | None = None) -> None:
        """The delay before answering (and, if given, between streamed chunks), for responses that set none."""
        with self._lock:
            self._latency = seconds
            if chunk_seconds is not None:
                self._chunk_latency = chunk_seconds

    def reset(self) -> None:
        """Back to the constructor's state: empty script and log, seed rules, initial latency."""
        with self._lock:
            self._script.clear()
            self._rules = list(self._seed_rules)
            self._latency = self._initial_latency
            self._chunk_latency = self._initial_chunk_latency
            self._prompts.clear()
            self.requests.clear()

    def _next_spec(self, last_user: str, answered: set[str] | None = None) -> tuple[dict[str, Any], float]:
        """The response spec for this request; one with `read` asks for those files (staying at the
        head of the script) until pasd has answered each request, then answers as scripted."""
        with self._lock:
            if self._script:
                spec = self._script[0]
                if not _asks(spec, answered):
                    self._script.popleft()
                return _asks(spec, answered) or spec, self._latency
            for rule in self._rules:
                if re.search(str(rule.get("match", "")), last_user):
                    spec = {k: v for k, v in rule.items() if k != "match"}
                    return _asks(spec, answered) or spec, self._latency
            return {}, self._latency

    def wait_until(self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 30.0) -> bool:
        """Block until `predicate(requests)` holds (checked at each logged request or stream step)."""
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self.requests), timeout)

    def _cached_tokens(self, prompt: str, spec: dict[str, Any]) -> int | None:
        """Cached prompt tokens to report: the script's `cached_tokens`, else with `prompt_cache` the
        longest prefix this prompt shares with an earlier one (4 characters a token); None: none."""
        if "cached_tokens" in spec:
            return int(spec["cached_tokens"])
        if not self.prompt_cache:
            return None
        with self._lock:
            seen = list(self._prompts)
            self._prompts.append(prompt)
        # characters, not path components, are what a prompt cache shares
        shared = max((len(os.path.commonprefix([prompt, old])) for old in seen), default=0)  # noqa: RUF071
        return shared // 4

    def _log(self, entry: dict[str, Any]) -> None:
        with self._changed:
            self.requests.append(entry)
            self._changed.notify_all()

    def _update(self, entry: dict[str, Any], **changes: Any) -> None:
        with self._changed:
            entry.update(changes)
            self._changed.notify_all()


USAGE = """Serves {model} on {url}: try the editors or CI of your own project with no key.
  pasd submit "add a docstring" -f app.py --model {model} --api-base {url}
or in ~/.config/pasd/config.toml:
  [models]
  default = "{model}"
  [models.settings."{model}"]
  api_base = "{url}"
Without a script it answers every task with a comment above the selection (or the file's first
line). Control (JSON over HTTP): POST /control/script [responses], /control/rules [{{"match": regex,
...}}], /control/latency {{"seconds": S}}, /control/reset; GET /control/requests lists what it was asked.
Ctrl-C stops it."""


def main(argv: list[str] | None = None, prog: str = "python -m daemon.offline_model") -> int:
    """Serve until SIGINT/SIGTERM: `pasd offline-model --port 8765 --latency 0.2`."""
    parser = argparse.ArgumentParser(
        prog=prog, description="An OpenAI-compatible model server on loopback with scripted answers, "
                               "for trying pasd, its editors and CI without an API key.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--chunk-latency", type=float, default=0.0, help="seconds between streamed chunks")
    parser.add_argument("--prompt-cache", action="store_true",
                        help="report the prompt prefix shared with an earlier request as cached tokens")
    parser.add_argument("--script", type=Path, help="JSON list of responses to queue")
    args = parser.parse_args(argv)
    server = OfflineModel(args.host, args.port, args.latency, chunk_latency=args.chunk_latency,
                          prompt_cache=args.prompt_cache)
    if args.script is not None:
        try:
            responses = json.loads(args.script.read_text())
        except (OSError, ValueError) as exc:
            print(f"cannot read script {args.script}: {exc}", file=sys.stderr)
            return 2
        if not isinstance(responses, list):
            print(f"{args.script}: expected a JSON list of responses", file=sys.stderr)
            return 2
        server.script(responses)
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    with server:
        print(server.url, flush=True)  # the first line of stdout: scripts read the URL from it
        print(USAGE.format(model="openai/" + MODEL_ID, url=server.url), file=sys.stderr, flush=True)
        done.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
