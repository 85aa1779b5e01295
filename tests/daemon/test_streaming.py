"""Streamed replies: live token and edit-block counts as progress, exact usage from the final
chunk, a cancel that closes the provider's HTTP stream, and cached prompt tokens priced apart."""

from __future__ import annotations

import asyncio
import os
import pty
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from daemon import protocol as p
from daemon.client import EventStream
from daemon.config import OFFLINE_MODEL
from daemon.offline_model import OfflineModel
from daemon.programmer import llm
from daemon.programmer.prompt import stable_end
from daemon.testing import DaemonFactory, DaemonProcess, block, until_state

IN_COST, OUT_COST, CACHED_COST = 1e-6, 2e-6, 1e-7
PROSE = "".join(f"Here is why step {i} matters for the change.\n" for i in range(10))
EDITS = [
    block("app.py", "def add(a, b):\n", "def add(a: int, b: int) -> int:\n"),
    block("app.py", "def sub(a, b):\n", "def sub(a: int, b: int) -> int:\n"),
    block("util.py", "def mul(a, b):\n", "def mul(a: int, b: int) -> int:\n"),
]
ANSWER = "".join(PROSE + e for e in EDITS)  # ~50 lines, a block closing every ~16


def submit(repo: Path, instruction: str = "type the functions") -> p.SubmitParams:
    return p.SubmitParams(workspace=str(repo), instruction=instruction, files=["app.py", "util.py"])


async def progress_until_done(events: EventStream, task_id: str) -> list[p.ProgressEvent]:
    """The task's progress events that carry counts, read until the task has ended."""
    seen: list[p.ProgressEvent] = []
    async for env in events:
        ev = env.event
        if isinstance(ev, p.ProgressEvent) and ev.task_id == task_id and ev.tokens is not None:
            seen.append(ev)
        if isinstance(ev, p.TaskEvent) and ev.task.id == task_id and not ev.task.state.active:
            return seen
    raise AssertionError("the event stream ended")


async def test_progress_carries_growing_token_and_block_counts(daemon: DaemonProcess, offline: OfflineModel,
                                                               repo: Path) -> None:
    offline.script([{"content": ANSWER, "completion_tokens": 321, "chunk_latency": 0.04}])
    async with daemon.client() as c, EventStream(daemon.socket, kinds=["task", "progress"]) as events:
        task = await c.submit(submit(repo))
        counted = await progress_until_done(events, task.id)
        assert (await c.get(task.id)).state is p.TaskState.REVIEW
    *live, last = counted
    assert len(live) >= 2, counted  # reported while the reply was still arriving
    tokens = [ev.tokens or 0 for ev in live]
    blocks = [ev.edit_blocks or 0 for ev in live]
    assert tokens == sorted(tokens) and tokens[0] < tokens[-1] <= (len(ANSWER) + 3) // 4
    assert blocks == sorted(blocks) and blocks[0] < 3
    assert all(ev.phase == "model" and ev.programmer and "tokens" in ev.message for ev in counted)
    # when the reply ends: the provider's own count, and every block
    assert (last.tokens, last.edit_blocks) == (321, 3)
    assert last.message == "received 321 tokens, 3 edit blocks"


async def test_the_receipt_keeps_the_final_chunks_usage(daemon: DaemonProcess, offline: OfflineModel,
                                                        repo: Path) -> None:
    offline.script([{"content": EDITS[0], "prompt_tokens": 1234, "completion_tokens": 56, "reasoning_tokens": 7}])
    async with daemon.client() as c:
        task = await c.submit(submit(repo))
        assert (await c.wait(task.id)).state is p.TaskState.REVIEW
        (receipt,) = await c.receipts(p.ReceiptsParams(task_id=task.id))
    sent = offline.requests[0]
    assert sent["response"]["stream"] is True and sent["response"]["chunks"][-1]["usage"] == sent["usage"]
    assert receipt.tokens == p.TokenUsage(input=1234, output=56, reasoning=7)
    assert receipt.cost_usd == round(1234 * IN_COST + 56 * OUT_COST, 6) and receipt.priced


async def test_a_stream_without_usage_is_counted_and_says_so(daemon: DaemonProcess, offline: OfflineModel,
                                                             repo: Path) -> None:
    offline.script([{"content": EDITS[0], "prompt_tokens": 1234, "completion_tokens": 56, "stream_usage": False}])
    async with daemon.client() as c:
        task = await c.submit(submit(repo))
        assert (await c.wait(task.id)).state is p.TaskState.REVIEW
        (receipt,) = await c.receipts(p.ReceiptsParams(task_id=task.id))
    assert "usage" not in offline.requests[0]["response"]["chunks"][-1]
    t = receipt.tokens
    assert t.estimated and t.input > 0 and t.output > 0
    assert (t.input, t.output) != (1234, 56)  # counted here, not the figures the provider kept to itself
    assert receipt.cost_usd == round(t.input * IN_COST + t.output * OUT_COST, 6)


async def test_cancel_mid_stream_closes_the_http_stream(daemon: DaemonProcess, offline: OfflineModel,
                                                        repo: Path) -> None:
    long_answer = "".join(f"thinking about line {i}\n" for i in range(2000)) + EDITS[0]
    offline.script([{"content": long_answer, "chunk_latency": 0.05}])  # ~100 s if left to finish
    async with daemon.client() as c, EventStream(daemon.socket, kinds=["task", "progress"]) as events:
        task = await c.submit(submit(repo))
        async for env in events:
            ev = env.event
            if isinstance(ev, p.ProgressEvent) and ev.task_id == task.id and (ev.tokens or 0) > 0:
                break
        await c.cancel(task.id)
        await until_state(events, task.id, p.TaskState.CANCELLED)

    def hung_up(requests: list[dict[str, Any]]) -> bool:
        return bool(requests and requests[0].get("disconnected"))

    # the offline model sees the connection close within a chunk or two, not at the end of the answer
    assert await asyncio.to_thread(offline.wait_until, hung_up, 20.0), offline.requests[0].get("sent_chunks")
    entry = offline.requests[0]
    assert 0 < entry["sent_chunks"] < len(entry["response"]["chunks"])


async def test_cached_prompt_tokens_are_recorded_and_priced(make_daemon: DaemonFactory, offline: OfflineModel,
                                                            repo: Path) -> None:
    d = make_daemon(**{f'models.settings."{OFFLINE_MODEL}"': {"cached_input_cost_per_token": CACHED_COST}})
    offline.prompt_cache = True
    # the first answer misses, so a repair round re-sends the same prefix and more
    offline.script([{"content": block("app.py", "no such line\n", "x\n")}, {"content": EDITS[0]}])
    async with d.client() as c:
        task = await c.submit(submit(repo))
        assert (await c.wait(task.id)).state is p.TaskState.REVIEW
        (receipt,) = await c.receipts(p.ReceiptsParams(task_id=task.id))
    first, repair = (r["usage"] for r in offline.requests)
    assert first["prompt_tokens_details"]["cached_tokens"] == 0
    cached = repair["prompt_tokens_details"]["cached_tokens"]
    assert cached > 0 and cached >= first["prompt_tokens"] - 2  # the whole first prompt, read from the cache
    t = receipt.tokens
    assert t.cached_input == cached and t.input == first["prompt_tokens"] + repair["prompt_tokens"]
    out = first["completion_tokens"] + repair["completion_tokens"]
    assert t.output == out and receipt.llm_calls == 2
    expected = (t.input - cached) * IN_COST + cached * CACHED_COST + out * OUT_COST
    assert receipt.cost_usd == pytest.approx(expected, abs=1e-6)  # the receipt rounds to 6 decimals
    assert receipt.cost_usd < round(t.input * IN_COST + out * OUT_COST, 6)
    shown = subprocess.run([sys.executable, "-m", "daemon", "receipts", "--task", task.id], env=d.env,
                           capture_output=True, text=True, timeout=60)
    assert f"{t.input} ({cached} cached)" in shown.stdout, shown.stdout + shown.stderr


async def test_litellm_prices_cached_tokens_from_its_table(make_daemon: DaemonFactory, offline: OfflineModel,
                                                           repo: Path) -> None:
    import litellm

    model = "openai/gpt-4o-mini"  # in litellm's price table, with a cached-input price; served offline here
    d = make_daemon(**{f'models.settings."{model}"': {"api_base": offline.url},
                       "models": {"choices": [OFFLINE_MODEL, model]}})
    offline.script([{"content": EDITS[0], "prompt_tokens": 4000, "completion_tokens": 100, "cached_tokens": 3000}])
    async with d.client() as c:
        params = submit(repo).model_copy(update={"model": model})
        task = await c.submit(params)
        assert (await c.wait(task.id)).state is p.TaskState.REVIEW
        (receipt,) = await c.receipts(p.ReceiptsParams(task_id=task.id))
    price = litellm.model_cost["gpt-4o-mini"]
    expected = (1000 * price["input_cost_per_token"] + 3000 * price["cache_read_input_token_cost"]
                + 100 * price["output_cost_per_token"])
    assert price["cache_read_input_token_cost"] < price["input_cost_per_token"]
    assert receipt.tokens.cached_input == 3000 and receipt.priced
    assert receipt.cost_usd == round(expected, 6)


def test_anthropic_prompts_mark_the_end_of_their_stable_prefix() -> None:
    files = "### FILE: a.py\n```\nx = 1\n```\n\n### SELECTION: a.py:1-1\n(apply the instruction to these lines)\n"
    user = files + "\n### INSTRUCTION\nrename x\n"
    messages = [{"role": "system", "content": "rules"}, {"role": "user", "content": user},
                {"role": "assistant", "content": "a"}, {"role": "user", "content": "repair"}]
    marked = llm.cache_marked("anthropic/claude-sonnet-4-5", messages)
    blocks = marked[1]["content"]
    assert [b.get("cache_control") for b in blocks] == [{"type": "ephemeral"}, None]
    assert "".join(b["text"] for b in blocks) == user  # only the mark is added, never the text changed
    assert blocks[0]["text"].endswith("```\n\n") and blocks[1]["text"].startswith("### SELECTION")
    assert marked[0] == messages[0] and marked[2:] == messages[2:]
    assert messages[1]["content"] == user  # the caller's list is left as it was
    # models that cache by themselves, or are not Claude, get the messages unchanged
    assert llm.cache_marked("openai/gpt-4.1-mini", messages) == messages
    assert llm.cache_marked("bedrock/anthropic.claude-3-5-sonnet", messages)[1]["content"] == blocks
    # a prompt with nothing stable before the instruction marks the system text
    bare = [{"role": "system", "content": "rules"}, {"role": "user", "content": "### INSTRUCTION\ndo it\n"}]
    assert stable_end(bare[1]["content"]) == 0
    assert llm.cache_marked("anthropic/claude-sonnet-4-5", bare)[0]["content"][0]["cache_control"] == {
        "type": "ephemeral"}


def test_submit_wait_shows_the_token_count(daemon: DaemonProcess, offline: OfflineModel, repo: Path) -> None:
    offline.script([{"content": ANSWER, "completion_tokens": 321, "chunk_latency": 0.04}])
    r = subprocess.run([sys.executable, "-m", "daemon", "submit", "type them", "--file", "app.py", "--file", "util.py",
                        "--wait"], env=daemon.env, cwd=repo, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = [line for line in r.stderr.splitlines() if "tokens" in line]
    # not a terminal: one line for the reply, with the provider's count
    assert len(lines) == 1 and lines[0].endswith("model: received 321 tokens, 3 edit blocks"), r.stderr


def test_submit_wait_on_a_terminal_counts_tokens_live(daemon: DaemonProcess, offline: OfflineModel,
                                                      repo: Path) -> None:
    offline.script([{"content": ANSWER, "completion_tokens": 321, "chunk_latency": 0.04}])
    leader, follower = pty.openpty()
    with subprocess.Popen([sys.executable, "-m", "daemon", "submit", "type them", "--file", "app.py", "--file",
                           "util.py", "--wait"], env=daemon.env, cwd=repo, stdout=subprocess.DEVNULL,
                          stderr=follower) as proc:
        os.close(follower)
        shown = b""
        while chunk := _read(leader):
            shown += chunk
        assert proc.wait(60) == 0, shown
    os.close(leader)
    text = shown.decode()
    live = re.findall(r"\r\x1b\[K[^\r\n]*model: receiving: ~(\d+) tokens, (\d) edit blocks?", text)
    assert len(live) >= 2, text  # the line was rewritten in place as the reply arrived
    counts = [int(n) for n, _ in live]
    assert counts == sorted(counts) and counts[0] < counts[-1]
    assert "model: received 321 tokens, 3 edit blocks\r\n" in text  # the final count ends the line


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except OSError:  # EIO: the other side has closed
        return b""
