"""A real daemon on a temporary socket, for the tests, the benchmarks and `pasd demo`.

Nothing here fakes anything: the daemon is a separate process started from this Python,
and tasks reach `daemon/offline_model.py` through litellm's HTTP path.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from daemon import crashpoints
from daemon.client import EventStream, PasClient
from daemon.config import OFFLINE_MODEL
from daemon.protocol import SubmitParams, TaskEvent, TaskState


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):  # an inline table: keys quoted, so model strings with '/' work
        return "{" + ", ".join(f"{toml_value(str(k))} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def write_config(path: Path, sections: dict[str, dict[str, Any]]) -> Path:
    """Write a small TOML file: {"pool": {...}, 'models.settings."openai/x"': {...}}."""
    lines = []
    for name, values in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in values.items()]
        lines.append("")
    path.write_text("\n".join(lines))
    return path


def offline_config(api_base: str, **extra: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Config that makes the offline model the default, priced so receipts carry real costs."""
    sections: dict[str, dict[str, Any]] = {
        "models": {"default": OFFLINE_MODEL, "choices": [OFFLINE_MODEL, "openai/pasd-offline-b"]},
        f'models.settings."{OFFLINE_MODEL}"': {"api_base": api_base, "input_cost_per_token": 1e-6,
                                                "output_cost_per_token": 2e-6},
        'models.settings."openai/pasd-offline-b"': {"api_base": api_base},
        "pool": {"health_check_delay_s": 0.2, "retry_backoff_s": 0.1},
    }
    for name, values in extra.items():
        sections[name] = {**sections.get(name, {}), **values}
    return sections


class DaemonProcess:
    """Start, stop, kill and restart a real `pasd serve` with its own socket and state dir."""

    def __init__(self, root: Path | None = None, *, workers: int = 4,
                 config: dict[str, dict[str, Any]] | None = None, env: dict[str, str] | None = None,
                 sock_parent: str = "/tmp", wrap: list[str] | None = None) -> None:
        # Unix socket paths are limited to ~107 bytes: keep the socket under a short dir.
        self.sock_dir = Path(tempfile.mkdtemp(prefix="pasd-", dir=sock_parent))
        self.root = root or self.sock_dir
        self.socket = self.sock_dir / "pasd.sock"
        self.state_dir = self.root / "state"
        self.config_file = self.root / "config.toml"
        self.workers = workers
        self.wrap = wrap or []  # a command the daemon runs under (e.g. setpriv dropping capabilities)
        if config is not None:
            write_config(self.config_file, config)
        self.env = {**os.environ, "PASD_SOCKET": str(self.socket), "PASD_STATE_DIR": str(self.state_dir),
                    "PASD_CONFIG": str(self.config_file), "LITELLM_LOCAL_MODEL_COST_MAP": "True",
                    **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = self.root / "daemon.log"

    def start(self, timeout: float = 30.0) -> DaemonProcess:
        argv = [*self.wrap, sys.executable, "-m", "daemon", "serve", "--workers", str(self.workers)]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(argv, env=self.env, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            if self.answers():
                return self
            time.sleep(0.02)
        raise RuntimeError(f"daemon did not answer in {timeout} s:\n{self.log.read_text()[-3000:]}")

    def answers(self) -> bool:
        """Does a daemon answer `hello` on the socket? (blocking; usable inside or outside a loop)"""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(5)
                s.connect(str(self.socket))
                s.sendall(b'{"jsonrpc":"2.0","id":1,"method":"hello","params":{}}\n')
                return b'"result"' in s.makefile("rb").readline()
        except OSError:
            return False

    def client(self) -> PasClient:
        return PasClient(self.socket, name="test")

    def stop(self, timeout: float = 20.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        code = self.proc.returncode
        self.proc = None
        return code

    def kill(self) -> None:
        """SIGKILL the daemon (and anything in its process group), as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        self.proc = None

    def restart(self) -> DaemonProcess:
        self.stop()
        return self.start()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.sock_dir, ignore_errors=True)


GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}



def inotify_watches(pid: int) -> int:
    """How many inotify watches a process holds (the kernel lists each in its fdinfo)."""
    count = 0
    for info in Path(f"/proc/{pid}/fdinfo").iterdir():
        try:
            count += sum(line.startswith("inotify wd:") for line in info.read_text().splitlines())
        except OSError:  # an fd closed meanwhile
            continue
    return count

def write_files(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode())


def commit_all(root: Path, message: str) -> None:
    env = {**os.environ, **GIT_ENV}
    subprocess.run(["git", "add", "-A"], cwd=root, check=True, env=env)
    subprocess.run(["git", "commit", "-q", "-m", message], cwd=root, check=True, env=env)


def make_repo(root: Path, files: dict[str, str], *, commit: bool = True) -> Path:
    """A git repository with these files committed (as a user's workspace)."""
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True, env={**os.environ, **GIT_ENV})
    write_files(root, files)
    if commit:
        commit_all(root, "initial")
    return root


def add_modules(repo: Path, n: int, *, commit: bool = True) -> list[str]:
    """`src/mod0.py` .. `src/mod{n-1}.py`, one small function each (a folder for a job)."""
    files = {f"src/mod{i}.py": f"def f{i}(x):\n    return x + {i}\n" for i in range(n)}
    write_files(repo, files)
    if commit:
        commit_all(repo, "src")
    return list(files)


DaemonFactory = Callable[..., DaemonProcess]


# A file of 14 functions, and a reply changing its first and last: two hunks far enough apart to
# be reviewed one by one.
TWO_HUNKS = """Two separate changes.

big.py
```python
<<<<<<< SEARCH
def first():
    return 1
=======
def first():
    return 100
>>>>>>> REPLACE
```

big.py
```python
<<<<<<< SEARCH
def last():
    return 2
=======
def last():
    return 200
>>>>>>> REPLACE
```
"""

BIG = "def first():\n    return 1\n" + "".join(f"\n\ndef f{i}():\n    return {i}\n" for i in range(12)) + \
      "\n\ndef last():\n    return 2\n"


def block(path: str, search: str, replace: str) -> str:
    """One SEARCH/REPLACE edit block as a model writes it (for scripting the offline model)."""
    return f"{path}\n```\n<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n```\n"


FAKE_AIDER = r"""#!/bin/sh
[ "$1" = "--version" ] && { echo "aider 0.86.2"; exit 0; }
msg=""
while [ $# -gt 0 ]; do
  case "$1" in --message) msg="$2"; shift 2 ;; --) shift; break ;; *) shift ;; esac
done
first=$(printf '%s\n' "$msg" | head -n 1)
for f in "$@"; do
  { printf '# aider: %s\n' "$first"; cat "$f"; } > "$f.pasd-new" && cat "$f.pasd-new" > "$f" && rm "$f.pasd-new"
done
"""


def fake_aider(folder: Path) -> Path:
    """A stand-in `aider` for `[engines.aider] path`: answers --version, and puts "# aider: <the first
    line of its message>" atop each file it is given."""
    folder.mkdir(parents=True, exist_ok=True)
    exe = folder / "aider"
    exe.write_text(FAKE_AIDER)
    exe.chmod(0o755)
    return exe


async def paused(d: DaemonProcess, name: str, request: asyncio.Task[Any], timeout: float = 30) -> Path:
    """Wait until the daemon holds at pause point `name` (`PASD_PAUSE_AT`); its marker file (remove
    it to let the daemon go on). Fails at once if `request` ends before the daemon gets there."""
    held = crashpoints.marker(d.state_dir, name)
    deadline = time.monotonic() + timeout
    while not held.exists():
        assert not request.done(), request.result()
        assert time.monotonic() < deadline, f"the daemon never reached {name}"
        await asyncio.sleep(0.01)
    return held


async def occupy(c: PasClient, events: EventStream, repo: Path) -> str:
    """Submit a task to `repo` and wait until a programmer runs it (script the model to hang first):
    with one programmer, what is submitted next stays queued until this task is cancelled."""
    task = await c.submit(SubmitParams(workspace=str(repo), instruction="hang", files=["app.py"]))
    await until_state(events, task.id, TaskState.RUNNING)
    return task.id


async def until_state(events: EventStream, task_id: str, state: TaskState) -> None:
    """Read an event stream until task `task_id` reaches `state`."""
    async for env in events:
        ev = env.event
        if isinstance(ev, TaskEvent) and ev.task.id == task_id and ev.task.state is state:
            return


RAY_NODE_ARGS: dict[str, Any] = {"num_cpus": 1, "memory": 2 * 2**30, "object_store_memory": 100 * 2**20}


@contextmanager
def ray_cluster(tmp: Path, worker: str = "worker-1") -> Iterator[tuple[Any, Any]]:
    """A Ray head and one worker node offering the `programmer` resource, token auth on; yields
    (cluster, worker node). Run it inside a private network namespace (scripts/test-ray.sh): a
    starting Ray head probes outside addresses. `tmp` should be short, as Ray's socket paths are
    length-limited. The settings go into this process's environment, where the daemons started
    meanwhile (and Ray's own processes) find them, and are restored afterwards.
    """
    import secrets

    env = {
        "RAY_TMPDIR": str(tmp), "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16),
        "PASD_NODE_DIR": str(tmp / "node"),  # the nodes' own setting, inherited by their workers
        "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[1]),
                                                    os.environ.get("PYTHONPATH")])),
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        # Ray reads its settings (token auth among them) from the environment when first imported.
        from ray.cluster_utils import Cluster

        cluster = Cluster(initialize_head=True, head_node_args={**RAY_NODE_ARGS, "include_dashboard": False})
        try:
            yield cluster, cluster.add_node(**RAY_NODE_ARGS, resources={"programmer": 1}, node_name=worker)
        finally:
            cluster.shutdown()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
