"""Base of every service's aggregate: a pure state machine that records events.

Methods check a rule, change state and record events; they do no I/O. Deadlines are
part of the state (``deadlines``), so they are saved with it and survive restarts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, PrivateAttr

from shared.contracts.envelope import TradeEvent
from shared.contracts.parties import Parties
from shared.domain.errors import DomainError


class HistoryEntry(BaseModel):
    """One line of the append-only record support staff read to answer
    "what happened to my money"."""

    at: AwareDatetime
    what: str
    detail: dict[str, Any] = {}


# Every list a party can make grow is capped on its own (messages, statements, disputes,
# payments, card attempts); this bounds what remains, so no document nears MongoDB's 16 MB.
MAX_HISTORY_ENTRIES = 2000


class Aggregate(BaseModel):
    order_id: str
    parties: Parties
    history: list[HistoryEntry] = []
    deadlines: dict[str, AwareDatetime] = {}

    _pending: list[TradeEvent] = PrivateAttr(default_factory=list)

    def record(self, event: TradeEvent, at: datetime) -> None:
        self._pending.append(event)
        detail = event.model_dump(mode="json", exclude={"order_id", "parties"})
        self._remember(HistoryEntry(at=at, what=event.event_type, detail=detail))

    def note(self, at: datetime, what: str, **detail: Any) -> None:
        """Record something in the history that is not an outgoing event."""
        self._remember(HistoryEntry(at=at, what=what, detail=detail))

    def _remember(self, entry: HistoryEntry) -> None:
        if len(self.history) >= MAX_HISTORY_ENTRIES:
            raise DomainError(f"the history of order {self.order_id} is full "
                              f"({MAX_HISTORY_ENTRIES} entries); nothing more can be recorded "
                              f"({entry.what}): customer service must look into it")
        self.history.append(entry)

    def pull_events(self) -> list[TradeEvent]:
        events, self._pending = self._pending, []
        return events

    @property
    def next_deadline_at(self) -> datetime | None:
        return min(self.deadlines.values(), default=None)

    def run_due_deadlines(self, now: datetime, *, due_by: datetime | None = None) -> None:
        """Fire every deadline that has come, earliest first, re-reading them after each
        one, because firing one may drop another (a closure drops its reminder). With
        ``due_by``, only those due by then: the deadlines that precede a fact learnt late
        (a payment made before its news came) are applied first, the later ones not yet."""
        until = now if due_by is None else min(now, due_by)
        while due := [(at, kind) for kind, at in self.deadlines.items() if at <= until]:
            at, kind = min(due)
            del self.deadlines[kind]
            self.on_deadline(kind, at, now)

    def on_deadline(self, kind: str, due: datetime, now: datetime) -> None:
        """What happens when a deadline comes; aggregates that set deadlines say. A stored
        deadline nobody handles is a fault in the data, not something to drop quietly."""
        raise LookupError(f"{type(self).__name__} has no rule for the deadline {kind!r}")
