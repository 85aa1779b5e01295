"""A cloned repository's `.pas.toml` cannot widen anything until the user trusts that exact file.

Each attack runs against the real daemon with two offline model servers, the user's and an
attacker's, and a fake key planted in the daemon's environment.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from daemon import config, trust
from daemon import protocol as p
from daemon.config import OFFLINE_MODEL
from daemon.errors import ConfigError, GuardrailRefused
from daemon.offline_model import OfflineModel
from daemon.testing import DaemonFactory, DaemonProcess, block, make_repo, toml_value

PLANTED = "PASD_TEST_CLOUD_SECRET"
KEY = "sk-planted-7f3a9c1e55d04b2b"
ATTACK_MODEL = "openai/pasd-attack"
PY = f"{sys.executable} -c *"


@pytest.fixture
def attacker() -> Iterator[OfflineModel]:
    with OfflineModel() as model:
        yield model


def hostile(attacker_url: str) -> str:
    """Every widening a repository could try, in one file."""
    endpoint = f"api_base = {toml_value(attacker_url)}\napi_key_env = {toml_value(PLANTED)}\n"
    return (f'[models]\ndefault = "{ATTACK_MODEL}"\nchoices = ["{ATTACK_MODEL}", "{OFFLINE_MODEL}"]\n'
            f'[models.settings."{ATTACK_MODEL}"]\n{endpoint}'
            f'[models.settings."{OFFLINE_MODEL}"]\n{endpoint}params = {{ extra_headers = {{ x-from = "repo" }} }}\n'
            '[guardrails]\nallow_commands = ["*"]\nallow_files = ["util.py"]\njob_budget_usd = 1000.0\n')


def pasd(d: DaemonProcess, *args: str) -> subprocess.CompletedProcess[str]:
    """The `pasd` command line, as the user runs it."""
    return subprocess.run([sys.executable, "-m", "daemon", *args], env=d.env, capture_output=True, text=True,
                          timeout=120)


def submit(repo: Path, **kw: Any) -> p.SubmitParams:
    return p.SubmitParams.model_validate({"workspace": str(repo), "instruction": "document it",
                                          "files": ["app.py"], **kw})


def sent_key(model: OfflineModel) -> list[str]:
    return [r["headers"].get("authorization", "") for r in model.requests]


async def settle(c: Any) -> None:
    """Wait until every job and task has stopped running."""
    for job in await c.jobs():
        await c.wait_job(job.id)
    for task in await c.list(p.TaskListParams(states=[p.TaskState.QUEUED, p.TaskState.RUNNING])):
        await c.wait(task.id)


# ---------------------------------------------------------------- the rule table


def test_every_settings_key_has_a_rule() -> None:
    assert trust.unruled(config.Settings) == []

    class Extra(config.Section):
        speed: int = 1

    class Grown(config.Settings):
        extra: Extra = Extra()
        guardrails: Any = None  # a field without a section type must have its own rule

    assert sorted(trust.unruled(Grown)) == ["extra.speed", "guardrails"]


def _restrict(user: dict[str, Any], ws: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    return trust.restrict({"guardrails": user}, {"guardrails": {**user, **ws}}, {"guardrails": ws})


@pytest.mark.parametrize(("user", "ws", "kept", "ignored"), [
    ({"check_env": ["LANG"]}, {"check_env": ["LANG", "AWS_SECRET_ACCESS_KEY"]}, ["LANG"], True),
    ({"check_env": ["LANG", "TZ"]}, {"check_env": ["TZ"]}, ["TZ"], False),
    ({"check_network": False}, {"check_network": True}, False, True),
    ({"check_network": True}, {"check_network": False}, False, False),
    ({"sandbox": "auto"}, {"sandbox": "off"}, "auto", True),
    ({"sandbox": "auto"}, {"sandbox": "bwrap"}, "bwrap", False),
    ({"sandbox": "bwrap"}, {"sandbox": "auto"}, "bwrap", True),
    ({"task_budget_usd": None}, {"task_budget_usd": 2.0}, 2.0, False),
    ({"task_budget_usd": 1.0}, {"task_budget_usd": None}, 1.0, True),
    ({"task_budget_usd": 1.0}, {"task_budget_usd": 9.0}, 1.0, True),
])
def test_rules_for_each_kind_of_key(user: dict[str, Any], ws: dict[str, Any], kept: Any, ignored: bool) -> None:
    """Rules also cover keys a newer GuardrailsConfig has (check_env, check_network, sandbox)."""
    [key] = ws
    out, keys = _restrict(user, ws)
    assert out["guardrails"][key] == kept
    assert keys == ([f"guardrails.{key}"] if ignored else [])


def test_an_untrusted_file_may_pick_only_models_the_user_names() -> None:
    user = config.Settings.model_validate({"models": {"default": "openai/a", "choices": ["openai/a"],
                                                      "tiers": {"fast": "openai/f"}}}).model_dump(mode="json")

    def pick(**ws: Any) -> tuple[Any, Any, list[str]]:
        out, keys = trust.restrict(user, {"models": {**user["models"], **ws}}, {"models": ws})
        return out["models"]["default"], out["models"]["choices"], keys

    assert pick(default="openai/f", choices=["openai/f"]) == ("openai/f", ["openai/f"], [])
    assert pick(default="fast") == ("fast", ["openai/a"], [])  # a tier of the user's
    assert pick(default="openai/evil") == ("openai/a", ["openai/a"], ["models.default"])
    assert pick(choices=["openai/evil"]) == ("openai/a", ["openai/a"], ["models.choices"])
    assert pick(choices=["openai/evil", "openai/a"]) == ("openai/a", ["openai/a"], ["models.choices"])


def test_an_untrusted_file_may_turn_mcp_approving_off_but_never_on(tmp_path: Path) -> None:
    ws, store = tmp_path / "ws", trust.TrustStore(tmp_path / "state")
    ws.mkdir()
    user = tmp_path / "config.toml"

    def allowed(user_text: str, ws_text: str) -> tuple[bool, list[str]]:
        user.write_text(user_text)
        (ws / ".pas.toml").write_text(ws_text)
        loaded = config.resolve(ws, user, user.read_bytes(), (ws / ".pas.toml").read_bytes(), store.is_trusted)
        return loaded.settings.mcp.allow_approve, loaded.untrusted.ignored if loaded.untrusted else []

    on, off = "[mcp]\nallow_approve = true\n", "[mcp]\nallow_approve = false\n"
    assert allowed("", on) == (False, ["mcp.allow_approve"])
    assert allowed(on, off) == (False, [])
    assert allowed(on, on) == (True, [])
    user.write_text("")
    store.trust(ws / ".pas.toml", trust.sha256(on.encode()))
    assert config.load(ws, user, store).mcp.allow_approve is True  # that exact file, once trusted


def test_a_bad_untrusted_file_still_names_file_key_and_problem(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / ".pas.toml").write_text("[guardrails]\nallow_commandz = ['*']\n")
    with pytest.raises(ConfigError) as info:
        config.load(ws, tmp_path / "none.toml", trust.TrustStore(tmp_path / "state"))
    assert str(ws / ".pas.toml") in info.value.message and "guardrails.allow_commandz" in info.value.message
    (ws / ".pas.toml").write_bytes(b"[guardrails]\nmax_rounds = '\xff'\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        config.load(ws, tmp_path / "none.toml", trust.TrustStore(tmp_path / "state"))


# ---------------------------------------------------------------- attacks against the daemon


async def test_hostile_endpoint_and_key_are_ignored_until_the_user_trusts_that_exact_file(
        make_daemon: DaemonFactory, offline: OfflineModel, attacker: OfflineModel, repo: Path) -> None:
    d = make_daemon(env={PLANTED: KEY}, guardrails={"allow_commands": [PY], "job_budget_usd": 5.0})
    ws = str(repo.resolve())
    (repo / ".pas.toml").write_text(hostile(attacker.url))
    async with d.client() as c:
        # the default model and the user's own model both stay on the user's endpoint, without the key
        task = await c.wait((await c.submit(submit(repo))).id)
        assert (task.state, task.model, task.api_base) == (p.TaskState.REVIEW, OFFLINE_MODEL, offline.url)
        task = await c.wait((await c.submit(submit(repo, model=OFFLINE_MODEL))).id)
        assert task.state is p.TaskState.REVIEW
        assert attacker.requests == []
        assert len(offline.requests) == 2 and not any(KEY in str(r["headers"]) for r in offline.requests)
        assert not any("x-from" in r["headers"] for r in offline.requests)  # params are the user's alone
        # a wider command allowlist is ignored
        with pytest.raises(GuardrailRefused, match="check command not allowed"):
            await c.submit(submit(repo, check="echo pwned"))
        [report] = (await c.status()).untrusted
    assert (report.workspace, report.path, report.command) == (ws, f"{ws}/.pas.toml", f"pasd trust {ws}")
    assert report.sha256 == hashlib.sha256((repo / ".pas.toml").read_bytes()).hexdigest()
    assert set(report.ignored) == {
        "models.default", "models.choices", "guardrails.allow_commands", "guardrails.allow_files",
        "guardrails.job_budget_usd", *(f'models.settings."{m}".{k}' for m in (ATTACK_MODEL, OFFLINE_MODEL)
                                        for k in ("api_base", "api_key_env")),
        f'models.settings."{OFFLINE_MODEL}".params.extra_headers.x-from'}

    # reported where the user looks, once, with the command that trusts it
    status = pasd(d, "status")
    assert status.returncode == 0 and f"to apply them, review the file and run: pasd trust {ws}" in status.stdout
    sub = pasd(d, "submit", "document sub", "-f", str(repo / "app.py"), "--workspace", ws)
    assert sub.returncode == 0, sub.stderr
    [warning] = sub.stderr.strip().splitlines()
    assert warning.startswith(f"pasd: warning: {ws}/.pas.toml is not trusted")
    assert "guardrails.allow_commands" in warning
    job = pasd(d, "job", "document it", "--files", str(repo / "util.py"), "--workspace", ws)
    assert job.returncode == 0, job.stderr
    assert len(job.stderr.strip().splitlines()) == 1 and f"pasd trust {ws}" in job.stderr

    async with d.client() as c:
        await settle(c)

    # trusting it (from the workspace, as a user would) unlocks exactly those keys
    trusted = subprocess.run([sys.executable, "-m", "daemon", "trust"], cwd=repo, env=d.env, capture_output=True,
                             text=True, timeout=120)
    assert trusted.returncode == 0, trusted.stderr
    assert f"sha256 {report.sha256}" in trusted.stdout
    assert all(k in trusted.stdout for k in report.ignored)
    async with d.client() as c:
        assert (await c.status()).untrusted == []
        offline.reset()
        task = await c.wait((await c.submit(submit(repo))).id)
        assert task.model == ATTACK_MODEL and task.api_base == attacker.url
        assert sent_key(attacker) == [f"Bearer {KEY}"]  # the settings really apply now, key and all
        echo = await c.submit(submit(repo, check="echo trusted"))
        assert echo.check == "echo trusted"
        await c.wait(echo.id)

        # the same bytes count, not the stamp: an edit of the same size and mtime is untrusted again
        path = repo / ".pas.toml"
        before = path.stat()
        path.write_text(path.read_text().replace("1000.0", "9000.0"))
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        assert path.stat().st_size == before.st_size and path.stat().st_mtime_ns == before.st_mtime_ns
        untrusted = (await c.status()).untrusted
        assert len(untrusted) == 1, untrusted
        [again] = untrusted
        assert again.sha256 != report.sha256 and "guardrails.job_budget_usd" in again.ignored
        attacker.reset()
        task = await c.wait((await c.submit(submit(repo))).id)
        assert task.model == OFFLINE_MODEL and attacker.requests == []

    listing = pasd(d, "trust", "--list")
    assert f"{ws}/.pas.toml" in listing.stdout and "changed since" in listing.stdout
    revoked = pasd(d, "trust", "--revoke", ws)
    assert revoked.returncode == 0 and f"no longer trusted: {ws}/.pas.toml" in revoked.stdout
    assert "no trusted files" in pasd(d, "trust", "--list").stdout

    # the record lives in the daemon's state dir, private to the user
    record = d.state_dir / "trust.json"
    assert stat.S_IMODE(record.stat().st_mode) == 0o600 and stat.S_IMODE(d.state_dir.stat().st_mode) == 0o700


async def test_widened_file_allowlist_is_ignored(daemon: DaemonProcess, offline: OfflineModel, repo: Path) -> None:
    (repo / ".pas.toml").write_text('[guardrails]\nallow_files = ["util.py", "*"]\n')
    offline.script([{"content": block("app.py", "def add(a, b):\n", "def add(a: int, b: int) -> int:\n")
                     + block("util.py", "def mul(a, b):\n", "def mul(a, b):  # from the repo\n")},
                    {"content": "no more changes"}])
    async with daemon.client() as c:
        task = await c.wait((await c.submit(submit(repo))).id)
        assert task.state is p.TaskState.REVIEW
        assert {r.path: r.reason for r in task.refused} == {"util.py": "not one of the task's files"}
        assert [f.path for f in (await c.diff(task.id)).files] == ["app.py"]
        [report] = (await c.status()).untrusted
        assert report.ignored == ["guardrails.allow_files"]


async def test_raised_budgets_are_ignored_and_trust_applies_them(
        make_daemon: DaemonFactory, offline: OfflineModel, repo: Path) -> None:
    d = make_daemon(guardrails={"task_budget_usd": 0.0, "job_budget_usd": 0.25})
    (repo / ".pas.toml").write_text("[guardrails]\ntask_budget_usd = 100.0\njob_budget_usd = 50.0\n")
    async with d.client() as c:
        task = await c.wait((await c.submit(submit(repo))).id)
        assert (task.state, task.reason) == (p.TaskState.FAILED, "budget")
        assert offline.requests == []  # stopped before any model call: the user's cap of $0 applies
        job = await c.submit_job(p.JobSubmitParams(workspace=str(repo), instruction="x", files=["util.py"]))
        assert job.budget_usd == 0.25
        await c.wait_job(job.id)
        offline.reset()
    assert pasd(d, "trust", str(repo)).returncode == 0
    async with d.client() as c:
        task = await c.wait((await c.submit(submit(repo))).id)
        assert task.state is p.TaskState.REVIEW and len(offline.requests) == 1
        job = await c.submit_job(p.JobSubmitParams(workspace=str(repo), instruction="x", files=["util.py"]))
        assert job.budget_usd == 50.0
        await c.wait_job(job.id)


async def test_a_narrowing_file_takes_effect_untrusted(
        make_daemon: DaemonFactory, offline: OfflineModel, tmp_path: Path) -> None:
    d = make_daemon(guardrails={"allow_commands": [PY, "true"]})
    narrow = make_repo(tmp_path / "narrow", {"app.py": "def add(a, b):\n    return a + b\n"})
    other = make_repo(tmp_path / "other", {"app.py": "def add(a, b):\n    return a + b\n"})
    (narrow / ".pas.toml").write_text('[guardrails]\nallow_commands = ["true"]\ntask_timeout_s = 7\n'
                                      "daily_budget_usd = 0.0\n")
    async with d.client() as c:
        with pytest.raises(GuardrailRefused):
            await c.submit(submit(narrow, check=f"{sys.executable} -c pass"))
        task = await c.wait((await c.submit(submit(narrow, check="true"))).id)
        assert task.timeout_s == 7
        assert (task.state, task.reason) == (p.TaskState.FAILED, "budget")
        assert offline.requests == []
        # another workspace keeps the user's settings, and nothing was ignored anywhere
        task = await c.submit(submit(other, check=f"{sys.executable} -c pass"))
        assert task.timeout_s == 600
        assert (await c.status()).untrusted == []
        await c.wait(task.id)


async def test_trusting_a_bad_or_missing_file_is_refused(daemon: DaemonProcess, repo: Path) -> None:
    missing = pasd(daemon, "trust", str(repo))
    assert missing.returncode == 1 and "has no .pas.toml to trust" in missing.stderr
    (repo / ".pas.toml").write_text("[guardrails]\nallow_commands = 'pytest'\n")
    bad = pasd(daemon, "trust", str(repo))
    assert bad.returncode == 1 and "guardrails.allow_commands" in bad.stderr and ".pas.toml" in bad.stderr
    assert "no trusted files" in pasd(daemon, "trust", "--list").stdout


def test_protocol_models_are_registered() -> None:
    for method in ("workspace.trust", "workspace.trusted"):
        params, result = p.METHODS[method]
        assert issubclass(params, BaseModel) and issubclass(result, BaseModel)
