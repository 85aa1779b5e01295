"""Receipt totals and the task filter: plain functions, no app."""

from __future__ import annotations

from daemon import protocol as p
from pas_tui import totals
from pas_tui.query import Query

DAY = 1_780_000_000.0


def receipt(model: str, cost: float, at: float, priced: bool = True) -> p.Receipt:
    return p.Receipt(task_id="t", run_id="r", attempt=1, programmer="Programmer-01",
                     provider=p.ProviderSnapshot(provider="openai", model=model),
                     tokens=p.TokenUsage(input=100, output=10, reasoning=5), cost_usd=cost, priced=priced,
                     wall_s=1, llm_s=1, outcome="review", created_at=at)


def test_totals_per_model_and_day_and_series() -> None:
    rs = [receipt("a", 0.5, DAY), receipt("b", 0.0, DAY + 60, priced=False), receipt("a", 0.25, DAY + 86_400)]
    [a, b] = totals.by_model(rs)
    assert (a.key, a.tasks, a.tokens_in, a.tokens_out, a.cost_usd) == ("a", 2, 200, 30, 0.75)
    assert (b.key, b.unpriced) == ("b", 1)
    days = totals.by_day(rs)
    assert [d.tasks for d in days] == [1, 2] and days[0].key > days[1].key
    assert totals.cost_series(rs) == [0.5, 0.0, 0.25]
    assert sum(totals.cost_series(rs, buckets=2)) == 0.75


def matches(task: p.TaskInfo, text: str) -> bool:
    return Query.parse(text).matches(task)


def test_filter_matches_state_names_and_words() -> None:
    task = p.TaskInfo(id="ab12cd", state=p.TaskState.REVIEW, workspace="/w", instruction="Document add",
                      files=["app.py"], model="openai/x", timeout_s=60, created_at=DAY)
    assert matches(task, "review") and matches(task, "REVIEW add") and matches(task, "app.py ab12")
    assert not matches(task, "running") and not matches(task, "review sub")
    # as the daemon's search: each word begins a word of the task, accents and case aside
    assert matches(task, "docu") and matches(task, "DOCUMENT Add") and not matches(task, "ocument")
    assert matches(task.model_copy(update={"instruction": "Naïve añadir"}), "naive anad")
    assert matches(task, "review running") and not matches(task, "failed running")  # states: either
    assert matches(task, "model:openai/x add") and not matches(task, "model:openai/y")


def test_the_review_filter_keeps_conflicts_which_need_the_user_too() -> None:
    task = p.TaskInfo(id="ab12cd", state=p.TaskState.CONFLICT, workspace="/w", instruction="Document add",
                      files=["app.py"], model="openai/x", timeout_s=60, created_at=DAY)
    assert matches(task, "review") and matches(task, "conflict") and matches(task, "review add")
    assert not matches(task, "applied")
    assert not matches(task.model_copy(update={"state": p.TaskState.APPLIED}), "review")


def test_cost_over_time_keeps_the_time_of_each_point() -> None:
    rs = [receipt("a", 0.5, DAY + 60), receipt("a", 0.25, DAY)]
    assert totals.cost_over_time(rs) == [(DAY, 0.25), (DAY + 60, 0.5)]
    sliced = totals.cost_over_time([receipt("a", 0.1, DAY + i) for i in range(10)], buckets=2)
    assert [t for t, _ in sliced] == [DAY, DAY + 4.5] and round(sum(c for _, c in sliced), 6) == 1.0
