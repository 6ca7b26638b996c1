"""Delete what test runs left on the local servers: their Kafka topics and databases.

Every real-infrastructure test names its topics ``t<8 hex>.<service>.<kind>`` and its
database ``escrow_t<8 hex>``, and leaves them behind (the card-number scan reads them after
the suite). On a long-lived developer server they pile up until the broker runs out of file
descriptors, so ``deploy/local/infra.sh prune`` removes those of runs idle for longer than
``--older-than`` minutes (judged by the topic's data directory, so a running test keeps its
own), and the databases of the same runs.

    python deploy/local/prune.py --kafka 127.0.0.1:9092 --data-dir .run/kafka/data \
        --mongodb-url mongodb://127.0.0.1:27017/ [--older-than 30]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import time
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient
from pymongo import AsyncMongoClient

TEST_TOPIC = re.compile(r"^(t[0-9a-f]{8})\.[a-z]+\.[a-z_]+$")
BATCH = 200


def idle_runs(data_dir: Path, older_than_s: float) -> tuple[set[str], set[str]]:
    """(prefixes of runs idle for long enough, prefixes still active) from partition dirs."""
    newest: dict[str, float] = {}
    for partition in data_dir.iterdir():
        topic = partition.name.rsplit("-", 1)[0]
        if match := TEST_TOPIC.match(topic):
            prefix = match.group(1)
            newest[prefix] = max(newest.get(prefix, 0.0), partition.stat().st_mtime)
    now = time.time()
    idle = {p for p, at in newest.items() if now - at > older_than_s}
    return idle, set(newest) - idle


async def prune(kafka: str, data_dir: Path, mongodb_url: str, older_than_s: float) -> None:
    idle, active = idle_runs(data_dir, older_than_s)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka, request_timeout_ms=120_000)
    await admin.start()
    try:
        topics = [t for t in await admin.list_topics()
                  if (m := TEST_TOPIC.match(t)) and m.group(1) in idle]
        for i in range(0, len(topics), BATCH):
            await admin.delete_topics(topics[i:i + BATCH], timeout_ms=120_000)
    finally:
        await admin.close()
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(mongodb_url)
    try:
        databases = [d for d in await client.list_database_names()
                     if d.startswith("escrow_") and d.removeprefix("escrow_") in idle]
        for name in databases:
            await client.drop_database(name)
    finally:
        await client.close()
    print(f"pruned {len(topics)} topics and {len(databases)} databases of {len(idle)} idle "
          f"test runs; {len(active)} runs are still active and kept")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kafka", required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--mongodb-url", required=True)
    parser.add_argument("--older-than", type=float, default=30.0, help="minutes (default 30)")
    args = parser.parse_args()
    asyncio.run(prune(args.kafka, args.data_dir, args.mongodb_url, args.older_than * 60))


if __name__ == "__main__":
    main()
