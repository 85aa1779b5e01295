"""A model that cannot be reached, or a model string that names nothing, is said in pasd's words:
what happened and what to check, never the HTTP client's internals."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon import protocol as p
from daemon.errors import BadModel, MissingCredentials
from daemon.offline_model import OfflineModel
from daemon.programmer import llm
from daemon.programmer.spec import ModelSpec
from daemon.testing import DaemonProcess, offline_config

INTERNALS = ("0x", "litellm", "SSLContext", "Handle with", "Exception", "Error_str", "OpenAI")


@pytest.fixture(scope="module")
def fast(model: OfflineModel, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    d = DaemonProcess(tmp_path_factory.mktemp("fast"), workers=1, config=offline_config(
        model.url, guardrails={"model_timeout_s": 1.0}, pool={"max_retries": 0}))
    yield d.start()
    d.cleanup()


@pytest.fixture
def hung() -> Iterator[str]:
    """A server that accepts connections and never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield f"http://127.0.0.1:{s.getsockname()[1]}/v1"


@pytest.fixture
def closed() -> str:
    """A loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


async def fail_at(d: DaemonProcess, repo: Path, api_base: str) -> p.TaskInfo:
    async with d.client() as c:
        task = await c.submit(p.SubmitParams(workspace=str(repo), instruction="x", files=["app.py"],
                                             model="openai/pasd-somewhere", api_base=api_base))
        return await c.wait(task.id)


@pytest.mark.parametrize(("where", "reason", "words"), [
    ("unresolvable", "connection", ["could not resolve the provider's host pasd-nonexistent.invalid",
                                    "check the model's api_base", "DNS"]),
    ("closed", "connection", ["was refused", "is the server running there?"]),
    ("hung", "model_timeout", ["did not answer within 1 s", "model_timeout_s"]),
    ("tls", "connection", ["TLS with 127.0.0.1:", "wrong version number", "http or https"]),
])
async def test_unreachable_models_say_what_happened_and_what_to_check(
        fast: DaemonProcess, model: OfflineModel, repo: Path, hung: str, closed: str,
        where: str, reason: str, words: list[str]) -> None:
    api_base = {"unresolvable": "http://pasd-nonexistent.invalid/v1", "closed": closed, "hung": hung,
                "tls": model.url.replace("http://", "https://")}[where]
    task = await fail_at(fast, repo, api_base)
    assert task.state is p.TaskState.FAILED and task.reason == reason, task
    error = task.error or ""
    assert all(w in error for w in words), error
    assert not any(x in error for x in INTERNALS), error
    assert len(error.splitlines()) == 1


async def test_provider_errors_keep_the_providers_words_only(fast: DaemonProcess, model: OfflineModel,
                                                             repo: Path) -> None:
    model.reset()
    model.script([{"status": 500, "content": "upstream exploded"}])
    task = await fail_at(fast, repo, model.url)
    assert task.state is p.TaskState.FAILED and task.reason == "provider"
    assert task.error is not None and "the provider's server failed (5xx): upstream exploded" in task.error
    assert not any(x in task.error for x in INTERNALS), task.error


@pytest.mark.parametrize(("model", "words"), [
    ("openai/", "names no model after 'openai/'"),
    ("openai", "names no provider"),
    ("nope/model", "'nope' is not a provider"),
    ("/gpt-4o", "names no provider before the '/'"),
    ("open ai/gpt", "bad model string"),
])
def test_bad_model_strings_are_refused_in_pasds_words(model: str, words: str) -> None:
    with pytest.raises(BadModel) as err:
        llm.validate(ModelSpec(model=model))
    text = err.value.message
    assert words in text and "e.g. " in text and "litellm.BadRequestError" not in text
    assert "LLM Provider NOT provided" not in text and "list index" not in text


def test_either_key_is_said_with_or(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GEMINI_API_KEY", "GOOGLE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(MissingCredentials, match=r"set GEMINI_API_KEY or GOOGLE_API_KEY in the shell"):
        llm.validate(ModelSpec(model="gemini/gemini-2.5-flash"))
    monkeypatch.setenv("GOOGLE_API_KEY", "g-key-for-the-test")
    llm.validate(ModelSpec(model="gemini/gemini-2.5-flash"))


def test_cli_says_bad_model_in_one_line(fast: DaemonProcess, repo: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "daemon", "submit", "x", "-f", "app.py", "--model", "openai/"],
                       env=fast.env, cwd=repo, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    assert r.stderr.strip().startswith("pasd: bad model string 'openai/'") and len(r.stderr.splitlines()) == 1


@pytest.mark.parametrize(("raw", "kept"), [
    ("litellm.InternalServerError: InternalServerError: OpenAIException - upstream exploded. "
     "Handle with `litellm.InternalServerError`.", "upstream exploded"),
    ("litellm.APIConnectionError: Cannot connect to host api.example.com:443 "
     "ssl:<ssl.SSLContext object at 0x7f3a2c1b0e40> [Connection reset by peer]",
     "Cannot connect to host api.example.com:443 [Connection reset by peer]"),
    ("litellm.RateLimitError: RateLimitError: AnthropicException - slow down\nmore detail", "slow down"),
])
def test_first_line_keeps_the_providers_words(raw: str, kept: str) -> None:
    assert llm._first_line(RuntimeError(raw)) == kept
