"""pas-lsp as a separate process over stdio (pytest-lsp), against a real daemon and the offline model.

The offline model and the daemon are shared by the tests of a module (the daemon's first task pays
for importing litellm once); each test gets its own git workspace and its own server process.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from lsp_helpers import APP, REPO_ROOT, start_client, wait_until
from pytest_lsp import LanguageClient

from daemon.offline_model import OfflineModel
from daemon.testing import DaemonProcess, make_repo, offline_config


@pytest.fixture(scope="module")
def offline_model() -> Iterator[OfflineModel]:
    with OfflineModel() as model:
        yield model


@pytest.fixture(scope="module")
def pasd(offline_model: OfflineModel, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    root = tmp_path_factory.mktemp("daemon")
    d = DaemonProcess(root, workers=2, config=offline_config(offline_model.url),
                      env={"PYTHONPATH": str(REPO_ROOT)})
    d.start()
    yield d
    d.cleanup()


@pytest.fixture
def offline(offline_model: OfflineModel) -> OfflineModel:
    offline_model.reset()
    return offline_model


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "ws", {"app.py": APP, "util.py": "def mul(a, b):\n    return a * b\n"})


@pytest_asyncio.fixture
async def client(pasd: DaemonProcess, workspace: Path, offline: OfflineModel) -> AsyncIterator[LanguageClient]:
    c = await start_client(pasd, workspace)
    await wait_until(lambda: c.statuses, "the first pas/status")  # type: ignore[attr-defined]
    yield c
    await c.shutdown_session()
