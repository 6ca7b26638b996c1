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
from collections.abc import Coroutine, Iterable
from typing import Any, TypeVar

from hypothesis.stateful import RuleBasedStateMachine

from shared.contracts.envelope import Envelope
from shared.domain.errors import DomainError
from shared.infra.store import OutboxMessage

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


def check_transition(what: str, before: T, after: T, allowed: dict[T, Iterable[T]]) -> None:
    """``after`` is ``before`` or one of the states ``allowed`` to follow it."""
    assert after == before or after in allowed[before], (
        f"{what} moved from {before} to {after}; allowed from {before}: "
        f"{sorted(map(str, allowed[before]))}")
