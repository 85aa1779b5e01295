"""`pasd web` in a real browser (Debian's Chromium driven by playwright) against a real daemon.

One daemon, one offline model, one `pasd web` and one browser serve the whole module (CI time):
the tests run in order and each leaves the daemon idle. A screenshot of each screen goes to
$PASD_WEB_SCREENS, else to the module's temporary directory.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from daemon import protocol as p
from daemon.client import PasClient
from daemon.offline_model import OfflineModel
from daemon.testing import BIG, TWO_HUNKS, DaemonProcess, make_repo, offline_config
from pas_web.hub import scrub
from pas_web.testing import WebProcess

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (scripts/test.sh)")

FILES = {"app.py": "def add(a, b):\n    return a + b\n", "big.py": BIG, "util.py": "def mul(a, b):\n    return a * b\n"}
HANG = [{"match": r"### INSTRUCTION\nhang\b", "fault": "hang", "latency": 120}]
WAIT_MS = 60_000


@dataclass
class Env:
    model: OfflineModel
    daemon: DaemonProcess
    repo: Path
    web: WebProcess
    screens: Path

    def call(self, fn: Any) -> Any:
        """Run `await fn(client)` on a fresh client (on a thread: playwright's loop holds this one)."""
        async def go() -> Any:
            async with PasClient(self.daemon.socket, name="test") as c:
                return await fn(c)
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, go()).result()

    def submit(self, instruction: str, files: list[str]) -> p.TaskInfo:
        params = p.SubmitParams(workspace=str(self.repo), instruction=instruction, files=files)
        return self.call(lambda c: c.submit(params))  # type: ignore[no-any-return]

    def http(self, path: str, *, method: str = "GET", headers: dict[str, str] | None = None,
             body: bytes | None = None) -> tuple[int, bytes]:
        req = urllib.request.Request(self.web.base + path, method=method, headers=headers or {}, data=body)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, r.read() if "events" not in path else b""
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    tmp = tmp_path_factory.mktemp("web")
    screens = Path(os.environ.get("PASD_WEB_SCREENS") or tmp / "screens")
    screens.mkdir(parents=True, exist_ok=True)
    with OfflineModel() as model:
        (tmp / "daemon").mkdir()
        daemon = DaemonProcess(tmp / "daemon", workers=2, config=offline_config(model.url)).start()
        web = WebProcess(daemon.socket, tmp / "web.log")
        try:
            repo = make_repo(tmp / "ws", FILES)
            web.start()
            yield Env(model, daemon, repo, web, screens)
        finally:
            web.stop()
            daemon.cleanup()


@pytest.fixture(scope="module")
def page(env: Env) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM,
                                     args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(WAIT_MS)
            page.goto(env.web.url)
            page.wait_for_selector("body[data-synced]")
            yield page
        finally:
            browser.close()


def shot(page: Any, env: Env, name: str) -> None:
    page.screenshot(path=str(env.screens / f"{name}.png"), full_page=True)


def row(task_id: str, state: str) -> str:
    return f'tr.task[data-task="{task_id}"][data-state="{state}"]'


def test_the_page_shows_the_pool_and_keeps_the_token_in_an_httponly_cookie(env: Env, page: Any) -> None:
    page.wait_for_selector("tr.programmer >> nth=1")
    assert page.locator("tr.programmer").count() == 2
    assert page.locator('tr.programmer[data-state="IDLE"]').count() == 2
    assert "Programmer-01" in page.inner_text("#pool")
    assert page.inner_text("#link") == "live"
    assert "token" not in page.url  # traded for the cookie and dropped from the address bar
    (cookie,) = page.context.cookies()
    assert (cookie["httpOnly"], cookie["sameSite"], cookie["value"]) == (True, "Strict", env.web.token)
    assert page.evaluate("document.cookie") == ""  # scripts cannot read it
    shot(page, env, "pool")


def test_a_submitted_task_appears_live_and_its_diff_shows(env: Env, page: Any) -> None:
    page.evaluate("window.notReloaded = true")
    env.model.script([{"content": TWO_HUNKS}])
    task = env.submit("change first and last", ["big.py"])
    page.wait_for_selector(row(task.id, "REVIEW"))
    assert page.evaluate("window.notReloaded") is True  # it came over the event stream, not a reload
    assert "change first and last" in page.inner_text(f'tr.task[data-task="{task.id}"]')
    shot(page, env, "tasks")

    page.click(f'tr.task[data-task="{task.id}"] td.instr')
    page.wait_for_selector('.hunk[data-hunk="2"]')
    assert page.locator(".hunk").count() == 2
    assert "return 200" in page.inner_text('.hunk[data-hunk="2"]')
    assert page.locator(".hunk td.src span").count() > 0  # highlighted
    assert page.locator(".hunk tr.add").count() == 2 and page.locator(".hunk tr.del").count() == 2
    assert "change first and last" in page.inner_text("#task-head")
    shot(page, env, "task-unified")
    page.check('input[name="layout"][value="split"]')
    page.wait_for_selector("table.code.split")
    assert page.locator('.hunk[data-hunk="1"] td.src.add').inner_text().strip() == "return 100"
    shot(page, env, "task-split")
    page.check('input[name="layout"][value="unified"]')


def test_approving_hunk_2_alone_changes_exactly_that_hunk(env: Env, page: Any) -> None:
    (task,) = env.call(lambda c: c.list(p.TaskListParams(states=[p.TaskState.REVIEW])))
    assert page.url.endswith(f"#/task/{task.id}")
    page.check('input.choose[data-hunk="2"]')
    assert page.inner_text("#approve") == "Approve chosen"
    page.click("#approve")
    page.wait_for_selector('.hunk[data-hunk="2"][data-state="applied"]')
    assert page.locator('.hunk[data-hunk="1"][data-state="pending"]').count() == 1
    assert "applied hunk 2" in page.inner_text("#action-result")
    expected = BIG.replace("def last():\n    return 2\n", "def last():\n    return 200\n")
    assert (env.repo / "big.py").read_text() == expected
    assert env.call(lambda c: c.get(task.id)).state is p.TaskState.REVIEW  # hunk 1 still awaits review

    page.click("#reject")  # the rest of the task: hunk 1, leaving the file as it is
    page.wait_for_selector('.hunk[data-hunk="1"][data-state="rejected"]')
    assert "return 1\n" in (env.repo / "big.py").read_text()


def test_stale_and_conflict_marks_and_a_conflict_leaves_the_file_as_it_was(env: Env, page: Any) -> None:
    (env.repo / "conf.py").write_text(BIG)
    subprocess.run(["git", "add", "conf.py"], cwd=env.repo, check=True)
    env.model.script([{"content": TWO_HUNKS.replace("big.py", "conf.py")}])
    task = env.submit("change first and last of conf", ["conf.py"])
    assert env.call(lambda c: c.wait(task.id)).state is p.TaskState.REVIEW
    page.goto(env.web.base + f"/#/task/{task.id}")
    page.wait_for_selector('.hunk[data-hunk="2"]')
    assert page.locator(".hunk.is-stale").count() == 0

    mine = BIG.replace("def last():\n    return 2\n", "def last():\n    return 3\n")  # the user edits under hunk 2
    (env.repo / "conf.py").write_text(mine)
    page.wait_for_selector('.hunk.is-stale[data-hunk="2"]')  # live, from the daemon's watcher
    assert page.locator(".hunk.is-stale").count() == 1
    shot(page, env, "task-stale")

    page.click("#approve")
    page.wait_for_selector('.hunk.has-conflict[data-hunk="2"]')
    assert "CONFLICT" in page.inner_text("#action-result")
    assert "conflict" in page.inner_text('.hunk[data-hunk="2"] .hunk-head')
    assert (env.repo / "conf.py").read_text() == mine  # nothing written, hunk 1 included
    assert env.call(lambda c: c.get(task.id)).state is p.TaskState.CONFLICT
    shot(page, env, "task-conflict")
    page.click("#reject")
    page.wait_for_selector("#task-head .badge.s-rejected")


def test_a_job_groups_its_tasks(env: Env, page: Any) -> None:
    page.goto(env.web.base + "/#/")
    page.wait_for_selector("body[data-synced]")
    params = p.JobSubmitParams(workspace=str(env.repo), instruction="document these", files=["app.py", "util.py"])
    job = env.call(lambda c: c.submit_job(params))
    page.wait_for_selector(f'#jobs tr[data-job="{job.id}"]')
    done = env.call(lambda c: c.wait_job(job.id))
    assert done.state is p.JobState.REVIEW and len(done.task_ids) == 2
    page.wait_for_selector(f'#jobs tr[data-job="{job.id}"] .badge.s-review')
    page.click(f'#jobs tr[data-job="{job.id}"] a')
    page.wait_for_selector('#tasks tr.task >> nth=1')
    page.wait_for_selector("#tasks tr.task >> nth=2", state="detached")
    shown = {page.locator("#tasks tr.task").nth(i).get_attribute("data-task") for i in range(2)}
    assert shown == set(done.task_ids)
    shot(page, env, "job")
    env.call(lambda c: c.reject_job(p.JobReviewParams(job_id=job.id)))
    page.fill("#f-words", "")


def test_the_task_list_pages_and_filters_in_the_daemon(env: Env, page: Any) -> None:
    token = "token=" + env.web.token
    everything = [t.id for t in env.call(lambda c: c.list())]
    assert len(everything) >= 3
    seen: list[str] = []
    before = ""
    while True:  # two at a time, each page from the cursor the one before gave
        status, body = env.http(f"/api/tasks?n=2&{token}" + (f"&before={before}" if before else ""))
        data = json.loads(body)
        assert status == 200 and data["total"] == (None if before else len(everything))  # counted on page 1
        seen += [t["id"] for t in data["tasks"]]
        if not data["next"]:
            break
        before = data["next"]
    assert seen == everything  # every task once, newest first
    for query, words in (("before=nosuch", b"no task 'nosuch'"), ("state=BOGUS", b"bad request"),
                         ("model=" + "x" * 400, b"model")):
        status, body = env.http(f"/api/tasks?{query}&{token}")
        assert status == 400 and words in body, (query, status, body)

    page.goto(env.web.base + "/#/")
    page.wait_for_selector("body[data-synced]")
    page.select_option("#f-model", "openai/pasd-offline-b")  # offered from the config, no task uses it
    page.wait_for_selector("#tasks tr.task", state="detached")
    assert page.inner_text("#page-info").startswith("0 tasks")
    page.select_option("#f-model", "")
    page.fill("#f-words", everything[-1])  # the oldest task, by its id
    page.wait_for_function("() => document.querySelector('#page-info').textContent.startsWith('1 task ')")
    assert page.locator("#tasks tr.task").get_attribute("data-task") == everything[-1]
    page.fill("#f-words", "")
    page.wait_for_function("(n) => document.querySelectorAll('#tasks tr.task').length === n", arg=len(everything))


def test_a_cancelled_task_updates_live(env: Env, page: Any) -> None:
    page.goto(env.web.base + "/#/")
    page.wait_for_selector("body[data-synced]")
    env.model.set_rules(HANG)
    try:
        first = env.submit("hang one", ["app.py"])
        second = env.submit("hang two", ["util.py"])
        page.wait_for_selector(row(first.id, "RUNNING"))
        page.wait_for_selector(row(second.id, "RUNNING"))
        page.wait_for_selector('tr.programmer[data-state="BUSY"] >> nth=1')
        assert page.locator('tr.programmer[data-state="BUSY"] td:nth-child(5)').all_inner_texts() == ["native"] * 2
        status = env.call(lambda c: c.status())  # the header counts the daemon's tasks, not the page's
        page.wait_for_function("(want) => document.querySelector('#counts').textContent === want",
                               arg=f"queued {status.queued} · running 2 · review {status.review}")
        shot(page, env, "pool-busy")

        env.call(lambda c: c.cancel(first.id))  # from the client, as the CLI does
        page.wait_for_selector(row(first.id, "CANCELLED"))

        page.click(f'tr.task[data-task="{second.id}"] td.instr')  # and from the page
        page.wait_for_selector("#cancel:not([hidden])")
        page.click("#cancel")
        page.wait_for_selector("#task-head .badge.s-cancelled")
        assert env.call(lambda c: c.get(second.id)).state is p.TaskState.CANCELLED
    finally:
        env.model.set_rules([])


def test_the_charts_render_with_data(env: Env, page: Any) -> None:
    page.goto(env.web.base + "/#/receipts")
    page.wait_for_selector("body[data-charts]")
    for canvas in ("chart-cost", "chart-tokens", "chart-wall", "chart-rates"):
        drawn = page.evaluate("""(id) => {
            const c = document.getElementById(id), chart = Chart.getChart(c);
            const values = chart.data.datasets.flatMap((d) => d.data).filter((v) => v !== null && v !== 0);
            const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let ink = 0;
            for (let i = 3; i < px.length; i += 4) if (px[i] > 0) ink++;
            return {values: values.length, ink, legend: chart.legend.legendItems.length,
                    axes: Object.keys(chart.scales).length, w: c.width, h: c.height};
        }""", canvas)
        assert drawn["values"] > 0 and drawn["legend"] > 0 and drawn["axes"] == 2, (canvas, drawn)
        assert drawn["ink"] > 1000, (canvas, drawn)
    assert "receipts" in page.inner_text("#receipts-total")
    shot(page, env, "receipts")


def test_requests_without_the_token_get_403(env: Env) -> None:
    for path in ("/", "/api/state", "/api/tasks", "/api/receipts", "/events", "/static/app.js", "/code.css",
                 "/?token=wrong", "/api/state?token=" + env.web.token[:-1]):
        status, body = env.http(path)
        assert status == 403, (path, status)
        assert b"Forbidden" in body
    status, _ = env.http("/api/state?token=" + env.web.token)
    assert status == 200
    # a name rebound to 127.0.0.1 by someone else's DNS is refused even with the token
    status, body = env.http("/api/state?token=" + env.web.token, headers={"Host": "evil.example"})
    assert status == 403 and b"unknown host" in body


def test_cross_origin_and_csrf_less_posts_are_refused(env: Env, page: Any) -> None:
    task = env.submit("document add", ["app.py"])
    assert env.call(lambda c: c.wait(task.id)).state is p.TaskState.REVIEW
    before = (env.repo / "app.py").read_bytes()
    cookie = {"Cookie": f"pasd_web_{env.web.base.rsplit(':', 1)[1]}={env.web.token}"}
    csrf = page.get_attribute('meta[name="csrf-token"]', "content")
    own = {"Origin": env.web.base, "Content-Type": "application/json", **cookie}
    path = f"/api/task/{task.id}/approve"
    for headers, why in (({**own, "X-CSRF-Token": csrf, "Origin": "http://evil.example"}, b"cross-origin"),
                         ({**own, "X-CSRF-Token": csrf, "Origin": "null"}, b"cross-origin"),
                         ({**own, "X-CSRF-Token": csrf, "Origin": ""}, b"cross-origin"),
                         (own, b"CSRF"),
                         ({**own, "X-CSRF-Token": "0" * 64}, b"CSRF"),
                         ({"Origin": env.web.base, "X-CSRF-Token": csrf}, b"token")):
        status, body = env.http(path, method="POST", headers=headers, body=b"{}")
        assert status == 403 and why in body, (headers, status, body)

    # a page on another origin, in the same browser that holds the cookie, cannot approve either
    page.route("http://evil.test/", lambda route: route.fulfill(content_type="text/html", body="<p>evil</p>"))
    page.goto("http://evil.test/")
    outcome = page.evaluate("""async ([url, csrf]) => {
        for (const mode of ['cors', 'no-cors']) {
            try {
                await fetch(url, {method: 'POST', mode, credentials: 'include',
                                  headers: mode === 'cors'
                                      ? {'Content-Type': 'application/json', 'X-CSRF-Token': csrf} : {},
                                  body: '{}'});
            } catch (e) {}
        }
        return 'sent';
    }""", [env.web.base + path, csrf])
    assert outcome == "sent"
    assert env.call(lambda c: c.get(task.id)).state is p.TaskState.REVIEW
    assert (env.repo / "app.py").read_bytes() == before

    # while the page itself can (the same request, from its own origin)
    page.goto(env.web.base + f"/#/task/{task.id}")
    page.wait_for_selector('.hunk[data-hunk="1"]')
    page.click("#reject")
    page.wait_for_selector('.hunk[data-hunk="1"][data-state="rejected"]')
    assert env.call(lambda c: c.get(task.id)).state is p.TaskState.REJECTED


def test_no_endpoint_returns_a_provider_key(env: Env, page: Any) -> None:
    secret = "sk-web-test-0123456789abcdef"
    params = p.SubmitParams(workspace=str(env.repo), instruction="document mul", files=["util.py"],
                            keys={"OPENAI_API_KEY": secret})
    task = env.call(lambda c: c.submit(params))
    assert env.call(lambda c: c.wait(task.id)).state is p.TaskState.REVIEW
    seen = []
    for path in ("/api/state", "/api/tasks", f"/api/task/{task.id}", "/api/receipts"):
        status, body = env.http(path + ("&" if "?" in path else "?") + "token=" + env.web.token)
        assert status == 200, path
        seen.append(body.decode())
    assert all(secret not in text for text in seen)
    assert scrub({"keys": {"A": secret}, "provider": {"params": {"api_key": secret, "temperature": 0}},
                  "tokens": {"input": 1}}) == {"provider": {"params": {"temperature": 0}}, "tokens": {"input": 1}}


def test_the_page_follows_the_daemon_away_and_back(env: Env, page: Any) -> None:
    page.goto(env.web.base + "/#/")
    page.wait_for_selector("body[data-synced]")
    synced = page.get_attribute("body", "data-synced")
    env.daemon.kill()  # as a crash would (a clean stop waits for the cancelled tasks' model calls)
    page.wait_for_selector("#banner:not([hidden])")
    assert page.inner_text("#link") == "daemon unavailable"
    shot(page, env, "daemon-away")
    env.daemon.start()
    page.wait_for_selector("#banner", state="hidden")
    page.wait_for_selector(f'body[data-synced]:not([data-synced="{synced}"])')  # resynchronised since
    assert json.loads(env.http("/api/state?token=" + env.web.token)[1])["connected"] is True
    env.model.set_rules(HANG)  # events flow again: a task shows up live (and is cancelled at once)
    try:
        task = env.submit("hang three", ["app.py"])
        page.wait_for_selector(row(task.id, "RUNNING"))
        env.call(lambda c: c.cancel(task.id))
        page.wait_for_selector(row(task.id, "CANCELLED"))
    finally:
        env.model.set_rules([])
