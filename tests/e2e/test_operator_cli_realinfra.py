"""Item 10.5 on the real servers: ``escrowctl`` (run as a process, as an operator would)
tells a released trade's story with its dead letter, reconciles, and replays a dead letter
by position, which is then marked as replayed."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from shared.contracts.parties import Role
from shared.contracts.topics import Service, Topics
from shared.infra.deadletters import list_dead_letters

from tests.support.platform import Platform, eventually
from tests.support.trade import Trade

pytestmark = pytest.mark.realinfra


async def escrowctl(platform: Platform, *args: str) -> tuple[int, Any]:
    env = {**os.environ, "MONGODB_URL": platform.infra.mongodb_url,
           "MONGODB_DATABASE": f"escrow_{platform.prefix}", "TOPIC_PREFIX": platform.prefix,
           "KAFKA_BOOTSTRAP_SERVERS": platform.infra.kafka, "ESCROW_ENV": "development"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "shared.ops", *args, "--json", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    try:
        return process.returncode, json.loads(out)
    except json.JSONDecodeError:
        raise AssertionError(f"escrowctl {args}: {out.decode()} {err.decode()}") from None


async def test_the_story_of_a_released_trade_with_a_dead_letter_replayed(platform: Platform):
    trade = Trade(platform)
    await trade.paid_trade()
    await trade.ship()
    await trade.confirm_receipt()
    await trade.wait_status("closed", "settled")
    topics = Topics(platform.prefix)
    producer = AIOKafkaProducer(bootstrap_servers=platform.infra.kafka)
    await producer.start()
    try:
        await producer.send_and_wait(topics.retries(Service.PAYMENT), b"{not an envelope",
                                     key=trade.order_id.encode())
    finally:
        await producer.stop()

    async def dead_lettered() -> str:
        mine = [d for d in await list_dead_letters(platform.infra.kafka, topics, Service.PAYMENT)
                if d.key == trade.order_id.encode()]
        assert mine
        return mine[0].position
    position = await eventually(dead_lettered)

    async with platform.client("payment", "ops-1", Role.AGENT) as client:
        metrics = (await client.get("/metrics")).text
    assert 'escrow_dead_letters{service="payment"}' in metrics
    retries = topics.retries(Service.PAYMENT)
    assert f'escrow_consumer_lag{{group="{platform.prefix}-payment",topic="{retries}"}}' in metrics

    code, listed = await escrowctl(platform, "deadletters", "list", "--service", "payment")
    assert code == 0
    [letter] = [d for d in listed if d["position"] == position]
    assert letter["replayed"] is False and "malformed envelope" in letter["reason"]
    code, replayed = await escrowctl(platform, "deadletters", "replay", position, "--service", "payment")
    assert (code, replayed) == (0, {"replayed": [position]})
    code, listed = await escrowctl(platform, "deadletters", "list", "--service", "payment")
    assert [d["replayed"] for d in listed if d["position"] == position] == [True]

    code, told = await escrowctl(platform, "story", trade.order_id)
    assert code == 0
    assert {e["service"] for e in told["timeline"]} == {"order", "payment", "shipping", "dispute"}
    assert told["states"]["order"]["status"] == "closed"
    assert any(e["what"] == "payment.escrow_released" for e in told["timeline"])
    assert [i["kind"] for i in told["instructions"]] == ["payout"]
    assert told["emails"]
    assert position in [d["position"] for d in told["dead_letters"]]

    code, reconciled = await escrowctl(platform, "reconcile")
    assert code == 0, reconciled["problems"]
    assert reconciled["escrows_checked"] >= 1
