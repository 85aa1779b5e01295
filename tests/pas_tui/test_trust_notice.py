"""A workspace whose .pas.toml has settings the daemon ignores is reported once, with the command that trusts it."""

from __future__ import annotations

from pathlib import Path

from textual.worker import WorkerState
from tui_support import run_to_review, wait_until

from daemon import protocol as p
from daemon.testing import DaemonProcess
from pas_tui import PasApp
from pas_tui.widgets.task_list import TaskList

SIZE = (120, 40)


def untrusted_notes(app: PasApp) -> list[str]:
    return [str(n.message) for n in app._notifications if "is not trusted" in str(n.message)]


def untrusted_checks_done(app: PasApp) -> bool:
    return not any(w.group == "untrusted" and w.state in (WorkerState.PENDING, WorkerState.RUNNING)
                   for w in app.workers)


async def test_untrusted_settings_are_shown_once_per_workspace(daemon: DaemonProcess, repo: Path) -> None:
    (repo / ".pas.toml").write_text('[guardrails]\nallow_commands = ["*"]\n')
    ws = repo.resolve()
    app = PasApp(daemon.socket, workspace=repo)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.synced, what="the first sync")
        assert untrusted_notes(app) == []  # nothing has used the workspace yet
        await run_to_review(daemon, repo, instruction="document add")
        await wait_until(pilot, lambda: untrusted_notes(app), what="the untrusted-settings notification")
        [note] = untrusted_notes(app)
        assert note.startswith(f"{ws / '.pas.toml'} is not trusted") and "guardrails.allow_commands" in note
        assert note.endswith(f"pasd trust {ws}")

        await run_to_review(daemon, repo, instruction="document sub")
        tasks = app.query_one(TaskList)
        await wait_until(pilot, lambda: sum(t.state is p.TaskState.REVIEW for t in tasks.tasks.values()) == 2
                         and untrusted_checks_done(app), what="both tasks in review, the checks done")
        assert len(untrusted_notes(app)) == 1

    # a TUI started later learns it from its first sync
    app = PasApp(daemon.socket, workspace=repo)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.synced, what="the first sync")
        assert len(untrusted_notes(app)) == 1
