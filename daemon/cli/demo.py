"""`pasd demo`: the whole flow on a small new repository, with no API key.

Starts the offline model on loopback, makes sure a daemon runs, submits four tasks in
parallel, shows progress, diffs and receipts, then approves two, rejects one and leaves one
in review for the user to try. The repository stays (its path is printed) unless `--clean`.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from daemon import protocol as p
from daemon.cli.lifecycle import running
from daemon.cli.output import table
from daemon.client import EventStream, PasClient, ensure_daemon
from daemon.config import OFFLINE_MODEL
from daemon.offline_model import OfflineModel
from daemon.testing import make_repo

FILES = {
    "shop/cart.py": "def total(prices):\n    return sum(prices)\n\n\ndef count(items):\n    return len(items)\n",
    "shop/tax.py": "RATE = 0.2\n\n\ndef with_tax(amount):\n    return amount * (1 + RATE)\n",
    "shop/format.py": "def money(x):\n    return f'{x:.2f}'\n",
    "shop/ship.js": "function cost(weight) {\n  return weight * 2;\n}\n",
}

TASKS = [
    ("shop/cart.py", (1, 2), "add type hints"),
    ("shop/tax.py", (4, 5), "document the rounding rule"),
    ("shop/format.py", (1, 2), "support a currency symbol"),
    ("shop/ship.js", (1, 3), "explain the shipping formula"),
]


async def run_demo(args: argparse.Namespace) -> int:
    root = Path(tempfile.mkdtemp(prefix="pasd-demo-"))
    repo = make_repo(root / "shop-repo", FILES)
    # an uncommitted edit: tasks see the user's tree as it is, not just what git has
    cart = repo / "shop/cart.py"
    cart.write_text(cart.read_text() + "\n\ndef empty(items):\n    return not items\n")
    print(f"demo repository: {repo}")
    already = await running()
    with OfflineModel(latency=0.6) as model:
        hello = await ensure_daemon(quiet=True)
        print(f"pasd {'was already running' if already else 'started'} (pid {hello.pid}, {hello.socket})")
        async with PasClient(name="demo") as c, EventStream(c.socket, kinds=["task", "progress"]) as events:
            ids = []
            for path, (a, b), instruction in TASKS:
                task = await c.submit(p.SubmitParams(
                    workspace=str(repo), instruction=instruction, files=[path], model=OFFLINE_MODEL,
                    api_base=model.url, selection=p.Selection(path=path, start_line=a, end_line=b)))
                ids.append(task.id)
                print(f"submitted {task.id}: {instruction} ({path})")
            done: dict[str, p.TaskInfo] = {}
            async for env in events:
                ev = env.event
                if isinstance(ev, p.ProgressEvent) and ev.task_id in ids:
                    print(f"  {ev.task_id} {ev.phase:8} {ev.message}")
                elif isinstance(ev, p.TaskEvent) and ev.task.id in ids and not ev.task.state.active:
                    done[ev.task.id] = ev.task
                    if len(done) == len(ids):
                        break
            for task_id in ids:
                task = done[task_id]
                print(f"\n== {task_id} {task.state.value} on {task.programmer}: {task.instruction}")
                if task.state is p.TaskState.REVIEW:
                    print((await c.diff(task_id)).diff.rstrip())
                else:
                    print(f"  {task.reason}: {task.error}")
            receipts = [r for r in await c.receipts() if r.task_id in ids]
            print("\n" + table([[r.task_id, r.programmer, str(r.tokens.input), str(r.tokens.output),
                                 f"{r.cost_usd:.6f}", f"{r.wall_s:.2f}", f"+{r.lines_added}/-{r.lines_removed}"]
                                for r in receipts],
                               ["TASK", "PROGRAMMER", "TOK IN", "TOK OUT", "COST USD", "SECONDS", "LINES"]))
            reviewable = [i for i in ids if done[i].state is p.TaskState.REVIEW]
            for task_id in reviewable[:2]:
                res = await c.approve(p.ReviewParams(task_id=task_id))
                print(f"approved {task_id}: {res.task.state.value}")
            for task_id in reviewable[2:3]:
                res = await c.reject(p.ReviewParams(task_id=task_id))
                print(f"rejected {task_id}: {res.task.state.value}")
            left = reviewable[3:]
            if args.clean:  # nothing may stay in review pointing at a repository that is gone
                for task_id in left:
                    await c.reject(p.ReviewParams(task_id=task_id))
    print(f"\nshop/cart.py now:\n{cart.read_text()}")
    if args.clean:
        shutil.rmtree(root, ignore_errors=True)
        print(f"removed the demo repository ({repo})")
    else:
        print(f"The demo repository stays at {repo} (`rm -rf {root}` removes it).")
        for task_id in left:
            print(f"Task {task_id} is still in review: `pasd diff {task_id}`, then `pasd approve {task_id}` "
                  f"or `pasd reject {task_id}`; or review it in `pas-tui`.")
    print(f"The daemon keeps running (pid {hello.pid}): `pasd status` shows the pool, `pasd stop` stops it.")
    print("Next: `pasd tasks`, `pasd receipts`, `pas-tui`, or `pasd submit --help` with a real model; "
          "`pasd offline-model` serves the offline model for trying the editors.")
    sys.stdout.flush()
    return 0 if len(reviewable) == len(ids) else 1
