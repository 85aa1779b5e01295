"""A workspace whose .pas.toml has settings the daemon ignores gets one warning, with the command that trusts it."""

from __future__ import annotations

from pathlib import Path

from lsp_helpers import delegate_and_review, execute, open_doc, r, start_client, wait_until
from lsprotocol import types as lsp

from daemon.offline_model import OfflineModel
from daemon.testing import DaemonProcess


async def test_one_warning_per_untrusted_workspace(pasd: DaemonProcess, workspace: Path, offline: OfflineModel) -> None:
    (workspace / ".pas.toml").write_text('[guardrails]\nallow_commands = ["*"]\n')
    client = await start_client(pasd, workspace)
    try:
        def warnings() -> list[str]:
            return [m.message for m in client.messages
                    if m.type == lsp.MessageType.Warning and "is not trusted" in m.message]

        uri = open_doc(client, workspace / "app.py")
        await delegate_and_review(client, uri, r(0, 0, 1, 16), "document add")
        [warning] = await wait_until(warnings, "the untrusted-settings warning")
        ws = workspace.resolve()
        assert warning.startswith(f"PAS: {ws / '.pas.toml'} is not trusted")
        assert "guardrails.allow_commands" in warning and warning.endswith(f"pasd trust {ws}")

        # a second task from the same workspace: its status updates come and go without a second warning
        await delegate_and_review(client, uri, r(3, 0, 4, 16), "document sub")
        statuses = client.statuses  # type: ignore[attr-defined]
        await wait_until(lambda: statuses and statuses[-1]["review"] >= 2, "both tasks in review in pas/status")
        await execute(client, "pas.status", {})  # one more round trip: anything sent before it has arrived
        assert len(warnings()) == 1
    finally:
        await client.shutdown_session()
