"""The hub's mirror: pages of the newest tasks with filters, counts kept by events, a bounded history."""

from __future__ import annotations

from daemon import protocol as p
from pas_web.hub import Hub, dump

MODELS = ["openai/a", "anthropic/b", "gemini/c"]
STATES = [p.TaskState.APPLIED, p.TaskState.REJECTED, p.TaskState.REVIEW, p.TaskState.FAILED]


def info(i: int, **changes: object) -> p.TaskInfo:
    task = p.TaskInfo(id=f"{i:06x}", state=STATES[i % 4], workspace="/ws", instruction=f"refactor handle_{i}",
                      files=[f"src/m{i % 7}.py"], model=MODELS[i % 3], timeout_s=600, created_at=1_000_000 + i,
                      job_id="job42" if i % 1000 == 0 else None)
    return task.model_copy(update=changes)


def event(seq: int, task: p.TaskInfo) -> p.EventEnvelope:
    return p.EventEnvelope(seq=seq, time=0.0, event=p.TaskEvent(task=task))


def filled(n: int, history: int) -> Hub:
    hub = Hub("/nonexistent.sock", history=history)
    hub.tasks = {f"{i:06x}": dump(info(i)) for i in range(n)}  # oldest first, as the hub keeps them
    hub.counts.update(t["state"] for t in hub.tasks.values())
    return hub


def test_a_big_history_is_served_a_page_at_a_time_newest_first() -> None:
    hub = filled(10_000, 10_000)
    first = hub.page()
    assert [t["id"] for t in first["tasks"]] == [f"{i:06x}" for i in range(9_999, 9_949, -1)]
    assert (first["total"], first["pages"], first["per_page"]) == (10_000, 200, 50)
    last = hub.page(page=10_000)  # past the end: the last page
    assert last["page"] == 199 and [t["id"] for t in last["tasks"]][-1] == "000000"
    assert first["models"] == sorted(MODELS)


def test_filters_by_state_model_and_words() -> None:
    hub = filled(3_000, 10_000)
    review = hub.page(states={"REVIEW"}, model="anthropic/b")
    assert review["total"] == sum(1 for i in range(3_000) if i % 4 == 2 and i % 3 == 1)
    assert all(t["state"] == "REVIEW" and t["model"] == "anthropic/b" for t in review["tasks"])
    assert [t["id"] for t in hub.page(words="HANDLE_2999")["tasks"]] == ["000bb7"]
    assert {t["id"] for t in hub.page(words="job42")["tasks"]} == {"000000", "0003e8", "0007d0"}
    assert hub.page(words="src/m3.py refactor")["total"] == sum(1 for i in range(3_000) if i % 7 == 3)


def test_events_update_in_place_count_and_evict_the_oldest() -> None:
    hub = filled(100, 100)
    before = hub.count_summary()
    hub.apply(event(1, info(5, state=p.TaskState.APPLIED)))  # task 5 (REJECTED) is applied: same place
    after = hub.count_summary()
    assert after["REJECTED"] == before["REJECTED"] - 1 and after["APPLIED"] == before["APPLIED"] + 1
    assert list(hub.tasks)[5] == "000005"
    hub.apply(event(2, info(100, state=p.TaskState.QUEUED)))  # a new task: the oldest one leaves
    assert len(hub.tasks) == 100 and "000000" not in hub.tasks
    assert hub.page()["tasks"][0]["id"] == "000064"
    assert sum(hub.count_summary().values()) == 100
