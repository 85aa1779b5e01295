"""Shipping a workspace to a node: the rebuilt workspace holds what the local snapshot sees,
bundles are incremental, a node that lost its mirror asks for the whole history, and the
user's repository is never written. No Ray needed: this is what travels through it.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from daemon.backends.shipment import Mirrors, NeedsFullBundle, Packer, Shipment, Staged
from daemon.offline_model import OfflineModel
from daemon.programmer.engine import run_task
from daemon.programmer.spec import ModelSpec, TaskSpec
from daemon.testing import make_repo

SAMPLE = {"app.py": "def add(a, b):\n    return a + b\n", "lib/util.py": "X = 1\n", ".gitignore": "*.log\n"}


def spec(workspace: Path, tmp: Path, files: list[str], **kw: object) -> TaskSpec:
    return TaskSpec.model_validate({
        "task_id": "t1", "run_id": "r", "attempt": 1, "programmer": "Programmer-01", "workspace": str(workspace),
        "instruction": "note it", "files": files, "model": {"model": "openai/pasd-offline"},
        "worktrees_dir": str(tmp / "snapshots"), **kw})


def tree(root: Path) -> dict[str, bytes | str]:
    """Every file under root but .git: contents, or a link's target."""
    out: dict[str, bytes | str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        for name in filenames:
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            out[rel] = f"-> {os.readlink(path)}" if path.is_symlink() else path.read_bytes()
    return out


def git_state(repo: Path) -> str:
    return subprocess.run(["git", "for-each-ref"], cwd=repo, capture_output=True, text=True, check=True).stdout + \
        subprocess.run(["git", "worktree", "list"], cwd=repo, capture_output=True, text=True, check=True).stdout


@pytest.fixture
def dirty(tmp_path: Path) -> Path:
    repo = make_repo(tmp_path / "ws", SAMPLE)
    (repo / "app.py").write_text(SAMPLE["app.py"] + "# changed, not committed\n")
    (repo / "lib" / "new.py").write_text("NEW = 2\n")  # untracked
    (repo / "run.sh").write_text("#!/bin/sh\necho ok\n")
    (repo / "run.sh").chmod(0o755)
    os.symlink("app.py", repo / "link.py")
    (repo / "debug.log").write_text("ignored\n")
    return repo


async def stage(ship: Shipment, mirrors: Mirrors, dest: Path, slot: str = "Programmer-01") -> Staged:
    return await mirrors.unpack(ship, dest.parent, slot, dest.name)


async def test_the_node_rebuilds_the_workspace_as_the_user_has_it(dirty: Path, tmp_path: Path) -> None:
    before = git_state(dirty)
    packer, mirrors = Packer(tmp_path / "ship"), Mirrors(tmp_path / "node")
    task = spec(dirty, tmp_path, ["app.py", "lib/gone.py"], check="sh run.sh")  # a check needs the tree
    ship = await packer.pack(task, {})
    assert ship.bundle and ship.repo and ship.commit
    staged = await stage(ship, mirrors, tmp_path / "stages" / "t1-1")
    expected = {k: v for k, v in tree(dirty).items() if k != "debug.log"}  # ignored files stay home
    assert tree(staged.workspace) == expected
    assert os.access(staged.workspace / "run.sh", os.X_OK) and (staged.workspace / "link.py").is_symlink()
    await staged.remove()
    assert staged.dir.exists()  # the programmer's staged repository waits for its next task
    # that next task finds it reset to the user's tree as it is then
    (dirty / "lib" / "new.py").unlink()
    (dirty / "lib" / "util.py").write_text("X = 2\n")
    (dirty / "later.txt").write_text("later\n")
    again = await stage(await packer.pack(task, {ship.repo: [ship.commit]}), mirrors, tmp_path / "stages" / "t2-1")
    assert again.dir == staged.dir
    assert tree(again.workspace) == {k: v for k, v in tree(dirty).items() if k != "debug.log"}
    assert git_state(dirty) == before  # no ref, no worktree left in the user's repository


async def test_untracked_files_travel_only_when_a_check_or_an_allowlist_may_read_them(dirty: Path,
                                                                                      tmp_path: Path) -> None:
    ship = await Packer(tmp_path / "ship").pack(spec(dirty, tmp_path, ["app.py"], snapshot="worktree"), {})
    assert ship.repo and ship.untracked == {} and set(ship.files) == {"app.py"}


async def test_a_task_the_engine_copies_travels_as_files(dirty: Path, tmp_path: Path) -> None:
    # `auto` without a check is a files-only copy: no history to ship; allowlisted files as git lists them
    ship = await Packer(tmp_path / "ship").pack(spec(dirty, tmp_path, ["app.py"], allow_files=["lib/*", "*.log"]), {})
    assert ship.repo is None and ship.bundle is None
    assert set(ship.files) == {"app.py", "lib/util.py", "lib/new.py"}  # debug.log is ignored
    assert ship.files["app.py"].data == (dirty / "app.py").read_bytes()


async def test_bundles_are_incremental_and_a_wiped_node_asks_for_everything(dirty: Path, tmp_path: Path) -> None:
    packer, mirrors = Packer(tmp_path / "ship"), Mirrors(tmp_path / "node")
    task = spec(dirty, tmp_path, ["app.py"], snapshot="reuse")
    first = await packer.pack(task, {})
    assert first.repo and first.commit
    await (await stage(first, mirrors, tmp_path / "s1")).remove()
    (dirty / "app.py").write_text("changed again\n")
    second = await packer.pack(task, {first.repo: [first.commit]})
    assert second.bundle and first.bundle and second.commit != first.commit
    assert b"\n-" in second.bundle.split(b"\n\n", 1)[0]  # the bundle names prerequisites
    staged = await stage(second, mirrors, tmp_path / "s2")
    assert (staged.workspace / "app.py").read_text() == "changed again\n"
    await staged.remove()
    with pytest.raises(NeedsFullBundle):
        await stage(second, Mirrors(tmp_path / "other-node" / "mirrors"), tmp_path / "other-node" / "s3")
    # a clean tree ships HEAD; once the node has it, only the files travel, and a node without it asks
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qam", "more"], cwd=dirty,
                   check=True)
    full = await packer.pack(task, {})
    await (await stage(full, mirrors, tmp_path / "s3")).remove()
    light = await packer.pack(task, {full.repo or "": [full.commit or ""]})
    assert light.commit == full.commit and light.bundle is None
    await (await stage(light, mirrors, tmp_path / "s4")).remove()
    with pytest.raises(NeedsFullBundle):
        await stage(light, Mirrors(tmp_path / "third-node" / "mirrors"), tmp_path / "third-node" / "s5")


async def test_a_workspace_in_a_subdirectory_of_the_repository(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "ws", {"pkg/a.py": "A = 1\n", "top.py": "T = 1\n"})
    ship = await Packer(tmp_path / "ship").pack(spec(repo / "pkg", tmp_path, ["a.py"], snapshot="worktree"), {})
    assert ship.subdir == "pkg"
    staged = await stage(ship, Mirrors(tmp_path / "node"), tmp_path / "stage")
    assert (staged.workspace / "a.py").read_text() == "A = 1\n" and (staged.dir / "top.py").exists()
    await staged.remove()


async def test_a_workspace_without_git_travels_as_its_task_and_allowlisted_files(tmp_path: Path) -> None:
    ws = tmp_path / "plain"
    (ws / "docs").mkdir(parents=True)
    (ws / "a.txt").write_text("a\n")
    (ws / "docs" / "b.md").write_text("b\n")
    (ws / "other.txt").write_text("no\n")
    ship = await Packer(tmp_path / "ship").pack(spec(ws, tmp_path, ["a.txt"], allow_files=["docs/*"]), {})
    assert ship.repo is None and set(ship.files) == {"a.txt", "docs/b.md"}
    staged = await stage(ship, Mirrors(tmp_path / "node"), tmp_path / "stage")
    assert tree(staged.workspace) == {"a.txt": b"a\n", "docs/b.md": b"b\n"}
    await staged.remove()
    assert not staged.dir.exists()  # a files-only stage belongs to its attempt


async def test_the_engine_gives_the_same_result_on_the_rebuilt_workspace(dirty: Path, tmp_path: Path,
                                                                          offline: OfflineModel) -> None:
    model = ModelSpec(model="openai/pasd-offline", api_base=offline.url)
    here = spec(dirty, tmp_path / "here", ["app.py"], model=model.model_dump(), check="sh run.sh",
                allow_commands=["sh run.sh"])
    ship = await Packer(tmp_path / "ship").pack(here, {})
    staged = await stage(ship, Mirrors(tmp_path / "node"), tmp_path / "stage")
    there = here.model_copy(update={"workspace": str(staged.workspace),
                                    "worktrees_dir": str(tmp_path / "there" / "snapshots")})
    local = await run_task(here, lambda phase, msg: None)
    remote = await run_task(there, lambda phase, msg: None)
    await staged.remove()
    assert remote.changes == local.changes and local.changes
    volatile = {"wall_s", "llm_s", "created_at"}
    assert remote.receipt.model_dump(exclude=volatile) == local.receipt.model_dump(exclude=volatile)
    assert local.receipt.check == "passed"
