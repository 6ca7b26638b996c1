"""The card-number scan run after the test suite (issue 8's proof that no service stores,
logs or publishes a card number or a security code).

``snapshot`` records, before the tests, which Kafka topics and MongoDB databases exist and
the time; ``scan`` then reads everything the run added: every message (key, headers,
value) of every new topic, read from the broker from its first offset; every document of
every collection of every new database; every log file given (pytest's log file and its
JUnit report with each test's captured output and logs, the services' logs under
.run/logs); every mail the SMTP server kept since the snapshot (headers and each decoded
part). Tests name their topics and databases after a fresh prefix (tests/support/
platform.py), so "new since the snapshot" is exactly the run's (and, on a shared machine,
other runs' at the same time: scanned too, as they are test data as well).

What counts as card data (docs/card-scan.md gives the reasons):
- a card number: a run of 13 to 19 digits, possibly grouped by single spaces or dashes,
  that passes the Luhn check, does not start with 0 and is not one digit repeated, is not
  13 digits unless it starts with 4 (only Visa ever issued 13-digit numbers; a 13-digit run
  starting with 1 is an epoch-milliseconds timestamp, which Kafka logs), and stands alone:
  a digit, letter or underscore right before or after it (hex ids, uuids,
  trace ids, longer digit runs such as tracking numbers or IBANs) means it is part of
  something else and is not taken;
- a security code: a 3 or 4 digit value labelled cvc, cvv, cvv2, cvc2, csc or security
  code (``"cvc": "123"``, ``cvv=1234``, ``CVC 123``); or one of the codes the tests use
  (``TEST_CVCS``) within a few characters after an expiry date or a card number.

A finding prints where it was and the match masked (first six and last four digits only),
so the report itself leaks nothing, and the scan exits 1.
"""

from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import json
import os
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

# The security codes the tests and demos type (tests/support/trade.py, deploy/local/demo.py).
TEST_CVCS = ("123", "1234")

CARD_NUMBER = re.compile(r"(?<![0-9A-Za-z_])(\d(?:[ -]?\d){12,18})(?![0-9A-Za-z_])")
LABELLED_CVC = re.compile(
    r"(?i)(?<![a-z])(cvc2?|cvv2?|csc|security[ _-]?code)(?![a-z])[\"']?\s*[:=]?\s*[\"']?(\d{3,4})(?!\d)")
EXPIRY = r"(?:0[1-9]|1[0-2])\s*/\s*(?:\d{2}|\d{4})"
CVC_AFTER_CARD = re.compile(
    rf"(?:{EXPIRY}|\d(?:[ -]?\d){{12,18}})[^0-9\n]{{1,12}}({'|'.join(TEST_CVCS)})(?!\d)")


@dataclass(frozen=True)
class Finding:
    where: str
    what: str
    masked: str

    def __str__(self) -> str:
        return f"{self.what} {self.masked} in {self.where}"


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def mask(digits: str) -> str:
    return f"{digits[:6]}{'*' * (len(digits) - 10)}{digits[-4:]}"


def card_data(text: str) -> Iterator[tuple[str, str]]:
    """(what, masked match) for each card number and security code in ``text``."""
    for match in CARD_NUMBER.finditer(text):
        digits = re.sub(r"[ -]", "", match.group(1))
        if (digits[0] != "0" and len(set(digits)) > 1 and luhn_valid(digits)
                and (len(digits) > 13 or digits[0] == "4")):
            yield "card number", mask(digits)
    for match in LABELLED_CVC.finditer(text):
        yield "security code", f"{match.group(1)} {'*' * len(match.group(2))}"
    for match in CVC_AFTER_CARD.finditer(text):
        yield "security code", f"{'*' * len(match.group(1))} after a card number or expiry"


def scan_text(where: str, text: str) -> list[Finding]:
    return list(dict.fromkeys(Finding(where, what, masked) for what, masked in card_data(text)))


# --- what a value is made of ------------------------------------------------------------------


def texts(value: Any) -> Iterator[str]:
    """Every piece of text in a stored or published value: strings, the digits of large
    integers, bytes as Latin-1 (attachments, raw messages), keys and values of mappings."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        yield raw.decode("latin-1")
        try:  # a JSON body is scanned value by value too: escapes hide nothing then
            yield from texts(json.loads(raw))
        except ValueError:
            pass
    elif isinstance(value, bool):
        return
    elif isinstance(value, int):
        if abs(value) >= 10**12:
            yield str(abs(value))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from texts(key)
            # a labelled code needs its label: give the pair as one text too
            if isinstance(item, str | int) and not isinstance(item, bool):
                yield f"{key}: {item}"
            yield from texts(item)
    elif isinstance(value, list | tuple | set):
        for item in value:
            yield from texts(item)
    elif value is not None and not isinstance(value, float | datetime):
        yield str(value)


def scan_value(where: str, value: Any) -> list[Finding]:
    """Each finding once, though a value is read several ways (raw and decoded)."""
    return list(dict.fromkeys(f for text in texts(value) for f in scan_text(where, text)))


# --- the places --------------------------------------------------------------------------------


MIME_BOUNDARY = re.compile(r'(?i)boundary="?[^";\s]*"?')


def scan_mail(path: Path) -> list[Finding]:
    """Every part's headers and decoded content (a body may travel base64 or
    quoted-printable). A multipart boundary is random digits between '=' signs: it is not
    scanned."""
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    found: list[Finding] = []
    for part in message.walk():
        for name, header in part.items():
            found += scan_text(f"mail {path.name} header {name}", MIME_BOUNDARY.sub("", str(header)))
        if not part.is_multipart():
            found += scan_value(f"mail {path.name} part {part.get_content_type()}",
                                part.get_payload(decode=True) or b"")
    return found


def scan_junit(path: Path) -> list[Finding]:
    """What each test printed and logged, as pytest's JUnit report keeps it (test names
    and failure messages are the tests' own data, not what the platform wrote)."""
    found: list[Finding] = []
    for case in ElementTree.parse(path).iter("testcase"):
        for output in (*case.iter("system-out"), *case.iter("system-err")):
            where = f"{path} {case.get('classname')}::{case.get('name')} {output.tag}"
            for line in (output.text or "").splitlines():
                found += scan_text(where, line)
    return found


def scan_files(paths: Iterable[Path], since: float) -> list[Finding]:
    """Every file under ``paths`` changed since ``since`` (a POSIX time): mails (.eml)
    decoded, JUnit reports (.xml) by captured output, everything else as text."""
    found: list[Finding] = []
    for root in paths:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in files:
            if path.stat().st_mtime < since:
                continue
            if path.suffix == ".eml":
                found += scan_mail(path)
            elif path.suffix == ".xml":
                found += scan_junit(path)
            else:
                with path.open(encoding="utf-8", errors="replace") as lines:
                    for number, line in enumerate(lines, 1):
                        found += scan_text(f"{path}:{number}", line)
    return found


async def kafka_topics(bootstrap: str) -> set[str]:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return {t for t in await admin.list_topics() if not t.startswith("__")}
    finally:
        await admin.close()


async def kafka_partitions(bootstrap: str, topics: Iterable[str]) -> list[tuple[str, int]]:
    """The partitions of ``topics``. A topic the broker lists but cannot describe yet (its
    metadata still spreading) is asked again; one that stays so fails the scan, never
    skipped."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        left, found = sorted(topics), []
        for _ in range(30):
            described = await admin.describe_topics(left) if left else []
            found += [(t["topic"], p["partition"]) for t in described
                      if not t["error_code"] for p in t["partitions"]]
            left = [t["topic"] for t in described if t["error_code"]]
            if not left:
                return found
            await asyncio.sleep(1)
        raise RuntimeError(f"card scan: the broker cannot describe topics {left[:5]}...")
    finally:
        await admin.close()


async def scan_kafka(bootstrap: str, topics: Iterable[str]) -> tuple[list[Finding], int]:
    """Every message of ``topics`` from the first offset to the end; (findings, messages)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    found: list[Finding] = []
    read = 0
    partitions = [TopicPartition(t, p) for t, p in await kafka_partitions(bootstrap, topics)]
    if not partitions:
        return found, read
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        left = {tp for tp, end in ends.items() if end > 0}
        while left:
            batches = await consumer.getmany(*left, timeout_ms=5000)
            if not batches:
                raise TimeoutError(f"no messages from {len(left)} partitions that have some")
            for tp, records in batches.items():
                for record in records:
                    read += 1
                    where = f"kafka {tp.topic}/{tp.partition}@{record.offset}"
                    found += scan_value(where, record.key or b"")
                    found += scan_value(where, record.value or b"")
                    for name, value in record.headers or ():
                        found += scan_value(f"{where} header {name}", value)
            left = {tp for tp in left if await consumer.position(tp) < ends[tp]}
    finally:
        await consumer.stop()
    return found, read


async def mongo_databases(url: str) -> set[str]:
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url, serverSelectionTimeoutMS=10_000)
    try:
        return {d for d in await client.list_database_names() if d not in ("admin", "local", "config")}
    finally:
        await client.close()


async def scan_mongo(url: str, databases: Iterable[str]) -> tuple[list[Finding], int]:
    """Every document of every collection of ``databases``; (findings, documents)."""
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url, serverSelectionTimeoutMS=10_000)
    found: list[Finding] = []
    read = 0
    try:
        for name in sorted(databases):
            database = client[name]
            for collection in sorted(await database.list_collection_names()):
                async for document in database[collection].find({}):
                    read += 1
                    found += scan_value(f"mongodb {name}.{collection} {document.get('_id')!r}", document)
    finally:
        await client.close()
    return found, read


# --- before and after the run ---------------------------------------------------------------------


async def take_snapshot() -> dict[str, Any]:
    env = os.environ
    return {"at": datetime.now(UTC).timestamp(),
            "topics": sorted(await kafka_topics(env["KAFKA_BOOTSTRAP_SERVERS"])),
            "databases": sorted(await mongo_databases(env["MONGODB_URL"]))}


async def scan_run(before: dict[str, Any], files: list[Path]) -> tuple[list[Finding], str]:
    """Everything the run added since ``before``; the findings and a one-line summary."""
    env = os.environ
    topics = await kafka_topics(env["KAFKA_BOOTSTRAP_SERVERS"]) - set(before["topics"])
    databases = await mongo_databases(env["MONGODB_URL"]) - set(before["databases"])
    in_kafka, messages = await scan_kafka(env["KAFKA_BOOTSTRAP_SERVERS"], topics)
    in_mongo, documents = await scan_mongo(env["MONGODB_URL"], databases)
    mailbox = [Path(env["MAILBOX_DIR"])] if env.get("MAILBOX_DIR") else []
    in_files = scan_files([p for p in [*files, *mailbox] if p.exists()], before["at"])
    summary = (f"card scan: {messages} messages in {len(topics)} topics, {documents} documents "
               f"in {len(databases)} databases, files under {', '.join(map(str, files + mailbox))}")
    return in_kafka + in_mongo + in_files, summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.card_scan", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    snap = commands.add_parser("snapshot", help="record the topics and databases before the run")
    snap.add_argument("file", type=Path)
    scan = commands.add_parser("scan", help="scan what the run added; exit 1 on a finding")
    scan.add_argument("file", type=Path, help="the snapshot taken before the run")
    scan.add_argument("paths", type=Path, nargs="*", help="log files or folders to scan too")
    args = parser.parse_args(argv)
    if args.command == "snapshot":
        args.file.parent.mkdir(parents=True, exist_ok=True)
        args.file.write_text(json.dumps(asyncio.run(take_snapshot())))
        return 0
    findings, summary = asyncio.run(scan_run(json.loads(args.file.read_text()), args.paths))
    print(summary)
    for finding in findings:
        print(f"  FOUND {finding}")
    if findings:
        print(f"card scan: {len(findings)} finding(s): card data was stored, logged, published "
              "or mailed", file=sys.stderr)
        return 1
    print("card scan: no card numbers or security codes found")
    return 0


if __name__ == "__main__":
    sys.exit(main())
