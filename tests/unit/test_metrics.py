"""Item 10.3: process and HTTP figures, and the state of each service's data, on every
service's /metrics (in memory here; Kafka figures in tests/e2e/test_metrics_realinfra.py)."""

from __future__ import annotations

import json

import pytest
from prometheus_client.parser import text_string_to_metric_families

from shared.contracts.parties import Role

from tests.support.memory import InMemoryPlatform
from tests.support.platform import eventually
from tests.support.trade import Trade


@pytest.fixture
async def platform():
    running = InMemoryPlatform()
    await running.start()
    yield running
    await running.stop()


async def scrape(platform, service: str) -> dict[tuple[str, tuple], float]:
    async with platform.client(service, "ops", Role.AGENT) as client:
        text = (await client.get("/metrics")).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples, name: str, **labels: str) -> float:
    """A sample's value; a label set never seen counts 0."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_a_released_trade_shows_in_every_figure(platform):
    trade = Trade(platform)
    await trade.paid_trade()
    order = await scrape(platform, "order")
    assert value(order, "escrow_aggregates", collection="orders", status="paid") == 1
    assert value(order, "escrow_outbox_backlog", collection="orders") == 0
    assert value(order, "escrow_deadlines_overdue", collection="orders") == 0
    assert value(order, "escrow_http_requests_total", method="POST", route="/orders",
                 status="201") == 1
    assert ("process_cpu_seconds_total", ()) in order
    payment = await scrape(platform, "payment")
    assert value(payment, "escrow_money_held", currency="USD") == trade.total
    await trade.ship()
    await trade.confirm_receipt()
    await trade.wait_status("closed", "settled")
    payment = await scrape(platform, "payment")
    assert value(payment, "escrow_money_held", currency="USD") == 0
    assert value(payment, "escrow_aggregates", collection="escrows", status="settled") == 1
    assert value(payment, "escrow_aggregates", collection="escrows", status="funded") == 0
    assert value(payment, "escrow_instructions", kind="payout", status="sent") \
        + value(payment, "escrow_instructions", kind="payout", status="pending") == 1
    notify = await scrape(platform, "notify")
    assert value(notify, "escrow_emails", status="sent") + value(notify, "escrow_emails", status="pending") > 0
    assert value(notify, "escrow_emails", status="failed") == 0


async def test_an_unpublished_message_and_an_overdue_deadline_show(platform):
    from datetime import timedelta

    trade = Trade(platform)
    await trade.place()
    await trade.confirm()  # the payment window's deadline is stored
    orders = platform.runtimes["order"].database["orders"]
    await orders.update_one({"_id": trade.order_id}, {"$set": {
        "outbox_pending": True,
        "outbox": [{"event_id": "e1", "body": json.dumps(
            {"occurred_at": (platform.clock.now() - timedelta(minutes=10)).isoformat()})}]}})
    await platform.stop()  # no delivery, no sweep from now on: the broker and the jobs are down
    order = await scrape(platform, "order")
    assert value(order, "escrow_deadlines_overdue", collection="orders") == 0
    platform.advance(timedelta(days=21))  # past the payment window
    order = await scrape(platform, "order")
    assert value(order, "escrow_outbox_backlog", collection="orders") == 1
    assert value(order, "escrow_outbox_oldest_pending_seconds", collection="orders") >= 600
    assert value(order, "escrow_deadlines_overdue", collection="orders") == 1


async def test_failed_email_sends_are_counted(platform):
    trade = Trade(platform)
    await trade.place()
    before = value(await scrape(platform, "notify"), "escrow_email_send_failures_total")

    async def refused(_message) -> None:
        raise ConnectionRefusedError("mail server down")
    platform.infra.mailbox.send = refused
    await trade.confirm()

    async def counted() -> float:
        failures = value(await scrape(platform, "notify"), "escrow_email_send_failures_total")
        assert failures > before
        return failures
    await eventually(counted)


async def test_instructions_pending_failing_and_sent_and_money_held_read_afresh():
    """A pending payout whose sending fails shows as failing; once sent it no longer reads
    pending (a gauge set only for the label sets seen now would keep the old count)."""
    from types import SimpleNamespace

    from prometheus_client import CollectorRegistry

    from shared.infra.metrics import ServiceFigures

    from services.payment.figures import add_payment_figures
    from tests.support.memory_mongo import MemoryMongo

    database = MemoryMongo()["escrow"]
    registry = CollectorRegistry()
    figures = ServiceFigures(SimpleNamespace(database=database, consumer=None), registry)
    add_payment_figures(figures)
    held = [{"debit": "escrow_held", "credit": "buyer_funds", "amount": 5000}]
    escrows = database["escrows"]
    await escrows.insert_one({"_id": "ord-1", "state": {
        "currency": "EUR", "ledger": held, "instructions": [{"kind": "payout", "status": "pending"}]},
        "failing": {"instructions": {"failures": 2, "error": "ProviderError: down"}}})
    await figures.refresh()
    sample = registry.get_sample_value
    assert sample("escrow_instructions", {"kind": "payout", "status": "pending"}) == 1
    assert sample("escrow_instructions_failing", {"kind": "payout"}) == 1
    assert sample("escrow_money_held", {"currency": "EUR"}) == 5000
    await escrows.update_one({"_id": "ord-1"}, {"$set": {
        "state.instructions": [{"kind": "payout", "status": "sent"}],
        "state.ledger": held + [{"debit": "supplier_payouts", "credit": "escrow_held", "amount": 5000}]},
        "$unset": {"failing": ""}})
    await figures.refresh()
    assert sample("escrow_instructions", {"kind": "payout", "status": "pending"}) == 0
    assert sample("escrow_instructions", {"kind": "payout", "status": "sent"}) == 1
    assert sample("escrow_instructions_failing", {"kind": "payout"}) == 0
    assert sample("escrow_money_held", {"currency": "EUR"}) == 0


async def test_the_grafana_dashboard_queries_only_figures_the_services_export(platform):
    import json
    import re
    from pathlib import Path

    dashboard = json.loads((Path(__file__).parents[2] / "deploy/grafana/escrow-dashboard.json").read_text())
    queried = {name for panel in dashboard["panels"] for target in panel["targets"]
               for name in re.findall(r"\b((?:escrow|process)_[a-z_]+)", target["expr"])}
    exported: set[str] = set()
    for service in ("order", "payment", "notify"):
        async with platform.client(service, "ops", Role.AGENT) as client:
            text = (await client.get("/metrics")).text
        exported |= {family.name + suffix for family in text_string_to_metric_families(text)
                     for suffix in ("", "_total", "_bucket", "_sum", "_count")}
    # Kafka figures exist once a consumer has run (tests/e2e/test_operator_cli_realinfra.py)
    kafka = {"escrow_consumer_lag", "escrow_dead_letters"}
    assert queried - exported - kafka == set()
