"""The card-number scan (tests/support/card_scan.py) reads the real broker and the real
MongoDB-wire server: a card number planted in a Kafka message (value and header), in a
document of a new database, in a log file and in a stored mail is found in each place,
and the lookalikes planted beside them are not. The planted data is removed again, so the
scan after the whole suite (deploy/local/test.sh) does not find it."""

from __future__ import annotations

import json
import uuid
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from pymongo import AsyncMongoClient

from tests.support.card_scan import scan_run, take_snapshot
from tests.support.infra import Infra

pytestmark = pytest.mark.realinfra

VISA = "4242" * 4  # built at run time: no source line is itself a finding
MASKED = "424242******4242"
LOOKALIKES = {"trace_id": uuid.uuid4().hex, "tracking": "1" + VISA + "0000", "last4": VISA[-4:],
              "ref": f"ord_{VISA}", "cvc": "***"}


async def test_card_data_planted_anywhere_the_run_writes_is_found(infra: Infra, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", infra.kafka)
    monkeypatch.setenv("MONGODB_URL", infra.mongodb_url)
    mailbox = tmp_path / "mail"
    mailbox.mkdir()
    monkeypatch.setenv("MAILBOX_DIR", str(mailbox))
    before = await take_snapshot()
    before["at"] -= 1  # file times are coarser than the clock on some file systems

    name = f"cardscan{uuid.uuid4().hex[:8]}"
    topic, database = f"{name}.payment.events", f"escrow_{name}"
    admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka)
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka)
    mongo: AsyncMongoClient = AsyncMongoClient(infra.mongodb_url)
    await admin.start()
    await producer.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
        await producer.send_and_wait(topic, json.dumps({"payload": {"card": {"number": VISA}},
                                                        **LOOKALIKES}).encode(), key=b"o1", partition=0)
        await producer.send_and_wait(topic, b"{}", key=b"o2", partition=1,
                                     headers=[("note", f"pan {VISA}".encode())])
        await producer.send_and_wait(topic, json.dumps(LOOKALIKES).encode(), key=b"o3", partition=1)
        await mongo[database]["escrows"].insert_one(
            {"_id": "o1", "state": {"history": [{"detail": {"pan": VISA, "cvc": "123"}}]}, **LOOKALIKES})
        await mongo[database]["clean"].insert_one({"_id": "o2", **LOOKALIKES})
        logs = tmp_path / "logs"
        logs.mkdir()
        (logs / "payment.log").write_text(json.dumps(LOOKALIKES) + "\n" + f"charging {VISA}\n")
        mail = EmailMessage()
        mail["Subject"] = "Payment received"
        mail.set_content(f"Charged to {VISA}", cte="base64")
        (mailbox / "1.eml").write_bytes(bytes(mail))

        findings, summary = await scan_run(before, [logs])

        ours = sorted((f.where.split(" (")[0], f.what, f.masked) for f in findings
                      if name in f.where or str(tmp_path) in f.where or f.where.startswith("mail "))
        assert ours == sorted([
            (f"kafka {topic}/0@0", "card number", MASKED),
            (f"kafka {topic}/1@0 header note", "card number", MASKED),
            (f"mongodb {database}.escrows 'o1'", "card number", MASKED),
            (f"mongodb {database}.escrows 'o1'", "security code", "cvc ***"),
            (f"{logs / 'payment.log'}:2", "card number", MASKED),
            ("mail 1.eml part text/plain", "card number", MASKED),
        ]), summary
        assert all(VISA not in str(f) for f in findings)
    finally:
        await admin.delete_topics([topic])
        await mongo.drop_database(database)
        await admin.close()
        await producer.stop()
        await mongo.close()
