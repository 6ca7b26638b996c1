"""Every causally possible delivery order of a saga's events, for one consuming aggregate.

Kafka keeps order only within one topic (one partition per order), so a consumer of
several topics may see the saga's events in any merge of the per-topic sequences. A step
may also name steps it causally follows beyond its topic's order (e.g. a consumer's own
command that needs an event to have arrived, or an event caused by the consumer's own
output). ``interleavings`` yields each order that respects both.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class Step:
    name: str
    lane: str  # the topic it arrives on, or "commands" for the consumer's own actions
    at: datetime  # when it happened (the envelope's time; the clock for a command)
    run: Callable[[Any], Awaitable[None]]
    after: frozenset[str] = field(default_factory=frozenset)


def interleavings(steps: Sequence[Step]) -> Iterator[list[Step]]:
    lanes: dict[str, list[Step]] = {}
    for step in steps:
        lanes.setdefault(step.lane, []).append(step)
    names = {s.name for s in steps}
    assert len(names) == len(steps), "step names must be unique"
    assert all(s.after <= names for s in steps), "a step follows an unknown step"

    def extend(done: list[Step], heads: dict[str, int]) -> Iterator[list[Step]]:
        if len(done) == len(steps):
            yield list(done)
            return
        seen = {s.name for s in done}
        for lane, i in heads.items():
            if i < len(lanes[lane]) and lanes[lane][i].after <= seen:
                done.append(lanes[lane][i])
                yield from extend(done, {**heads, lane: i + 1})
                done.pop()

    yield from extend([], {lane: 0 for lane in lanes})


class World(Protocol):
    """What a test plays the steps on: a consumer whose whole state can be set aside and
    put back, so the orders sharing a prefix replay only what differs."""

    def advance_to(self, at: datetime) -> None: ...
    def snapshot(self) -> Any: ...
    def restore(self, snapshot: Any) -> None: ...
    async def state(self) -> Any: ...


async def outcomes(steps: Sequence[Step], world: World) -> dict[str, list[str]]:
    """Play every causally possible order; the final states found, each with the orders
    that reached it (as step names). One key means the order of delivery did not matter."""
    lanes: dict[str, list[Step]] = {}
    for step in steps:
        lanes.setdefault(step.lane, []).append(step)
    found: dict[str, list[str]] = {}

    async def extend(done: list[str], heads: dict[str, int]) -> None:
        if len(done) == len(steps):
            found.setdefault(repr(await world.state()), []).append(" ".join(done))
            return
        before = world.snapshot()
        for lane, i in heads.items():
            if i < len(lanes[lane]) and lanes[lane][i].after <= set(done):
                step = lanes[lane][i]
                world.restore(before)
                world.advance_to(step.at)
                await step.run(world)
                await extend([*done, step.name], {**heads, lane: i + 1})

    assert sum(1 for _ in interleavings(steps)) > 0
    await extend([], {lane: 0 for lane in lanes})
    return found


async def outcomes_replayed(steps: Sequence[Step], new_world: Callable[[], Awaitable[Any]]
                            ) -> dict[str, list[str]]:
    """The same as ``outcomes`` for a world that cannot be set aside (one with a provider
    or a database of its own): every order is played on a new world from the start."""
    found: dict[str, list[str]] = {}
    for order in interleavings(steps):
        world = await new_world()
        for step in order:
            world.advance_to(step.at)
            await step.run(world)
        found.setdefault(repr(await world.state()), []).append(" ".join(s.name for s in order))
    return found
