"""One task end to end: submit -> RUNNING -> REVIEW -> approve/reject, on the real daemon."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path

from daemon import protocol as p
from daemon.client import EventStream
from daemon.offline_model import OfflineModel
from daemon.testing import DaemonFactory, DaemonProcess

EDIT = """Here is the change.

app.py
```python
<<<<<<< SEARCH
def sub(a, b):
    return a - b
=======
def sub(a: int, b: int) -> int:
    return a - b
>>>>>>> REPLACE
```
"""


def submit_params(repo: Path, **kw: object) -> p.SubmitParams:
    base: dict[str, object] = dict(workspace=str(repo), instruction="add type hints to sub", files=["app.py"],
                                   selection=p.Selection(path="app.py", start_line=5, end_line=6))
    base.update(kw)
    return p.SubmitParams.model_validate(base)


async def test_submit_runs_to_review_with_diff_and_receipt(daemon: DaemonProcess, offline: OfflineModel,
                                                           repo: Path) -> None:
    offline.script([{"content": EDIT, "prompt_tokens": 321, "completion_tokens": 45}])
    async with daemon.client() as c, EventStream(daemon.socket, kinds=["task"]) as events:
        task = await c.submit(submit_params(repo))
        assert task.state is p.TaskState.QUEUED
        seen = []
        async for env in events:
            assert isinstance(env.event, p.TaskEvent)
            if env.event.task.id == task.id:
                seen.append(env.event.task.state)
                if not env.event.task.state.active:
                    break
        assert seen[-2:] == [p.TaskState.RUNNING, p.TaskState.REVIEW]

        d = await c.diff(task.id)
        assert "-def sub(a, b):\n+def sub(a: int, b: int) -> int:\n" in d.diff
        assert [h.id for f in d.files for h in f.hunks] == [1]

        [receipt] = await c.receipts(p.ReceiptsParams(task_id=task.id))
        assert (receipt.tokens.input, receipt.tokens.output) == (321, 45)
        assert offline.requests[-1]["usage"]["prompt_tokens"] == 321
        assert receipt.cost_usd == round(321 * 1e-6 + 45 * 2e-6, 6) and receipt.priced
        assert (receipt.files_changed, receipt.lines_added, receipt.lines_removed) == (1, 1, 1)
        assert receipt.outcome == "review" and receipt.programmer.startswith("Programmer-")
        assert receipt.provider.model == "openai/pasd-offline" and receipt.provider.litellm_version

        # the model was shown the selection and the file
        prompt = offline.requests[-1]["messages"][-1]["content"]
        assert "### SELECTION: app.py:5-6" in prompt and "def add(a, b):" in prompt

        assert (repo / "app.py").read_text().count("a: int") == 0  # nothing written before approval
        res = await c.approve(p.ReviewParams(task_id=task.id))
        assert res.task.state is p.TaskState.APPLIED and res.applied == [1]
        assert "def sub(a: int, b: int) -> int:" in (repo / "app.py").read_text()

        # receipts are also in the run's JSONL file
        hello = await c.hello()
        jsonl = Path(hello.state_dir) / "receipts" / f"{hello.run_id}.jsonl"
        assert task.id in jsonl.read_text()


def table_price(model: str) -> tuple[float, float]:
    """(input, output) USD per token from litellm's bundled price table, read without importing litellm."""
    spec = importlib.util.find_spec("litellm")
    assert spec is not None and spec.origin is not None
    entry = json.loads((Path(spec.origin).parent / "model_prices_and_context_window_backup.json").read_text())[model]
    return entry["input_cost_per_token"], entry["output_cost_per_token"]


async def test_a_model_in_litellms_price_table_is_priced_from_it(make_daemon: DaemonFactory,
                                                                 offline: OfflineModel, repo: Path) -> None:
    """No price in the config: the receipt's cost comes from litellm's table, as for a real provider."""
    model = "openai/gpt-4.1-mini"
    d = make_daemon(env={"PASD_TEST_TABLE_KEY": "sk-test"}, **{f'models.settings."{model}"': {
        "api_base": offline.url, "api_key_env": "PASD_TEST_TABLE_KEY"}})
    offline.script([{"content": EDIT, "prompt_tokens": 1000, "completion_tokens": 200}])
    async with d.client() as c:
        task = await c.wait((await c.submit(submit_params(repo, model=model))).id)
        assert task.state is p.TaskState.REVIEW, task.error
        [receipt] = await c.receipts(p.ReceiptsParams(task_id=task.id))
    price_in, price_out = table_price("gpt-4.1-mini")
    assert receipt.priced and receipt.cost_usd == round(1000 * price_in + 200 * price_out, 6) > 0


async def test_reject_leaves_file_untouched(daemon: DaemonProcess, offline: OfflineModel, repo: Path) -> None:
    offline.script([{"content": EDIT}])
    before = (repo / "app.py").read_bytes()
    async with daemon.client() as c:
        task = await c.wait((await c.submit(submit_params(repo))).id)
        assert task.state is p.TaskState.REVIEW
        res = await c.reject(p.ReviewParams(task_id=task.id))
        assert res.task.state is p.TaskState.REJECTED
        assert (await c.get(task.id)).state is p.TaskState.REJECTED
    assert (repo / "app.py").read_bytes() == before


async def test_uncommitted_edits_are_seen_and_survive(daemon: DaemonProcess, offline: OfflineModel,
                                                      repo: Path) -> None:
    # the user has an uncommitted edit and an untracked file; the task sees both
    app = repo / "app.py"
    app.write_text(app.read_text() + "\n\ndef div(a, b):\n    return a / b\n")
    (repo / "new_mod.py").write_text("VALUE = 1\n")
    offline.script([{"content": EDIT}, {"content": "new_mod.py\n```\n<<<<<<< SEARCH\nVALUE = 1\n=======\n"
                                                   "VALUE = 2\n>>>>>>> REPLACE\n```\n"}])
    async with daemon.client() as c:
        t1 = await c.wait((await c.submit(submit_params(repo))).id)
        assert t1.state is p.TaskState.REVIEW
        assert "def div(a, b):" in offline.requests[0]["messages"][-1]["content"]
        t2 = await c.wait((await c.submit(submit_params(repo, files=["new_mod.py"], selection=None))).id)
        assert t2.state is p.TaskState.REVIEW
        await c.approve(p.ReviewParams(task_id=t1.id))
        await c.reject(p.ReviewParams(task_id=t2.id))
    text = app.read_text()
    assert "def sub(a: int, b: int) -> int:" in text and "def div(a, b):" in text
    assert (repo / "new_mod.py").read_text() == "VALUE = 1\n"
    # the user's tree was never committed to or stashed
    log = subprocess.run(["git", "log", "--oneline"], cwd=repo, capture_output=True, text=True).stdout
    assert len(log.splitlines()) == 1
    assert subprocess.run(["git", "stash", "list"], cwd=repo, capture_output=True, text=True).stdout == ""


async def test_default_offline_answer_is_a_real_edit(daemon: DaemonProcess, repo: Path) -> None:
    async with daemon.client() as c:
        task = await c.wait((await c.submit(submit_params(repo, instruction="explain sub"))).id)
        assert task.state is p.TaskState.REVIEW
        d = await c.diff(task.id)
        assert "+# pas: explain sub\n" in d.diff


async def test_model_answer_without_edits_fails_clearly(daemon: DaemonProcess, offline: OfflineModel,
                                                        repo: Path) -> None:
    offline.script([{"fault": "no_edits"}])
    async with daemon.client() as c:
        task = await c.wait((await c.submit(submit_params(repo))).id)
        assert task.state is p.TaskState.FAILED and task.reason == "no_edits"
        assert "without any SEARCH/REPLACE edit" in (task.error or "")
        [receipt] = await c.receipts(p.ReceiptsParams(task_id=task.id))
        assert receipt.outcome == "failed: no_edits" and receipt.tokens.output > 0
