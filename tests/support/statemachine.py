"""What the aggregates' property tests (tests/unit/test_*_properties.py) share.

Each is a ``hypothesis.stateful.RuleBasedStateMachine`` that drives one service's real
service layer (its runner on an in-memory store and a manual clock) with random commands
and incoming events, delivers events of different topics in any order and some of them
twice, moves time on, and checks the aggregate's invariants after every step. The service
layer is async and hypothesis' rules are not: each machine runs its coroutines on an event
loop of its own.

How long they search is a hypothesis profile (registered in tests/conftest.py): ``ci``,
the default, is bounded and derandomised so CI is fast and repeatable; ``long``
(``HYPOTHESIS_PROFILE=long``) searches far longer, with fresh randomness each run.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Coroutine, Iterable
from typing import Any, TypeVar

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule

from shared.contracts.envelope import Envelope, TradeEvent
from shared.domain.errors import DomainError
from shared.infra.clock import ManualClock
from shared.infra.store import OutboxMessage
from shared.infra.subscriptions import subscriptions

T = TypeVar("T")


class Published(list[Envelope]):
    """The runner's publish: every envelope the service sent, in order."""

    async def __call__(self, message: OutboxMessage) -> None:
        self.append(message.envelope())

    def of_type(self, *event_types: str) -> list[Envelope]:
        return [e for e in self if e.event_type in event_types]


class ServiceMachine(RuleBasedStateMachine):
    """A state machine over one service's async service layer."""

    def __init__(self) -> None:
        super().__init__()
        self._loop = asyncio.new_event_loop()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self._loop.run_until_complete(coroutine)

    def attempt(self, coroutine: Coroutine[Any, Any, T]) -> T | DomainError:
        """Run a command or a delivery that the rules may refuse: a domain error is an
        allowed answer (returned); any other exception fails the property."""
        try:
            return self.run(coroutine)
        except DomainError as refused:
            return refused

    def teardown(self) -> None:
        self._loop.close()


class ConsumerMachine(ServiceMachine):
    """A service fed by other services' topics. Events wait on their topic; the head of any
    topic may come next (topics interleave in every order, each keeps its own), and any
    event delivered may come again, which must change nothing and publish nothing."""

    service: Any
    published: Published
    clock: ManualClock

    def __init__(self, *topics: str) -> None:
        super().__init__()
        self.topics: dict[str, deque[Envelope]] = {topic: deque() for topic in topics}
        self.delivered: list[Envelope] = []

    def state(self) -> object:
        """What a repeated delivery must leave as it was."""
        raise NotImplementedError

    def emit(self, topic: str, event: TradeEvent) -> None:
        self.topics[topic].append(Envelope.wrap(event, occurred_at=self.clock.now()))

    def deliver(self, envelope: Envelope) -> None:
        event = envelope.event()
        self.run(subscriptions(self.service)[type(event)](envelope, event))

    @precondition(lambda self: any(self.topics.values()))
    @rule(data=st.data())
    def deliver_next(self, data: st.DataObject) -> None:
        topic = data.draw(st.sampled_from(sorted(t for t, q in self.topics.items() if q)))
        envelope = self.topics[topic].popleft()
        self.deliver(envelope)
        self.delivered.append(envelope)

    @precondition(lambda self: self.delivered)
    @rule(data=st.data())
    def deliver_again(self, data: st.DataObject) -> None:
        envelope = data.draw(st.sampled_from(self.delivered))
        before, sent = self.state(), len(self.published)
        self.deliver(envelope)
        assert self.state() == before and len(self.published) == sent, \
            f"{envelope.event_type} delivered twice changed the state or published again"


def check_transition(what: str, before: T, after: T, allowed: dict[T, Iterable[T]]) -> None:
    """``after`` is ``before`` or one of the states ``allowed`` to follow it."""
    assert after == before or after in allowed[before], (
        f"{what} moved from {before} to {after}; allowed from {before}: "
        f"{sorted(map(str, allowed[before]))}")
