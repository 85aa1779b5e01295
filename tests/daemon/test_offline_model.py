"""The offline model server, driven through the real litellm HTTP path."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # before the import: never fetch the price table
import litellm

from daemon.offline_model import NO_EDITS, OfflineModel, default_answer
from daemon.programmer.edits import apply_edit, parse_edits

ROOT = Path(__file__).resolve().parents[2]
APP = "import os\n\n\ndef main():\n    x = 1\n    return x\n"


@pytest.fixture
def srv() -> Iterator[OfflineModel]:
    with OfflineModel() as server:
        yield server


def prompt(files: dict[str, str], instruction: str, selection: str | None = None) -> str:
    parts = ["You are a careful programmer. Answer with SEARCH/REPLACE blocks.\n"]
    for path, content in files.items():
        parts.append(f"### FILE: {path}\n```\n{content}```\n")
    if selection:
        parts.append(f"### SELECTION: {selection}\n")
    parts.append(f"### INSTRUCTION\n{instruction}\n")
    return "\n".join(parts)


async def ask(srv: OfflineModel, text: str = "hi", **kwargs: Any) -> Any:
    return await litellm.acompletion(
        model="openai/pasd-offline",
        api_base=srv.url,
        api_key="offline",
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": text}],
        **kwargs,
    )


def control(srv: OfflineModel, path: str, body: Any = None) -> Any:
    url = srv.url.removesuffix("/v1") + path
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=5) as reply:
        return json.loads(reply.read())


# ---------------------------------------------------------------- answers through litellm


async def test_content_and_usage_match_the_log(srv: OfflineModel) -> None:
    spec = {"content": "hello there", "prompt_tokens": 11, "completion_tokens": 5, "reasoning_tokens": 3}
    srv.script([spec])
    r = await ask(srv)
    (entry,) = srv.requests
    sent = entry["response"]["choices"][0]["message"]["content"]
    assert r.choices[0].message.content == "hello there" == sent
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens) == (11, 5, 16)
    assert r.usage.completion_tokens_details.reasoning_tokens == 3
    assert entry["usage"]["total_tokens"] == 16
    assert entry["model"] == "pasd-offline"
    assert entry["messages"][-1] == {"role": "user", "content": "hi"}


async def test_default_usage_is_estimated_from_text(srv: OfflineModel) -> None:
    srv.script([{"content": "x" * 40}])
    r = await ask(srv, "y" * 100)
    assert r.usage.prompt_tokens == len("be brief" + "y" * 100) // 4 + 1
    assert r.usage.completion_tokens == 11
    assert srv.requests[0]["usage"]["prompt_tokens"] == r.usage.prompt_tokens


async def test_streaming_with_usage(srv: OfflineModel) -> None:
    srv.script([{"content": "line one\nline two\n", "completion_tokens": 7}])
    stream = await ask(srv, stream=True, stream_options={"include_usage": True})
    text, usage = "", None
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
        usage = getattr(chunk, "usage", None) or usage
    assert text == "line one\nline two\n"
    assert usage is not None and usage.completion_tokens == 7
    assert srv.requests[0]["usage"]["completion_tokens"] == 7


async def test_streaming_by_characters_with_latency_between_chunks(srv: OfflineModel) -> None:
    srv.set_latency(0.0, chunk_seconds=0.01)
    srv.script([{"content": "abcdefghij", "chunk_chars": 3}])
    stream = await ask(srv, stream=True)
    pieces = [c.choices[0].delta.content async for c in stream if c.choices and c.choices[0].delta.content]
    assert pieces == ["abc", "def", "ghi", "j"]
    entry = srv.requests[0]
    assert "usage" not in entry["response"]["chunks"][-1]  # not asked for
    assert srv.wait_until(lambda rs: rs[0]["sent_chunks"] == len(entry["response"]["chunks"]), 5)
    assert entry["disconnected"] is False


async def test_a_client_hanging_up_mid_stream_is_recorded(srv: OfflineModel) -> None:
    srv.script([{"content": "".join(f"line {i}\n" for i in range(500)), "chunk_latency": 0.02}])
    stream = await ask(srv, stream=True)
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            break
    await stream.aclose()
    assert await asyncio.to_thread(srv.wait_until, lambda rs: rs[0]["disconnected"], 10)
    assert 0 < srv.requests[0]["sent_chunks"] < 500


async def test_prompt_cache_reports_the_prefix_seen_before(srv: OfflineModel) -> None:
    srv.prompt_cache = True
    await ask(srv, "x" * 400)
    await ask(srv, "x" * 400 + "y" * 100)  # the first prompt, and more
    r = await ask(srv, "z")
    first, second, third = (e["usage"]["prompt_tokens_details"]["cached_tokens"] for e in srv.requests)
    assert first == 0 and second == len("be brief" + "x" * 400) // 4
    assert third == len("be brief") // 4  # only the system text is shared
    assert r.usage.prompt_tokens_details.cached_tokens == third
    srv.script([{"cached_tokens": 7, "prompt_tokens": 50}])  # or a script says how many
    assert (await ask(srv)).usage.prompt_tokens_details.cached_tokens == 7


async def test_default_answer_is_an_edit_that_applies(srv: OfflineModel) -> None:
    text = prompt({"src/app.py": APP}, "Explain why x is one\nand more detail", "src/app.py:5-6")
    r = await ask(srv, text)
    (edit,) = parse_edits(r.choices[0].message.content)
    assert edit.path == "src/app.py"
    assert apply_edit(APP, edit) == APP.replace("    x = 1", "    # pas: Explain why x is one\n    x = 1")


@pytest.mark.parametrize(
    ("files", "selection", "expected"),
    [
        ({"a.js": "let a = 1;\nlet b = 2;\n"}, None, {"a.js": "// pas: do it\nlet a = 1;\nlet b = 2;\n"}),
        ({"q.sql": "select 1;\n"}, None, {"q.sql": "-- pas: do it\nselect 1;\n"}),
        ({"Makefile": "all:\n\ttrue\n"}, "Makefile:2-2", {"Makefile": "all:\n\t# pas: do it\n\ttrue\n"}),
        ({"empty.py": ""}, None, {"empty.py": "# pas: do it\n"}),
        # The selected line also appears earlier: the edit must still land at the selection.
        ({"r.py": "pass\nx\npass\n"}, "r.py:3-3", {"r.py": "pass\nx\n# pas: do it\npass\n"}),
        ({"a.py": "a\n", "b.go": "package b\n"}, "b.go:1-1", {"b.go": "// pas: do it\npackage b\n"}),
    ],
)
def test_default_answer_variants(
    files: dict[str, str], selection: str | None, expected: dict[str, str]
) -> None:
    edits = parse_edits(default_answer(prompt(files, "do it", selection)))
    (path,) = expected
    assert [e.path for e in edits] == [path]
    assert apply_edit(files[path], edits[0]) == expected[path]


async def test_no_edits_fault_answers_prose(srv: OfflineModel) -> None:
    srv.script([{"fault": "no_edits"}])
    r = await ask(srv, prompt({"a.py": "x\n"}, "do it"))
    assert r.choices[0].message.content == NO_EDITS
    assert parse_edits(NO_EDITS) == []


# ---------------------------------------------------------------- script, rules, faults


async def test_script_is_fifo_then_default(srv: OfflineModel) -> None:
    srv.script([{"content": "one"}, {"content": "two"}])
    srv.script([{"content": "three"}])
    answers = [(await ask(srv)).choices[0].message.content for _ in range(4)]
    assert answers == ["one", "two", "three", NO_EDITS]  # "hi" holds no files to edit


async def test_rules_answer_when_script_is_empty(srv: OfflineModel) -> None:
    srv.set_rules([{"match": r"rename \w+", "content": "renamed"}, {"match": ".", "content": "any"}])
    srv.script([{"content": "scripted"}])
    answers = [(await ask(srv, "please rename foo")).choices[0].message.content for _ in range(2)]
    assert answers == ["scripted", "renamed"]
    assert (await ask(srv, "other")).choices[0].message.content == "any"


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ({"status": 429, "retry_after": 7}, "RateLimitError"),
        ({"status": 500}, "InternalServerError"),
        ({"status": 401}, "AuthenticationError"),
        ({"fault": "garbage"}, "InternalServerError"),
        ({"fault": "reset"}, "InternalServerError"),
    ],
)
async def test_faults_raise_litellm_errors(srv: OfflineModel, spec: dict[str, Any], error: str) -> None:
    srv.script([spec])
    with pytest.raises(Exception) as info:
        await ask(srv, max_retries=0)
    assert type(info.value).__name__ == error
    assert type(info.value).__module__ == "litellm.exceptions"
    assert len(srv.requests) == 1
    if "retry_after" in spec:
        assert info.value.litellm_response_headers["retry-after"] == "7"  # type: ignore[attr-defined]


async def test_hang_times_out(srv: OfflineModel) -> None:
    srv.script([{"fault": "hang"}])
    with pytest.raises(litellm.Timeout):
        await ask(srv, max_retries=0, timeout=0.5)


async def test_client_retries_honour_retry_after(srv: OfflineModel) -> None:
    # Without max_retries=0 the OpenAI client behind litellm retries twice, waiting Retry-After.
    srv.script([{"status": 429, "retry_after": 1}, {"status": 503, "retry_after": 1}, {"content": "ok"}])
    started = time.monotonic()
    r = await ask(srv)
    assert r.choices[0].message.content == "ok"
    assert len(srv.requests) == 3
    assert time.monotonic() - started >= 2.0


async def test_latency_delays_the_answer(srv: OfflineModel) -> None:
    srv.set_latency(0.3)
    srv.script([{"content": "slow"}, {"content": "fast", "latency": 0}])
    started = time.monotonic()
    await ask(srv)
    middle = time.monotonic()
    await ask(srv)
    assert middle - started >= 0.3
    assert time.monotonic() - middle < 0.3


# ---------------------------------------------------------------- control endpoints and main()


def test_control_endpoints(srv: OfflineModel) -> None:
    assert control(srv, "/v1/models")["data"][0]["id"] == "pasd-offline"
    assert control(srv, "/control/script", [{"content": "a"}]) == {"ok": True}
    assert control(srv, "/control/rules", [{"match": "x", "content": "b"}]) == {"ok": True}
    assert control(srv, "/control/latency", {"seconds": 0.01}) == {"ok": True}
    chat = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    reply = control(srv, "/v1/chat/completions", chat)
    assert reply["choices"][0]["message"]["content"] == "a"
    assert [e["response"]["id"] for e in control(srv, "/control/requests")] == [reply["id"]]
    assert control(srv, "/control/reset", {}) == {"ok": True}
    assert control(srv, "/control/requests") == [] == srv.requests


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", b"{not json"),
        ("/v1/chat/completions", b'{"model": "m"}'),
        ("/control/script", b'{"content": "not a list"}'),
        ("/control/latency", b'{"seconds": -1}'),
        ("/control/latency", b'{"seconds": 0, "chunk_seconds": "slow"}'),
    ],
)
def test_bad_requests_get_openai_errors(srv: OfflineModel, path: str, body: bytes) -> None:
    with pytest.raises(urllib.error.HTTPError) as info:
        control(srv, path, body)
    assert info.value.code == 400
    assert json.loads(info.value.read())["error"]["type"] == "invalid_request_error"


def test_main_serves_until_sigterm(tmp_path: Path) -> None:
    script = tmp_path / "script.json"
    script.write_text(json.dumps([{"content": "from file"}]))
    proc = subprocess.Popen(
        [sys.executable, "-m", "daemon.offline_model", "--port", "0", "--script", str(script)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]}).encode()
        request = urllib.request.Request(url + "/chat/completions", data=body)
        with urllib.request.urlopen(request, timeout=5) as reply:
            assert json.loads(reply.read())["choices"][0]["message"]["content"] == "from file"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# ---------------------------------------------------------------- repair rounds and file requests


def test_default_answer_edits_the_files_as_a_repair_round_shows_them() -> None:
    now = "import os\n\n\ndef main():\n    x = 2\n    return x\n"
    repair = (f"Some of your edits could not be applied:\n- a.py: SEARCH block not found\n\n"
              f"### FILE: a.py (as it is now)\n```\n{now}```\n\n### FILE: b.py (read-only)\n```\nb = 1\n```\n\n"
              "Answer with SEARCH/REPLACE blocks against the task's files as they are now.")
    text = default_answer(prompt({"a.py": APP}, "note it"), [repair])
    (edit,) = parse_edits(text)
    assert edit.path == "a.py"
    assert apply_edit(now, edit) == "# pas: note it\n" + now


async def test_a_scripted_repair_goes_through_the_daemon(daemon: Any, offline: OfflineModel, repo: Path) -> None:
    from daemon import protocol as p

    wrong = "app.py\n```\n<<<<<<< SEARCH\nnot in the file\n=======\nx\n>>>>>>> REPLACE\n```\n"
    offline.script([{"content": wrong}])  # then the default answer, which must read the repair round right
    async with daemon.client() as c:
        task = await c.submit(p.SubmitParams(workspace=str(repo), instruction="explain add", files=["app.py"]))
        task = await c.wait(task.id)
        assert task.state is p.TaskState.REVIEW, task.error
        (receipt,) = await c.receipts(p.ReceiptsParams(task_id=task.id))
        assert receipt.rounds == {"first": 1, "repair": 1} and receipt.refused == []
        contents = await c.contents(task.id)
    _, second = offline.requests
    asked = second["messages"][-1]["content"]
    assert asked.startswith("Some of your edits could not be applied:\n- app.py: SEARCH block not found")
    assert "### FILE: app.py (as it is now)" in asked
    answer = second["response"]["choices"][0]["message"]["content"]
    assert "\napp.py\n```\n<<<<<<< SEARCH\n" in answer and "(as it is now)" not in answer
    (f,) = contents.files
    assert f.proposed == "# pas: explain add\n" + f.base


# ---------------------------------------------------------------- the Anthropic Messages API


async def anthropic(srv: OfflineModel, messages: list[dict[str, Any]], **kwargs: Any) -> Any:
    read = {"type": "function", "function": {"name": "Read", "parameters": {
        "type": "object", "properties": {"file_path": {"type": "string"}}}}}
    return await litellm.acompletion(model="anthropic/claude-sonnet-4-5", api_base=srv.url.removesuffix("/v1"),
                                     api_key="offline", messages=messages, tools=[read], **kwargs)


async def test_messages_api_reads_then_edits_then_ends_the_turn(srv: OfflineModel) -> None:
    """An agent's loop through litellm's Anthropic path: Read the task's file, Edit it, end the turn."""
    task = {"role": "user",
            "content": "add a note\n\nApply this to lines 5-5 of app.py.\n\nChange only these files: app.py."}
    first = await anthropic(srv, [task], stream=True, stream_options={"include_usage": True})
    calls: dict[int, dict[str, str]] = {}
    usage = None
    async for chunk in first:
        usage = getattr(chunk, "usage", None) or usage
        for call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            seen = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
            seen["id"] = call.id or seen["id"]
            seen["name"] = call.function.name or seen["name"]
            seen["arguments"] += call.function.arguments or ""
    assert [(c["name"], json.loads(c["arguments"])) for c in calls.values()] == [("Read", {"file_path": "app.py"})]
    assert usage is not None and usage.completion_tokens == srv.requests[0]["usage"]["output_tokens"]
    assert srv.requests[0]["api"] == "messages" and srv.requests[0]["response"]["stop_reason"] == "tool_use"

    read = next(iter(calls.values()))
    asked = {"role": "assistant", "content": None, "tool_calls": [
        {"id": read["id"], "type": "function", "function": {"name": "Read", "arguments": read["arguments"]}}]}
    shown = "".join(f"{n:6}\t{line}\n" for n, line in enumerate(APP.split("\n")[:-1], 1))
    second = await anthropic(srv, [task, asked, {"role": "tool", "tool_call_id": read["id"], "content": shown}])
    edit = second.choices[0].message.tool_calls[0]
    args = json.loads(edit.function.arguments)
    assert edit.function.name == "Edit" and APP.count(args["old_string"]) == 1
    assert APP.replace(args["old_string"], args["new_string"]) == APP.replace(
        "    x = 1\n", "    # pas: add a note\n    x = 1\n")

    done = await anthropic(srv, [task, asked, {"role": "tool", "tool_call_id": read["id"], "content": shown},
                                 second.choices[0].message.model_dump(),
                                 {"role": "tool", "tool_call_id": edit.id, "content": "updated"}])
    assert done.choices[0].finish_reason == "stop" and not done.choices[0].message.tool_calls
    assert [e["response"]["stop_reason"] for e in srv.requests] == ["tool_use", "tool_use", "end_turn"]


async def test_messages_api_scripted_tool_calls_and_errors(srv: OfflineModel) -> None:
    srv.script([{"tool_use": {"name": "Write", "input": {"file_path": "{cwd}/b.py", "content": "x\n"}}},
                {"status": 429, "content": "slow down"}])
    task = {"role": "user", "content": "Primary working directory: /w\nadd a note\nChange only these files: a.py."}
    first = await anthropic(srv, [task])
    call = first.choices[0].message.tool_calls[0]
    assert call.function.name == "Write"
    assert json.loads(call.function.arguments) == {"file_path": "/w/b.py", "content": "x\n"}
    with pytest.raises(litellm.RateLimitError, match="slow down"):
        await anthropic(srv, [task], num_retries=0)
    assert srv.requests[-1]["response"]["error"]["type"] == "rate_limit_error"


def test_messages_api_counts_tokens_and_refuses_bad_bodies(srv: OfflineModel) -> None:
    base = srv.url.removesuffix("/v1")
    body = {"model": "m", "messages": [{"role": "user", "content": "x" * 400}]}
    counted = control(srv, "/v1/messages/count_tokens", body)
    assert counted["input_tokens"] > 100
    for path in ("/v1/messages", "/v1/messages/count_tokens?beta=true"):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(urllib.request.Request(base + path, data=b'{"messages": "no"}'), timeout=5)
        assert err.value.code == 400
        assert json.loads(err.value.read())["error"] == {"type": "invalid_request_error",
                                                         "message": "'messages' must be a list"}
    assert srv.requests == []  # neither is an answer of the model
