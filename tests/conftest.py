"""Shared fixtures: the offline model, a real daemon on a temp socket, a git workspace."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from daemon.offline_model import OfflineModel
from daemon.testing import DaemonFactory, DaemonProcess, make_repo, offline_config

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
# Daemons started by the tests call the offline model through litellm's own HTTP path; the direct
# client pasd uses for OpenAI's wire is held to litellm's answers in test_provider_wire.py, and runs
# end to end there too.
os.environ.setdefault("PASD_PROVIDER_CLIENT", "litellm")

SAMPLE = {
    "app.py": "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n",
    "util.py": "def mul(a, b):\n    return a * b\n",
    "README.md": "# sample\n",
}


@pytest.fixture(scope="module")
def model() -> Iterator[OfflineModel]:
    """One offline model for a whole module, for modules whose daemons live as long (each daemon pays
    litellm's import once); such a module's own `offline` fixture resets it for each test."""
    with OfflineModel() as m:
        yield m


@pytest.fixture
def offline() -> Iterator[OfflineModel]:
    with OfflineModel() as model:
        yield model


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "ws", SAMPLE)


@pytest.fixture
def make_daemon(tmp_path: Path, offline: OfflineModel) -> Iterator[DaemonFactory]:
    """Start real daemons: make_daemon(workers=4, config={...extra sections...})."""
    started: list[DaemonProcess] = []

    def factory(workers: int = 4, start: bool = True, env: dict[str, str] | None = None,
                **extra: dict[str, Any]) -> DaemonProcess:
        root = tmp_path / f"daemon{len(started)}"
        root.mkdir()
        d = DaemonProcess(root, workers=workers, config=offline_config(offline.url, **extra), env=env)
        started.append(d)
        return d.start() if start else d

    yield factory
    for d in started:
        d.cleanup()


@pytest.fixture
def daemon(make_daemon: DaemonFactory) -> DaemonProcess:
    return make_daemon()
