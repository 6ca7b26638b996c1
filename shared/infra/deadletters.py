"""Read and replay a service's dead letters.

    python -m shared.infra.deadletters list --service payment
    python -m shared.infra.deadletters replay --service payment

``replay`` moves every dead letter not yet replayed to the service's retry topic, which
only that service reads; its handlers are idempotent, so replaying twice is harmless.
A replayed copy names its dead letter (``x-replayed-from: <partition>@<offset>``), which
is how a dead letter is known to be replayed (``DeadLetter.replayed``). The operator CLI
(``python -m shared.ops deadletters``) lists, shows and replays them one by one too.
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from shared.contracts.topics import Service, Topics
from shared.infra.messaging import DEAD_LETTER_REASON
from shared.infra.settings import ServiceSettings


@dataclass
class DeadLetter:
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, str]
    replayed: bool = field(default=False)

    @property
    def reason(self) -> str:
        return self.headers.get(DEAD_LETTER_REASON, "")

    @property
    def position(self) -> str:
        return f"{self.partition}@{self.offset}"


REPLAYED_FROM = "x-replayed-from"


async def _drain(consumer: AIOKafkaConsumer, limit: int | None) -> list[DeadLetter]:
    """Everything up to the end offsets as they were when we started."""
    partitions = consumer.assignment()
    end = await consumer.end_offsets(list(partitions))
    letters: list[DeadLetter] = []
    async def unread() -> bool:
        return any([await consumer.position(tp) < end[tp] for tp in partitions])

    while await unread():
        batch = await consumer.getmany(timeout_ms=1000)
        for records in batch.values():
            for r in records:
                letters.append(DeadLetter(r.partition, r.offset, r.key, r.value,
                                          {k: v.decode(errors="replace") for k, v in r.headers}))
                if limit is not None and len(letters) >= limit:
                    return letters
    return letters


async def _consumer(bootstrap: str, topic: str, group: str | None) -> AIOKafkaConsumer:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    metadata = await consumer._client.fetch_all_metadata()  # noqa: SLF001 - no public call gives partitions
    tps = [TopicPartition(topic, p) for p in metadata.partitions_for_topic(topic) or ()]
    consumer.assign(tps)
    if group is None:
        await consumer.seek_to_beginning(*tps)
    else:
        committed = {tp: await consumer.committed(tp) for tp in tps}
        for tp, offset in committed.items():
            if offset is None:
                await consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, offset)
    return consumer


async def _read_all(bootstrap: str, topic: str) -> list[DeadLetter]:
    consumer = await _consumer(bootstrap, topic, None)
    try:
        return await _drain(consumer, None)
    finally:
        await consumer.stop()


async def list_dead_letters(bootstrap: str, topics: Topics, service: Service) -> list[DeadLetter]:
    """Every dead letter of the service, each marked if a copy of it was replayed."""
    replayed = {m.headers.get(REPLAYED_FROM) for m in await _read_all(bootstrap, topics.retries(service))}
    letters = await _read_all(bootstrap, topics.dead_letters(service))
    for letter in letters:
        letter.replayed = letter.position in replayed
    return letters


async def _send_back(producer: AIOKafkaProducer, topics: Topics, service: Service,
                     letter: DeadLetter) -> None:
    headers = [(k, v.encode()) for k, v in letter.headers.items() if not k.startswith("x-dead-letter")]
    headers.append((REPLAYED_FROM, letter.position.encode()))
    await producer.send_and_wait(topics.retries(service), letter.value, key=letter.key, headers=headers)


async def replay_one(bootstrap: str, topics: Topics, service: Service, partition: int,
                     offset: int) -> DeadLetter:
    """Send one dead letter, named by its position, back to its service (again, if asked)."""
    letters = {(d.partition, d.offset): d for d in await list_dead_letters(bootstrap, topics, service)}
    letter = letters.get((partition, offset))
    if letter is None:
        raise LookupError(f"no dead letter {partition}@{offset} in {topics.dead_letters(service)}")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        await _send_back(producer, topics, service, letter)
    finally:
        await producer.stop()
    return letter


async def replay(bootstrap: str, topics: Topics, service: Service, limit: int | None = None) -> int:
    group = f"{topics.prefix}-{service}-deadletter-replay"
    consumer = await _consumer(bootstrap, topics.dead_letters(service), group)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        letters = await _drain(consumer, limit)
        for letter in letters:
            await _send_back(producer, topics, service, letter)
        if letters:
            await consumer.commit()
        return len(letters)
    finally:
        await producer.stop()
        await consumer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["list", "replay"])
    parser.add_argument("--service", required=True, choices=[str(s) for s in Service])
    parser.add_argument("--limit", type=int)
    args = parser.parse_args()
    settings = ServiceSettings()
    topics, service = Topics(settings.topic_prefix), Service(args.service)
    if args.command == "list":
        for letter in asyncio.run(list_dead_letters(settings.kafka_bootstrap_servers, topics, service)):
            print(f"{letter.partition}@{letter.offset} key={letter.key!r}: {letter.reason}")
    else:
        count = asyncio.run(replay(settings.kafka_bootstrap_servers, topics, service, args.limit))
        print(f"replayed {count} dead letter(s) to {topics.retries(service)}")


if __name__ == "__main__":
    main()
