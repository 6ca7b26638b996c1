"""Item 10.8: contracts for integrators — events tolerate unknown fields, the schemas stay
compatible with the released AsyncAPI document, each service serves its AsyncAPI, receive
sides are documented, and OpenAPI declares problem details and readable operation ids."""

from __future__ import annotations

import copy
import json

import httpx
import pytest
from faststream.kafka import KafkaBroker

from shared.contracts.envelope import Envelope
from shared.contracts.events import OrderCancelled
from shared.contracts.parties import Parties, Party
from shared.contracts.topics import Service, Topics
from shared.infra.clock import ManualClock
from shared.infra.compatibility import breaking_changes
from shared.infra.messaging import EventConsumer

from services.asyncapi import RELEASED, generate
from services.catalogue import SERVICES, build, settings_class

PARTIES = Parties(buyer=Party(party_id="b-1", name="B", email="b@example.com"),
                  supplier=Party(party_id="s-1", name="S", email="s@example.com"))


async def test_an_event_from_a_newer_producer_with_unknown_fields_is_handled_not_dead_lettered():
    handled: list[OrderCancelled] = []

    async def handler(_envelope: Envelope, event: OrderCancelled) -> None:
        handled.append(event)

    broker = KafkaBroker("127.0.0.1:9")
    consumer = EventConsumer(Service.PAYMENT, broker, Topics("t"), {OrderCancelled: handler})
    dead: list[str] = []

    async def dead_letter(*args, **_kwargs) -> None:
        dead.append(args[-1])
    consumer.dead_letter = dead_letter  # type: ignore[method-assign]
    wire = json.loads(Envelope.wrap(OrderCancelled(order_id="ord_1", parties=PARTIES, reason="r"),
                                    occurred_at=ManualClock().now()).to_bytes())
    wire["tenant"] = "added in a later envelope version"
    wire["payload"]["refund_hint"] = "added in a later event version"
    await consumer.handle(json.dumps(wire).encode())
    assert not dead, dead
    assert [e.reason for e in handled] == ["r"]


@pytest.fixture(scope="module")
def generated() -> dict:
    return json.loads(generate())


def test_the_event_schemas_are_compatible_with_the_released_asyncapi_document(generated):
    assert RELEASED.exists(), "docs/asyncapi.released.json is missing"
    problems = breaking_changes(json.loads(RELEASED.read_text()), generated)
    assert not problems, ("breaking changes against the released contract (make them additive, "
                          "or release a new major version with `python -m services.asyncapi "
                          "--release`):\n" + "\n".join(problems))


@pytest.fixture(scope="module")
def released() -> dict:
    return json.loads(RELEASED.read_text())


def _payload(document: dict, message: str) -> dict:
    schemas = document["components"]["schemas"]
    envelope = schemas[document["components"]["messages"][message]["payload"]["$ref"].rsplit("/", 1)[-1]]
    return schemas[envelope["properties"]["payload"]["$ref"].rsplit("/", 1)[-1]]


CANCELLED = "escrow.order.events:OrderCancelled:Message"


def test_the_compatibility_check_accepts_an_added_optional_field(released):
    current = copy.deepcopy(released)
    _payload(current, CANCELLED)["properties"]["note"] = {"type": "string"}
    assert breaking_changes(released, current) == []


@pytest.mark.parametrize("change, expected", [
    (lambda p: p["properties"].pop("reason"), "reason: removed"),
    (lambda p: (p["properties"].update(note={"type": "string"}), p["required"].append("note")),
     "note: newly required"),
    (lambda p: p["properties"].update(reason={"type": "integer"}), "reason: 'string' is no longer accepted"),
])
def test_the_compatibility_check_finds_breaking_changes(released, change, expected):
    current = copy.deepcopy(released)
    change(_payload(current, CANCELLED))
    assert any(expected in p for p in breaking_changes(released, current)), breaking_changes(released, current)


def test_a_message_no_longer_published_breaks_the_contract(released):
    current = copy.deepcopy(released)
    del current["components"]["messages"][CANCELLED]
    assert breaking_changes(released, current) == [f"{CANCELLED}: no longer published"]


def test_every_inbox_documents_the_events_it_takes(generated):
    document = generated
    inboxes = {name: m for name, m in document["components"]["messages"].items() if "-inbox:" in name}
    assert inboxes
    for name, message in inboxes.items():
        refs = [r["$ref"] for r in message["payload"].get("oneOf", [])]
        assert refs, f"{name} documents no payload"
        for ref in refs:
            assert ref.rsplit("/", 1)[-1] in document["components"]["schemas"], ref
    shipping_from_payment = inboxes["shipping-inbox:escrow.payment.events:SubscribeMessage"]
    assert {"$ref": "#/components/schemas/EscrowFundedMessage"} in shipping_from_payment["payload"]["oneOf"]


@pytest.mark.parametrize("name", SERVICES)
async def test_each_service_serves_its_asyncapi_document(name):
    runtime = build(name, settings_class(name)())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=runtime.http),
                                 base_url="http://svc") as client:
        answer = await client.get("/asyncapi")
    await runtime.mongo.close()
    assert answer.status_code == 200
    document = answer.json()
    assert document["asyncapi"].startswith("3.")
    assert any(name.startswith(f"{runtime.service}-inbox:") for name in document["channels"])


@pytest.mark.parametrize("name", SERVICES)
def test_openapi_declares_problem_details_and_readable_operation_ids(name):
    runtime = build(name, settings_class(name)())
    document = runtime.http.openapi()
    assert "Problem" in document["components"]["schemas"]
    operations = [(path, op) for path, item in document["paths"].items() for op in item.values()]
    ids = [op["operationId"] for _path, op in operations]
    assert len(ids) == len(set(ids))
    assert all(len(i) <= 40 and " " not in i and "_" in i for i in ids), ids
    for path, op in operations:
        if path.startswith("/orders"):
            for status in ("401", "403", "404"):
                content = op["responses"][status]["content"]
                assert content == {"application/problem+json":
                                   {"schema": {"$ref": "#/components/schemas/Problem"}}}, (path, status)
