"""The review pane: the selected task's diff hunk by hunk, with its receipt beside it."""

from pas_tui.widgets.review.hunks import HunkList, HunkView
from pas_tui.widgets.review.pane import ReviewPane
from pas_tui.widgets.review.receipt import ReceiptPanel

__all__ = ["HunkList", "HunkView", "ReceiptPanel", "ReviewPane"]
