"""The raw bound: the platform's messaging and writes done by the bare clients, nothing else.

Kafka: the same messages per topic (same size, keyed by order) produced with plain aiokafka
(idempotent, everything in flight) and consumed by as many consumer groups per topic as the
platform's services consume it with (each committing after each batch). MongoDB: the same
number of single-document writes with plain PyMongo async (inserts, then versioned
conditional updates by ``_id``, 16 in flight). The bound in trades/s is
``trades / (kafka seconds + mongodb seconds)``.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from pymongo import AsyncMongoClient

PARTITIONS = 3  # as the services create their topics
WRITERS = 16


async def kafka_seconds(bootstrap: str, prefix: str, trades: int,
                        per_topic: dict[str, tuple[float, int]], message_bytes: int) -> float:
    """``per_topic``: name -> (messages per trade, consumer groups reading it)."""
    topics = {f"{prefix}.{name}": (round(per_trade * trades), groups)
              for name, (per_trade, groups) in per_topic.items() if per_trade * trades >= 1}
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(t, PARTITIONS, 1) for t in topics])
        consumers = [AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"{topic}-g{g}",
                                      enable_auto_commit=False, auto_offset_reset="earliest")
                     for topic, (_, groups) in topics.items() for g in range(groups)]
        await asyncio.gather(*(c.start() for c in consumers))
        while not all(c.assignment() for c in consumers):  # joined: assigned its partitions
            await asyncio.gather(*(c.getmany(timeout_ms=50) for c in consumers))
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, linger_ms=0)
        await producer.start()
        orders = [uuid.uuid4().hex.encode() for _ in range(trades)]
        body = os.urandom(message_bytes // 2).hex().encode()
        began = time.perf_counter()
        sends = [await producer.send(topic, body, key=orders[i % trades])
                 for topic, (count, _) in topics.items() for i in range(count)]

        async def drain(consumer: AIOKafkaConsumer, expected: int) -> None:
            got = 0
            while got < expected:
                batches = await consumer.getmany(timeout_ms=200)
                got += sum(len(records) for records in batches.values())
                if batches:
                    await consumer.commit()

        await asyncio.gather(asyncio.gather(*sends), *(
            drain(c, topics[next(iter(c.subscription()))][0]) for c in consumers))
        took = time.perf_counter() - began
        await producer.stop()
        await asyncio.gather(*(c.stop() for c in consumers))
        await admin.delete_topics(list(topics))
        return took
    finally:
        await admin.close()


async def mongodb_seconds(url: str, database: str, writes: int, document_bytes: int = 2000) -> float:
    """``writes`` single-document writes: one insert per document, the rest versioned updates."""
    client: AsyncMongoClient = AsyncMongoClient(url)
    try:
        collection = client[database]["writes"]
        documents = max(WRITERS, writes // 8 // WRITERS * WRITERS)  # a multiple of WRITERS
        padding = "x" * document_bytes

        async def inserter(first: int) -> None:
            for doc in range(first, documents, WRITERS):
                await collection.insert_one({"_id": doc, "version": 0, "state": padding})

        async def updater(first: int) -> None:  # one writer per document: each update matches
            versions: dict[int, int] = {}
            for i in range(first, writes - documents, WRITERS):
                doc = i % documents
                version = versions.get(doc, 0)
                versions[doc] = version + 1
                await collection.update_one({"_id": doc, "version": version},
                                            {"$set": {"version": version + 1, "state": padding}})

        began = time.perf_counter()
        await asyncio.gather(*(inserter(w) for w in range(WRITERS)))
        await asyncio.gather(*(updater(w) for w in range(WRITERS)))
        took = time.perf_counter() - began
        await client.drop_database(database)
        return took
    finally:
        await client.close()
