"""The connection banner: invisible while connected, loud while the daemon is away."""

from __future__ import annotations

from textual.widgets import Static


class ConnectionBanner(Static):
    """Shows "disconnected — retrying" with the reason until the link is back."""

    DEFAULT_CSS = """
    ConnectionBanner { dock: top; height: 1; display: none; background: $error; color: $text; padding: 0 1; }
    ConnectionBanner.-down { display: block; }
    """

    def disconnected(self, reason: str, retry_in: float) -> None:
        self.update(f"disconnected — retrying in {retry_in:.1f}s ({reason})")
        self.add_class("-down")

    def connected(self) -> None:
        self.update("")
        self.remove_class("-down")

    @property
    def is_down(self) -> bool:
        return self.has_class("-down")
