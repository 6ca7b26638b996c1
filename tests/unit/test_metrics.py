"""Item 10.3: process and HTTP figures, and the state of each service's data, on every
service's /metrics (in memory here; Kafka figures in tests/e2e/test_metrics_realinfra.py)."""

from __future__ import annotations

import json

import pytest
from prometheus_client.parser import text_string_to_metric_families

from shared.contracts.parties import Role

from tests.support.memory import InMemoryPlatform
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
    orders = platform.runtimes["order"].database["orders"]
    await orders.update_one({"_id": trade.order_id}, {"$set": {
        "outbox_pending": True, "next_deadline_at": platform.clock.now() - timedelta(hours=1),
        "outbox": [{"event_id": "e1", "body": json.dumps(
            {"occurred_at": (platform.clock.now() - timedelta(minutes=10)).isoformat()})}]}})
    platform.runtimes["order"].runners[0]._publish = _refuse  # the broker is down
    order = await scrape(platform, "order")
    assert value(order, "escrow_outbox_backlog", collection="orders") == 1
    assert value(order, "escrow_outbox_oldest_pending_seconds", collection="orders") >= 600
    assert value(order, "escrow_deadlines_overdue", collection="orders") == 1


async def _refuse(_message) -> None:
    raise ConnectionError("broker down")


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
