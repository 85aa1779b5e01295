"""What the `/` filter asks the daemon, and the same test for tasks that arrive by events.

A line of words: a state name (`review`, `running`…; several are either) filters by state, `flagged`
keeps tasks awaiting review whose result carries a warning, `model:NAME` one model exactly, and every
other word must begin a word of the task's id, instruction, files or job id — the daemon's full-text
search (`task.list` with `text`), which reads the whole history, not only the tasks shown.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from daemon.protocol import JobInfo, TaskInfo, TaskListParams, TaskState
from pas_tui.format import short

MAX_TEXT = 500  # TaskListParams.text's limit
# A state word and the states it shows; `review` is everything waiting for the user, CONFLICT included.
STATES: dict[str, frozenset[TaskState]] = {s.value.lower(): frozenset({s}) for s in TaskState}
STATES["review"] = frozenset({TaskState.REVIEW, TaskState.CONFLICT})
_PIECE = re.compile(r"[^\W_]+")  # where the daemon's index (FTS5 unicode61) splits: at anything not a letter or digit


def pieces(text: str) -> list[str]:
    """The words of `text` as the daemon's index keeps them: lower case, without diacritics."""
    plain = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return _PIECE.findall(plain.casefold())


@dataclass(frozen=True)
class Query:
    """One filter line, parsed."""

    text: str
    states: frozenset[TaskState] | None = None
    flagged: bool = False
    model: str | None = None
    words: tuple[str, ...] = ()  # searched by the daemon
    ignored: tuple[str, ...] = ()  # no letter or digit in them: nothing to search for

    @classmethod
    def parse(cls, text: str) -> Query:
        states: set[TaskState] = set()
        flagged, model, words, ignored = False, None, list[str](), list[str]()
        for word in text.split():
            low = word.lower()
            if low in STATES:
                states |= STATES[low]
            elif low == "flagged":
                flagged = True
            elif low.startswith("model:") and len(word) > 6:
                model = word[6:]
            elif pieces(word):
                words.append(word)
            else:
                ignored.append(word)
        if flagged and not states:  # the ⚠ badge is on tasks awaiting review: the rest is not read
            states = set(STATES["review"])
        return cls(text, frozenset(states) or None, flagged, model, tuple(words), tuple(ignored))

    @property
    def active(self) -> bool:
        """Does it filter anything? (Only ignored words, or none: the list is shown whole.)"""
        return bool(self.states or self.flagged or self.model or self.words)

    @property
    def problem(self) -> str | None:
        """Why the daemon cannot be asked, in words (None: it can)."""
        if len(" ".join(self.words)) > MAX_TEXT:
            return f"too long to search: at most {MAX_TEXT} characters of words"
        if self.model is not None and len(self.model) > 300:
            return "model: at most 300 characters"
        return None

    @property
    def note(self) -> str:
        """What the user should know about words that were not searched for."""
        if not self.ignored:
            return ""
        return f"ignored {' '.join(self.ignored)} (no letter or digit to search for)"

    def params(self, limit: int, before: str | None = None) -> TaskListParams:
        """The `task.list` request for a page of matches (the first page also counts them)."""
        return TaskListParams(states=sorted(self.states, key=list(TaskState).index) if self.states else None,
                              model=self.model, text=" ".join(self.words) or None, limit=limit, before=before,
                              count=before is None)

    def words_match(self, task: TaskInfo) -> bool:
        """Do the words match as the daemon's search would: each word's pieces consecutive words of the
        task, the last one a prefix."""
        if not self.words:
            return True
        hay = pieces(" ".join([task.id, task.instruction, *task.files, task.job_id or ""]))
        return all(_has(hay, pieces(w)) for w in self.words)

    def state_match(self, task: TaskInfo) -> bool:
        """The parts of the filter a task's changes can make it meet or leave: state, flagged, model."""
        return ((self.states is None or task.state in self.states) and (not self.flagged or bool(task.warnings))
                and (self.model is None or task.model == self.model))

    def matches(self, task: TaskInfo) -> bool:
        return self.state_match(task) and self.words_match(task)

    def job_matches(self, job: JobInfo) -> bool:
        """A job row on its own matches on its state, model and the words of its id and instruction."""
        if self.flagged or (self.model is not None and job.model != self.model):
            return False
        if self.states is not None and job.state.value not in {s.value for s in self.states}:
            return False
        hay = pieces(f"{job.id} {job.instruction}")
        return all(_has(hay, pieces(w)) for w in self.words)


def _has(hay: list[str], word: list[str]) -> bool:
    if not word:
        return True
    last = len(word) - 1
    return any(all(hay[i + j] == x if j < last else hay[i + j].startswith(x) for j, x in enumerate(word))
               for i in range(len(hay) - last))


@dataclass
class Found:
    """The daemon's answer to one query, kept current by events: which tasks match, the cursor of the
    older matches, and how many there are."""

    query: Query
    search: int  # which search of the list this is: an answer to an earlier one is dropped
    ids: set[str]
    next: str | None = None  # the `before` of the older matches not read yet
    total: int | None = None  # None: not counted (yet)
    exact: bool = True
    searching: bool = True  # asked, not answered: `ids` are the matches among the tasks read so far
    error: str | None = None  # the daemon could not be asked: `ids` are the matches among the tasks read
    events: int = 0  # how many task events it has taken in (a count asked before the last one is stale)

    def moved(self, before: TaskInfo | None, task: TaskInfo) -> bool:
        """A task changed (or is new): count it in or out, as the daemon's count would now. False when
        that cannot be told here (a task never read changed state under a state filter): count again."""
        self.events += 1
        inside = task.id in self.ids or self.query.words_match(task)  # its words never change
        if inside:
            self.ids.add(task.id)
        if self.total is None or not inside:
            return True
        now = self.query.state_match(task)
        if before is not None:
            was = self.query.state_match(before)
        elif task.state is TaskState.QUEUED and task.revision == 0:  # new: not counted yet
            was = False
        elif self.query.states is None:  # not read, and in whatever state it was in: counted
            was = now
        else:
            return False
        self.total = max(0, self.total + int(now) - int(was))
        return True

    def subtitle(self, rows: int) -> str:
        """The filter line under the list: the query, how many match, and any problem."""
        q = self.query
        parts = [f"filter: {short(q.text, 40)}"]
        if self.error:
            parts.append(f"{self.error} · matching the tasks read so far")
        elif self.searching:
            parts.append("searching…")
        elif self.total == 0 or (self.total is None and rows == 0 and self.next is None):
            parts = [f"no task matches “{short(q.text, 40)}”", "Esc clears"]
        elif self.total is not None:
            parts.append(f"{self.total}{'' if self.exact else '+'} match{'' if self.total == 1 else 'es'}")
        else:
            parts.append(f"{rows} match{'' if rows == 1 else 'es'}{' so far, more as you scroll' if self.next else ''}")
        if q.note:
            parts.append(q.note)
        return " · ".join(parts)
