"""The direct path to OpenAI's wire (daemon/programmer/openai_wire.py) gives what litellm.acompletion gives:
the same text, tokens, price and, for every failure, the same reason and message."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from daemon import protocol as p
from daemon.client import EventStream
from daemon.offline_model import OfflineModel
from daemon.programmer import llm
from daemon.programmer.spec import ModelSpec, ProviderFault, TaskFailed
from daemon.testing import DaemonFactory, block, until_state

MESSAGES = [{"role": "user", "content": "### FILE: app.py\n```\nx = 1\n```\n### INSTRUCTION\nnote it"}]


def call(model: OfflineModel, client: str, response: dict[str, Any], name: str = "openai/pasd-offline",
         timeout: float = 5.0) -> tuple[llm.Reply | Exception, list[str]]:
    """One llm.complete with `response` scripted; (the reply or the error it raised, the pieces streamed)."""
    model.reset()
    model.script([response])
    pieces: list[str] = []

    async def run() -> llm.Reply | Exception:
        try:
            return await llm.complete(ModelSpec(model=name, api_base=model.url), MESSAGES, timeout, pieces.append)
        except (TaskFailed, ProviderFault) as exc:
            return exc
        finally:
            await llm.aclose()

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(llm.CLIENT_ENV, client)
        return asyncio.run(run()), pieces


def outcome(result: llm.Reply | Exception) -> tuple[Any, ...]:
    if isinstance(result, llm.Reply):
        return ("reply", result.text, result.tokens, round(result.cost_usd, 9), result.priced)
    return (type(result).__name__, getattr(result, "reason", None), str(result),
            getattr(result, "retry_after", None))


@pytest.mark.parametrize("response", [
    {"content": "line one\nline two\n", "prompt_tokens": 120, "completion_tokens": 7},
    {"content": "a token at a time " * 20, "chunk_chars": 4},
    {"content": "cached\nreply\n", "prompt_tokens": 4000, "completion_tokens": 100, "cached_tokens": 3000},
    {"content": "no usage\non this stream\n", "stream_usage": False},
    {"status": 500, "content": "upstream exploded"},
    {"status": 503},
    {"status": 429, "retry_after": 3, "content": "slow down"},
    {"status": 401, "content": "bad key"},
    {"status": 404, "content": "no such model"},
    {"status": 400, "content": "This model's maximum context length is 8192 tokens"},
    {"status": 400, "content": "nonsense request"},
    {"fault": "garbage"},
    {"fault": "reset"},
], ids=lambda r: ",".join(f"{k}={v}" for k, v in r.items())[:40])
def test_the_direct_path_answers_as_litellm_does(model: OfflineModel, response: dict[str, Any]) -> None:
    direct, streamed = call(model, "direct", response)
    via_litellm, _ = call(model, "litellm", response)
    if isinstance(direct, llm.Reply):
        assert "".join(streamed) == direct.text and len(streamed) > 1  # the reply came piece by piece
        assert outcome(direct) == outcome(via_litellm)
    else:
        assert type(direct) is type(via_litellm) and direct.reason == via_litellm.reason, (direct, via_litellm)
        assert getattr(direct, "retry_after", None) == getattr(via_litellm, "retry_after", None)
        if "content" in response:  # the provider's words, in the same sentence of pasd's
            assert str(direct).split(":")[0] == str(via_litellm).split(":")[0]
            assert response["content"] in str(direct) and response["content"] in str(via_litellm)


def test_a_model_in_litellms_price_table_is_priced_from_it_on_the_direct_path(model: OfflineModel) -> None:
    response = {"content": "ok", "prompt_tokens": 4000, "completion_tokens": 100, "cached_tokens": 3000}
    direct, _ = call(model, "direct", response, name="openai/gpt-4o-mini")
    via_litellm, _ = call(model, "litellm", response, name="openai/gpt-4o-mini")
    assert isinstance(direct, llm.Reply) and direct.priced and direct.cost_usd > 0
    assert direct.tokens.cached_input == 3000
    assert outcome(direct) == outcome(via_litellm)


def test_other_providers_and_unplain_params_go_through_litellm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(llm.CLIENT_ENV, "direct")  # the daemon's default (the tests' daemons use litellm's path)
    assert llm._direct_name(ModelSpec(model="openai/pasd-offline", api_base="http://127.0.0.1:9/v1")) == "pasd-offline"
    assert llm._direct_name(ModelSpec(model="anthropic/claude-sonnet-4-5")) is None
    assert llm._direct_name(ModelSpec(model="openai/gpt-4o-mini")) == "gpt-4o-mini"
    # OpenAI's reasoning models take max_tokens and temperature otherwise: litellm maps them
    assert llm._direct_name(ModelSpec(model="openai/o3", params={"temperature": 0.2})) is None
    local = "http://127.0.0.1:9/v1"
    assert llm._direct_name(ModelSpec(model="openai/qwen", api_base=local, params={"temperature": 0.2})) == "qwen"
    assert llm._direct_name(ModelSpec(model="openai/qwen", api_base=local, params={"tools": []})) is None


async def test_a_task_runs_end_to_end_on_the_direct_path(make_daemon: DaemonFactory, offline: OfflineModel,
                                                          repo: Path) -> None:
    """The daemon's default client for OpenAI's wire: a task reaches REVIEW with the reply's edit and
    tokens, and its request went out without litellm (the OpenAI SDK's x-stainless headers are absent)."""
    d = make_daemon(env={llm.CLIENT_ENV: "direct"})
    edit = block("app.py", "def sub(a, b):\n", "def sub(a: int, b: int) -> int:\n")
    offline.script([{"content": edit, "prompt_tokens": 321, "completion_tokens": 45}])
    async with d.client() as c, EventStream(d.socket, kinds=["task"]) as events:
        task = await c.submit(p.SubmitParams(workspace=str(repo), instruction="add type hints to sub",
                                             files=["app.py"]))
        await until_state(events, task.id, p.TaskState.REVIEW)
        diff = await c.diff(task.id)
        receipts = await c.receipts(p.ReceiptsParams(task_id=task.id))
    assert "+def sub(a: int, b: int) -> int:" in diff.diff
    assert (receipts[0].tokens.input, receipts[0].tokens.output) == (321, 45)
    headers = offline.requests[-1]["headers"]
    assert headers["authorization"].startswith("Bearer ")
    assert not [h for h in headers if h.startswith("x-stainless")]
