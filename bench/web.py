"""pasd web: first paint with 1,000 tasks in the store, and the delay from a daemon event to the page.

A store is filled with a year of tasks and receipts (history.py's `fill`), a real daemon serves it,
`pasd web` runs as its own process, and Debian's Chromium (driven by playwright) opens the page.
First paint: from `page.goto` to the pool and the first page of tasks drawn (the page's first
resync done). Event delay: tasks run against the offline model while the page is open; for every
event the page receives, its arrival time minus the daemon's own timestamp on the event (one
machine, one clock).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import shutil
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from common import Report, pct, run_script
from history import fill

from daemon import protocol as p
from daemon.client import EventStream, PasClient
from daemon.offline_model import OfflineModel
from daemon.testing import DaemonProcess, make_repo, offline_config
from pas_web.testing import WebProcess

CHROMIUM = "/usr/bin/chromium"
HANG = [{"match": r"### INSTRUCTION\nhang\b", "fault": "hang", "latency": 60}]


async def run_tasks(socket: Path, repo: Path, n: int, *, cancel: bool = False) -> list[float]:
    """Run n tasks (or, with `cancel`, submit n behind a programmer kept busy and cancel them while queued:
    events without waiting for the daemon's first model call); the delays (ms) a plain socket subscriber
    saw meanwhile, the page's floor."""
    delays: list[float] = []

    async def listen(stream: EventStream) -> None:
        async for env in stream:
            delays.append((time.time() - env.time) * 1000)

    async with PasClient(socket, name="bench") as c, EventStream(socket) as stream:
        listener = asyncio.create_task(listen(stream))
        what = "hang" if cancel else "document add"
        ids = [(await c.submit(p.SubmitParams(workspace=str(repo), instruction=f"{what} {i}",
                                              files=[f"m{i % 8}.py"]))).id for i in range(n)]
        for task_id in ids:
            await (c.cancel(task_id) if cancel else c.wait(task_id))
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
    return delays


async def submit(socket: Path, params: p.SubmitParams) -> None:
    async with PasClient(socket, name="bench") as c:
        await c.submit(params)


def screens(page: Any, web: WebProcess, d: DaemonProcess, repo: Path, model: OfflineModel, out: Path) -> None:
    """The README's picture: the pool at work, a task's diff, the filtered list and the receipts."""
    model.set_latency(3.0)
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(asyncio.run, run_tasks(d.socket, repo, 6))
        page.goto(web.base + "/#/")
        page.wait_for_selector('tr.programmer[data-state="BUSY"] >> nth=3', timeout=60_000)
        page.wait_for_timeout(1500)  # let the elapsed times tick
        page.screenshot(path=str(out / "pool.png"))
        running.result()
    model.set_latency(0.0)
    page.select_option("#f-state", "REVIEW")
    page.select_option("#f-model", "anthropic/claude-sonnet-4-5")
    page.wait_for_selector('#tasks tr.task[data-state="REVIEW"]')
    page.wait_for_timeout(1000)  # the list reloads for each filter
    page.screenshot(path=str(out / "filtered.png"))
    page.click("#tasks tr.task >> nth=0")
    page.wait_for_selector(".hunk")
    page.check('input[name="layout"][value="split"]')
    page.check('input.choose >> nth=0')
    page.screenshot(path=str(out / "review.png"))
    tiles = "".join(f'<img src="data:image/png;base64,{base64.b64encode((out / n).read_bytes()).decode()}">'
                    for n in ("pool.png", "review.png", "filtered.png", "receipts.png"))
    sheet = page
    sheet.set_viewport_size({"width": 2800, "height": 1800})
    sheet.set_content('<style>body{margin:0;display:grid;grid-template-columns:1fr 1fr;gap:0;background:#888}'
                      'img{width:1400px;height:900px;display:block;outline:1px solid #888}</style>' + tiles)
    sheet.screenshot(path=str(out / "web-2x.png"))
    sheet.set_viewport_size({"width": 1400, "height": 900})
    sheet.set_content('<style>body{margin:0;display:grid;grid-template-columns:1fr 1fr;background:#888}'
                      'img{width:700px;height:450px;display:block}</style>' + tiles)
    sheet.screenshot(path=str(out / "web.png"))


def main(args: argparse.Namespace) -> Report:
    n = args.tasks or (200 if args.quick else 1_000)
    runs, events_tasks = (1, 8) if args.quick else (5, 100)
    T0 = time.perf_counter()
    mark = lambda what: print(f"    [{time.perf_counter() - T0:.1f} s] {what}", flush=True) if args.verbose else None
    r = Report(f"web: `pasd web` in Chromium, {n:,} tasks in the store")
    if not Path(CHROMIUM).exists():
        r.add("first paint", None, note="no /usr/bin/chromium")
        return r
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="pasd-web-"))
    try:
        with OfflineModel() as model:
            d = DaemonProcess(tmp, workers=1 if args.quick else 4, config=offline_config(model.url))
            d.state_dir.mkdir(parents=True)
            fill(d.state_dir, tmp / "workspaces", n)
            mark("filled")
            d.start()
            mark("daemon up")
            repo = make_repo(tmp / "ws", {f"m{i}.py": f"def f{i}(x):\n    return x + {i}\n" for i in range(8)})
            t0 = time.perf_counter()
            web = WebProcess(d.socket, tmp / "web.log").start()
            while not json.load(urllib.request.urlopen(f"{web.base}/api/state?token={web.token}"))["connected"]:
                time.sleep(0.01)
            r.add("`pasd web` start to synced with the daemon", time.perf_counter() - t0, "s",
                  note="holds the pool and jobs; task pages come from the daemon")
            api = f"{web.base}/api/tasks?token={web.token}"
            pages, before, took, total = 0, "", [], 0
            while pages < 20:  # the older pages, by cursor, as the page's "older" button reads them
                t0 = time.perf_counter()
                data = json.load(urllib.request.urlopen(api + (f"&before={before}" if before else "")))
                took.append((time.perf_counter() - t0) * 1000)
                pages, before, total = pages + 1, data["next"], data["total"] or total
                if not before:
                    break
            r.add("a page of tasks from `pasd web` (/api/tasks, by cursor) p50", pct(took, 50), "ms",
                  note=f"{pages} pages of 50 of {total:,}; max {max(took):.1f} ms")
            # the daemon's first task pays for importing litellm: let that happen while the browser works
            warm_pool = ThreadPoolExecutor(1)
            if args.quick:  # its one programmer hangs on a first task; the measured ones queue behind it
                model.set_rules(HANG)
                blocker = p.SubmitParams(workspace=str(repo), instruction="hang", files=["m0.py"])
                warm = warm_pool.submit(asyncio.run, submit(d.socket, blocker))
            else:
                warm = warm_pool.submit(asyncio.run, run_tasks(d.socket, repo, 1))
            try:
                with sync_playwright() as pw:
                    browser = pw.chromium.launch(executable_path=CHROMIUM,
                                                 args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
                    mark("browser up")
                    paints = []
                    for i in range(runs + (0 if args.quick else 1)):  # a first visit warms Chromium's caches
                        page = browser.new_page(viewport={"width": 1400, "height": 900})
                        t0 = time.perf_counter()
                        page.goto(web.url)
                        page.wait_for_selector("body[data-synced] tr.task", timeout=60_000)
                        if i or args.quick:
                            paints.append(time.perf_counter() - t0)
                        page.close()
                    r.add("first paint: pool and the first page of tasks", pct(paints, 50), "s", ("<=", 1.0),
                          note=f"median of {runs}; max {max(paints):.3f} s")
                    page = browser.new_page(viewport={"width": 1400, "height": 900})
                    page.goto(web.url)
                    page.wait_for_selector("body[data-synced] tr.task", timeout=60_000)
                    t0 = time.perf_counter()
                    page.goto(web.base + "/#/receipts")
                    page.wait_for_selector("body[data-charts]", timeout=60_000)
                    r.add("receipts charts drawn", time.perf_counter() - t0, "s",
                          note=f"{page.get_attribute('body', 'data-charts')} receipts")
                    if args.screens:
                        args.screens.mkdir(parents=True, exist_ok=True)
                        page.screenshot(path=str(args.screens / "receipts.png"))
                    page.goto(web.base + "/#/")
                    page.wait_for_selector("body[data-synced] tr.task")
                    mark("charts")
                    warm.result()
                    warm_pool.shutdown()
                    mark("warm")
                    page.evaluate("window.pasd.delays = []")
                    # the browser's own floor: a page of the same origin that only listens
                    bare = browser.new_page()
                    bare.goto(web.url)
                    bare.goto(web.base + "/code.css")
                    bare.evaluate("""() => { window.delays = []; const es = new EventSource('/events');
                        es.onmessage = (m) => { const x = JSON.parse(m.data);
                                                if (x.time) window.delays.push(Date.now() - x.time * 1000); }; }""")
                    with ThreadPoolExecutor(1) as pool:  # playwright's loop holds this thread
                        floor = pool.submit(asyncio.run, run_tasks(d.socket, repo, events_tasks,
                                                                   cancel=args.quick)).result()
                    page.wait_for_selector(f"#tasks tr.task >> nth={min(events_tasks, 50) - 1}")
                    mark("tasks ran")
                    both = page.evaluate("window.pasd.delays")
                    delays, hub = [d[0] for d in both], [d[1] for d in both]
                    r.add("daemon event to page p50", pct(delays, 50), "ms",
                          note=f"{len(delays)} events from {events_tasks} tasks")
                    r.add("daemon event to page p95", pct(delays, 95), "ms", ("<=", 100.0))
                    r.add("of which daemon event to `pasd web` sending it, p50", pct(hub, 50), "ms",
                          note=f"p95 {pct(hub, 95):.1f} ms")
                    bare_delays = bare.evaluate("window.delays")
                    r.add("the same events to a bare EventSource page p50 (the browser's floor)", pct(bare_delays, 50),
                          "ms", note=f"p95 {pct(bare_delays, 95):.1f} ms")
                    r.add("the same events to a plain socket subscriber p50 (the floor)", pct(floor, 50), "ms",
                          note=f"p95 {pct(floor, 95):.1f} ms; load {os.getloadavg()[0]:.2f}")
                    if args.screens:
                        screens(page, web, d, repo, model, args.screens)
                    browser.close()
            finally:
                web.stop()
                if args.quick:
                    d.kill()  # a clean stop would wait for the hung model calls of the cancelled tasks
                d.cleanup()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return r


def add_args(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--tasks", type=int, help="tasks in the store (default 1,000; --quick 200, and its events come "
                                              "from tasks cancelled at once rather than run)")
    ap.add_argument("--verbose", action="store_true", help="print where the time goes")
    ap.add_argument("--screens", type=Path, help="save screenshots of the pages here")


if __name__ == "__main__":
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    run_script(__doc__.splitlines()[0], main, add_args)
