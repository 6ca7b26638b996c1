"""Item 10.5: the operator CLI — an order's story across the services, reconciliation
that fails on a broken ledger or stuck money, development tokens, --json everywhere.
In memory here; tests/e2e/test_operator_cli_realinfra.py runs it on the real servers."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from shared.contracts.topics import Topics
from shared.ops import cli
from shared.ops.reconcile import reconcile
from shared.ops.records import Records
from shared.ops.story import render, story

from tests.support import memory
from tests.support.memory import InMemoryPlatform, MemoryMongo
from tests.support.platform import eventually
from tests.support.trade import Trade


@pytest.fixture
async def released(monkeypatch):
    """A trade played to release, every service storing into one in-memory database."""
    shared = MemoryMongo()
    monkeypatch.setattr(memory, "MemoryMongo", lambda: shared)
    platform = InMemoryPlatform()
    await platform.start()
    try:
        trade = Trade(platform)
        await trade.paid_trade()
        await trade.ship()
        await trade.confirm_receipt()
        await trade.wait_status("closed", "settled")

        async def mailed() -> None:
            assert len(platform.infra.mailbox.for_order(trade.order_id)) >= 18
        await eventually(mailed)
        yield trade, Records(shared["escrow"])
    finally:
        await platform.stop()


async def test_the_story_tells_the_order_across_every_service(released):
    trade, records = released
    told = await story(records, trade.order_id, kafka=None, topics=Topics("escrow"))
    assert told["found"] and set(told["states"]) == {"order", "payment", "shipping", "dispute"}
    assert {e["service"] for e in told["timeline"]} == {"order", "payment", "shipping", "dispute"}
    assert [e["at"] for e in told["timeline"]] == sorted(e["at"] for e in told["timeline"])
    assert sum(e["amount"] for e in told["ledger"] if e["debit"] == "supplier_payouts") == trade.total
    assert [i["kind"] for i in told["instructions"]] == ["payout"]
    assert len(told["emails"]) >= 18 and all(m["subject"] for m in told["emails"])
    text = render(told)
    assert "payment.escrow_released" in text and "payout" in text
    json.dumps(told, default=str)  # the --json form


async def test_reconciliation_passes_a_settled_trade_and_fails_a_broken_ledger(released):
    trade, records = released
    assert (await reconcile(records, stuck_after=timedelta(minutes=15)))["problems"] == []
    escrows = records.database["escrows"]
    await escrows.update_one({"_id": trade.order_id}, {"$set": {"state.ledger.0.amount": 1}})
    problems = (await reconcile(records, stuck_after=timedelta(minutes=15)))["problems"]
    assert [p["problem"] for p in problems if p["order_id"] == trade.order_id][:1] == ["ledger"]


async def test_an_unsent_instruction_past_its_time_is_stuck(released):
    trade, records = released
    escrows = records.database["escrows"]
    await escrows.update_one({"_id": trade.order_id}, {"$set": {"state.instructions.0.status": "pending"}})
    problems = (await reconcile(records, stuck_after=timedelta(0),
                                now=trade.platform.clock.now() + timedelta(hours=1)))["problems"]
    assert [p["problem"] for p in problems] == ["stuck instruction"]


def test_a_development_token_in_json(capsys, monkeypatch):
    monkeypatch.setenv("ESCROW_ENV", "development")
    with pytest.raises(SystemExit) as exit_:
        cli.main(["token", "--role", "agent", "--party", "ops-1", "--json"])
    assert exit_.value.code == 0
    assert json.loads(capsys.readouterr().out)["role"] == "agent"


def test_no_token_is_minted_outside_development(monkeypatch):
    monkeypatch.setenv("ESCROW_ENV", "production")
    with pytest.raises(SystemExit) as exit_:
        cli.main(["token", "--role", "agent", "--party", "ops-1"])
    assert "development" in str(exit_.value.code)


def test_every_command_takes_json():
    commands = cli.parser()._subparsers._group_actions[0].choices  # noqa: SLF001
    assert {"story", "reconcile", "deadletters", "token", "demo", "config-reference"} <= set(commands)
    for name, sub in commands.items():
        assert any("--json" in a.option_strings for a in sub._actions), name  # noqa: SLF001
