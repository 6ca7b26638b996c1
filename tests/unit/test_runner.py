"""The runner's round trips and publishing order: one load, one save and one write marking
the outbox published per change; what is saved is published from memory, older waiting
messages first."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from shared.contracts.parties import Parties, Party
from shared.contracts.trade import Carrier, Logistics, ShippingMethod
from shared.infra.clock import ManualClock
from shared.infra.runner import AggregateRunner

from services.shipping.domain import Shipment
from tests.support.memory_mongo import MemoryAggregateStore

PARTIES = Parties(buyer=Party(party_id="buyer-1", name="Buyer", email="buyer@example.com"),
                  supplier=Party(party_id="supplier-1", name="Supplier", email="supplier@example.com"))
LOGISTICS = Logistics(shipping_method=ShippingMethod.AIR_FREIGHT, carrier=Carrier.DHL)


class CountingStore(MemoryAggregateStore):
    """Counts every call that would be a round trip to the database."""

    def __init__(self, aggregate_type) -> None:
        super().__init__(aggregate_type)
        self.calls: Counter[str] = Counter()

    async def load(self, order_id):
        self.calls["load"] += 1
        return await super().load(order_id)

    async def save(self, aggregate, **kwargs):
        self.calls["save"] += 1
        return await super().save(aggregate, **kwargs)

    async def outbox(self, order_id):
        self.calls["outbox"] += 1
        return await super().outbox(order_id)

    async def mark_published(self, order_id, published):
        self.calls["mark_published"] += 1
        return await super().mark_published(order_id, published)


class Broker:
    def __init__(self) -> None:
        self.sent: list[str] = []
        self.down = False

    async def __call__(self, message) -> None:
        if self.down:
            raise ConnectionError("broker away")
        self.sent.append(message.envelope().event_type)


def expect(shipment, now):
    return Shipment.expect("ord-1", PARTIES, LOGISTICS, 5, now)


def paid(shipment, now):
    shipment.escrow_funded(now, now, timedelta(days=1))
    return shipment


async def test_a_change_costs_one_load_one_save_and_one_write_marking_it_published():
    store, broker = CountingStore(Shipment), Broker()
    runner = AggregateRunner(store, ManualClock(), broker)
    await runner.execute("ord-1", expect)
    store.calls.clear()

    await runner.execute("ord-1", paid)

    assert store.calls == {"load": 1, "save": 1, "mark_published": 1}
    assert broker.sent == ["shipping.shipment_expected"]
    assert store.docs["ord-1"]["outbox"] == []


def closed(shipment, now):
    shipment.order_closed("cancelled: changed our mind", now)
    return shipment


async def test_messages_left_by_a_failed_publish_go_out_first_and_in_order():
    store, broker = CountingStore(Shipment), Broker()
    runner = AggregateRunner(store, ManualClock(), broker)
    await runner.execute("ord-1", expect)
    broker.down = True
    await runner.execute("ord-1", paid)
    assert broker.sent == [] and len(store.docs["ord-1"]["outbox"]) == 1

    broker.down = False
    await runner.execute("ord-1", closed)

    assert broker.sent == ["shipping.shipment_expected"]
    assert store.docs["ord-1"]["outbox"] == []
