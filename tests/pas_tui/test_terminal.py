"""pas-tui in a real terminal (tmux), and its first paint time headless."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tui_support import wait_until

from daemon import protocol as p
from daemon.testing import DaemonProcess
from pas_tui import PasApp
from pas_tui.widgets.pool_panel import PoolPanel

ROOT = Path(__file__).resolve().parents[2]


def terminal_env(daemon: DaemonProcess) -> dict[str, str]:
    """The app's environment in tmux: without COLUMNS and LINES (pytest-xdist's workers set 80x24, and
    Textual takes them over the pane's own size)."""
    env = {k: v for k, v in daemon.env.items() if k not in ("COLUMNS", "LINES")}
    return {**env, "PYTHONPATH": str(ROOT), "TERM": "xterm-256color"}


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")
def test_pas_tui_in_tmux_shows_the_pool_panel(daemon: DaemonProcess, tmp_path: Path) -> None:
    session = f"pas-tui-{os.getpid()}"
    env = terminal_env(daemon)
    cmd = f"{sys.executable} -m pas_tui --socket {daemon.socket}"
    subprocess.run(["tmux", "-L", session, "new-session", "-d", "-s", session, "-x", "120", "-y", "40", cmd],
                   env=env, check=True)
    try:
        screen, deadline = "", time.monotonic() + 30
        while time.monotonic() < deadline:  # poll the terminal: tmux has no "painted" event to wait on
            screen = subprocess.run(["tmux", "-L", session, "capture-pane", "-p", "-t", session],
                                    capture_output=True, text=True).stdout
            if "Programmer-04" in screen:
                break
            time.sleep(0.1)
        assert "Pool" in screen and "Programmer-01" in screen and "IDLE" in screen, screen
        subprocess.run(["tmux", "-L", session, "send-keys", "-t", session, "q"], check=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and subprocess.run(
                ["tmux", "-L", session, "has-session", "-t", session], capture_output=True).returncode == 0:
            time.sleep(0.1)
    finally:
        subprocess.run(["tmux", "-L", session, "kill-server"], capture_output=True)


async def test_first_paint_time(daemon: DaemonProcess, tmp_path: Path) -> None:
    """Headless: from constructing the app to the pool panel painted with the daemon's data."""
    start = time.perf_counter()
    app = PasApp(daemon.socket, workspace=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        mounted = time.perf_counter() - start
        pool = app.query_one(PoolPanel)
        await wait_until(pilot, lambda: len(pool.programmers) == daemon.workers, what="the pool")
        await pilot.pause()
        painted = time.perf_counter() - start
    print(f"\nfirst paint (headless): screen mounted {mounted * 1000:.0f} ms, pool data shown {painted * 1000:.0f} ms")
    assert painted < 5.0


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")
async def test_the_filter_in_tmux_finds_an_old_task_and_shows_the_count(daemon: DaemonProcess, repo: Path) -> None:
    async with daemon.client() as c:
        old = await c.submit(p.SubmitParams(workspace=str(repo), instruction="polish the walrus", files=["app.py"]))
        for i in range(30):  # more than the list shows: the old task is below the view
            await c.submit(p.SubmitParams(workspace=str(repo), instruction=f"step {i}", files=["app.py"]))
    session = f"pas-tui-filter-{os.getpid()}"
    env = terminal_env(daemon)

    def screen() -> str:
        return subprocess.run(["tmux", "-L", session, "capture-pane", "-p", "-t", session],
                              capture_output=True, text=True).stdout

    def until(*what: str, gone: tuple[str, ...] = ()) -> str:
        """The screen once it shows every one of `what` and none of `gone` (the border and the rows are
        painted apart: a capture may fall between them)."""
        shown, deadline = "", time.monotonic() + 30
        while time.monotonic() < deadline:  # poll the terminal: tmux has no "painted" event to wait on
            shown = screen()
            if all(w in shown for w in what) and not any(g in shown for g in gone):
                return shown
            time.sleep(0.1)
        raise AssertionError(f"{what!r} (without {gone!r}) not on screen:\n{shown}")

    cmd = f"{sys.executable} -m pas_tui --socket {daemon.socket}"
    subprocess.run(["tmux", "-L", session, "new-session", "-d", "-s", session, "-x", "120", "-y", "40", cmd],
                   env=env, check=True)
    try:
        until("step 29")
        assert old.id not in screen()
        subprocess.run(["tmux", "-L", session, "send-keys", "-t", session, "/"], check=True)
        # the filter has the keys now, not the list (where `a` would approve); its placeholder's start,
        # which fits however wide the terminal Textual was told of
        until("filter: words")
        subprocess.run(["tmux", "-L", session, "send-keys", "-t", session, "walr"], check=True)
        until("filter: walr · 1 match", old.id, "polish the walrus", gone=("step 29",))
        subprocess.run(["tmux", "-L", session, "send-keys", "-t", session, "Escape"], check=True)
        # the whole list again: at its top, or scrolled to keep the task the cursor is on (the match) in view
        shown, deadline = screen(), time.monotonic() + 30
        while "1 match" in shown or not ("step 29" in shown or ("step 0" in shown and old.id in shown)):
            assert time.monotonic() < deadline, f"the whole list is not back:\n{shown}"
            time.sleep(0.1)
            shown = screen()
    finally:
        subprocess.run(["tmux", "-L", session, "kill-server"], capture_output=True)
