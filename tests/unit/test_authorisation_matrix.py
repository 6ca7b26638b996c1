"""The authorisation matrix (issue 8, proof a): every endpoint of every service's OpenAPI
document × every caller × (the caller's own order, another party's order, acting for a party
through a service token), with the expected answer of each cell written in one table.

The table is checked against the OpenAPI documents both ways: an endpoint without a row
fails, and so does a row without an endpoint. Each cell is called on the five services'
own composition roots in memory (no broker; ``settle`` delivers events deterministically),
on an order really brought to the stage the endpoint acts on, so an allowed cell proves an
actual success and a refused one proves that the rule, not the order's state, refused it.
Each allowed call that changes the order gets an order of its own.
"""

from __future__ import annotations

import base64
import re
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from unittest import mock

import httpx
import pytest

from shared.contracts.parties import Role
from shared.domain.actor import Actor
from shared.infra.auth import mint_token
from shared.infra.settings import DEV_AUTH_SECRET

from services.catalogue import SERVICES, build, settings_class
from services.console import app as console_app
from services.console.proxy import PUBLIC as PUBLIC_SEGMENTS
from services.console.settings import ConsoleSettings
from services.payment.sandbox_bank import BANK_PARTY, signed_notification
from services.payment.settings import PaymentSettings
from tests.support.memory import InMemoryPlatform
from tests.support.memory_mongo import MemoryMongo

# Callers, relative to the order a row acts on: anon (no token); B, S: the order's buyer and
# supplier; B', S': a buyer and a supplier of other orders; agent: customer service; bank:
# the bank adapter; >B, >S, >x: a platform service token acting for the order's buyer, its
# supplier, a stranger; B:S: the buyer's own id in the supplier role.
COLUMNS = ("anon", "B", "S", "B'", "S'", "agent", "bank", ">B", ">S", ">x", "B:S")

# Y: 2xx, and the call really did it. -: refused (anon: 401; else 401, 403 or 404).
# L / H: 2xx, and the listing shows / does not show the row's order (or transfer).
# Stages: the order is placed, confirmed (awaiting payment), paid, shipped (dispute window
# open), disputed (with an attachment), countered (a counter-offer stands), escalated;
# "-": no order (the caller's own contact, customer service's lists).
MATRIX = """
                                                               stage     anon B  S  B' S' agent bank >B >S >x B:S
[order]
POST   /orders                                                 -         -    Y  -  Y  -  -     -    Y  Y  Y  -
GET    /orders                                                 placed    -    L  L  H  H  H     H    L  L  H  H
GET    /orders/{order_id}                                      placed    -    Y  Y  -  -  Y     -    Y  Y  -  -
POST   /orders/{order_id}/confirm                              placed    -    -  Y  -  -  -     -    -  Y  -  -
POST   /orders/{order_id}/decline                              placed    -    -  Y  -  -  -     -    -  Y  -  -
POST   /orders/{order_id}/cancel                               placed    -    Y  -  -  -  -     -    Y  -  -  -
POST   /orders/{order_id}/messages                             placed    -    Y  Y  -  -  -     -    Y  Y  -  -
GET    /orders/{order_id}/messages                             placed    -    Y  Y  -  -  Y     -    Y  Y  -  -
[payment]
POST   /orders/{order_id}/payments/card                        confirmed -    Y  -  -  -  -     -    Y  -  -  -
POST   /bank/transfers                                         confirmed -    -  -  -  -  -     Y    -  -  -  -
GET    /bank/transfers/unmatched                               -         -    -  -  -  -  L     -    -  -  -  -
GET    /bank/transfers/{transfer_id}                           -         -    -  -  -  -  Y     -    -  -  -  -
GET    /orders/{order_id}/payment                              confirmed -    Y  Y  -  -  Y     -    Y  Y  -  -
GET    /orders/{order_id}/ledger                               confirmed -    Y  Y  -  -  Y     -    Y  Y  -  -
[shipping]
POST   /orders/{order_id}/shipment                             paid      -    -  Y  -  -  -     -    -  Y  -  -
GET    /orders/{order_id}/shipment                             paid      -    Y  Y  -  -  Y     -    Y  Y  -  -
[dispute]
POST   /orders/{order_id}/receipt                              shipped   -    Y  -  -  -  -     -    Y  -  -  -
GET    /orders/{order_id}/protection                           shipped   -    Y  Y  -  -  Y     -    Y  Y  -  -
POST   /orders/{order_id}/dispute                              shipped   -    Y  -  -  -  -     -    Y  -  -  -
GET    /orders/{order_id}/dispute                              disputed  -    Y  Y  -  -  Y     -    Y  Y  -  -
GET    /orders/{order_id}/dispute/attachments/{attachment_id}  disputed  -    Y  Y  -  -  Y     -    Y  Y  -  -
POST   /orders/{order_id}/dispute/statements                   disputed  -    Y  Y  -  -  -     -    Y  Y  -  -
POST   /orders/{order_id}/dispute/answer                       disputed  -    -  Y  -  -  -     -    -  Y  -  -
POST   /orders/{order_id}/dispute/accept-counter-offer         countered -    Y  -  -  -  -     -    Y  -  -  -
POST   /orders/{order_id}/dispute/withdraw                     disputed  -    Y  -  -  -  -     -    Y  -  -  -
POST   /orders/{order_id}/dispute/escalate                     countered -    Y  Y  -  -  -     -    Y  Y  -  -
POST   /orders/{order_id}/dispute/decision                     escalated -    -  -  -  -  Y     -    -  -  -  -
GET    /disputes/escalated                                     escalated -    -  -  -  -  L     -    -  -  -  -
[notify]
GET    /orders/{order_id}/emails                               placed    -    Y  Y  -  -  Y     -    Y  Y  -  -
GET    /contacts/me                                            -         -    Y  Y  Y  Y  -     -    -  -  -  Y
PUT    /contacts/me                                            -         -    Y  Y  Y  Y  -     -    -  -  -  Y
POST   /contacts/me/verification                               -         -    Y  Y  Y  Y  -     -    -  -  -  Y
"""
# A party's contact is its own: it registers it itself, never a service on its behalf.
# Every service also serves, to anyone, /health/live, /health/ready, /metrics and /asyncapi
# (operators' endpoints, kept off the public network: docs/security.md).
PUBLIC = {("GET", "/health/live"), ("GET", "/health/ready"), ("GET", "/metrics"),
          ("GET", "/asyncapi")}
# The console has no authorisation of its own: its proxy forwards the caller's token to
# the service, which decides (test_the_console_proxy_answers_as_the_services_do).
CONSOLE = {("GET", "/config"), ("POST", "/dev/token"), *[
    (method, "/api/{service}/{path}") for method in ("GET", "POST", "PUT", "DELETE")]}

STAGES = ("placed", "confirmed", "paid", "shipped", "disputed", "countered", "escalated")
STRANGER_BUYER, STRANGER_SUPPLIER, AGENT = "buyer-elsewhere", "supplier-elsewhere", "agent-1"
# Calls that change the order in a way that cannot happen twice: each allowed cell gets
# an order of its own (the others add to it, or only read).
ONCE = {"confirm", "decline", "cancel", "payments/card", "shipment", "receipt", "dispute",
        "answer", "accept-counter-offer", "withdraw", "escalate", "decision"}


@dataclass(frozen=True)
class Row:
    service: str
    method: str
    path: str
    stage: str
    cells: dict[str, str]

    @property
    def once(self) -> bool:
        return self.method == "POST" and any(self.path.endswith("/" + o) for o in ONCE)


def rows() -> list[Row]:
    header, *lines = MATRIX.strip().splitlines()
    assert tuple(header.split()[1:]) == COLUMNS
    found, service = [], ""
    for line in lines:
        if line.startswith("["):
            service = line.strip("[]")
            continue
        method, path, stage, *cells = line.split()
        found.append(Row(service, method, path, stage, dict(zip(COLUMNS, cells, strict=True))))
    return found


@dataclass
class Trade:
    order_id: str
    buyer: str
    supplier: str
    attachment_id: str = ""

    def actor(self, column: str) -> Actor | None:
        return {
            "anon": None,
            "B": Actor(party_id=self.buyer, role=Role.BUYER),
            "S": Actor(party_id=self.supplier, role=Role.SUPPLIER),
            "B'": Actor(party_id=STRANGER_BUYER, role=Role.BUYER),
            "S'": Actor(party_id=STRANGER_SUPPLIER, role=Role.SUPPLIER),
            "agent": Actor(party_id=AGENT, role=Role.AGENT),
            "bank": Actor(party_id=BANK_PARTY, role=Role.BANK),
            ">B": Actor(party_id=self.buyer, role=Role.SERVICE),
            ">S": Actor(party_id=self.supplier, role=Role.SERVICE),
            ">x": Actor(party_id=STRANGER_BUYER, role=Role.SERVICE),
            "B:S": Actor(party_id=self.buyer, role=Role.SUPPLIER),
        }[column]


CARD = {"number": "4242424242424242", "expiry_month": 12, "expiry_year": 2031, "cvc": "123",
        "holder_name": "Jane Buyer"}
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 32).decode()


@dataclass
class World:
    """The platform in memory, and orders brought to each stage."""

    platform: InMemoryPlatform
    shared: dict[str, Trade] = field(default_factory=dict)  # refusals and reads
    fresh: dict[str, list[Trade]] = field(default_factory=lambda: defaultdict(list))
    transfer_id: str = ""

    def __post_init__(self) -> None:
        self.console = console_app.build(
            ConsoleSettings(**{f"{name}_url": f"http://{name}" for name in SERVICES}),
            transport=ServicesByHost(self.platform))

    async def call(self, service: str, method: str, path: str, actor: Actor | None,
                   body: Any = None, headers: dict[str, str] | None = None, *,
                   settle: bool = True) -> httpx.Response:
        """``service`` "console" calls through the console's proxy (``/api/<service>/...``);
        after a change, the events it published are delivered (``settle``)."""
        headers = dict(headers or {})
        if actor is not None:
            headers["authorization"] = "Bearer " + mint_token(DEV_AUTH_SECRET, actor.party_id,
                                                              actor.role)
        content = body if isinstance(body, bytes) else None
        app = self.console if service == "console" else self.platform.runtimes[service].http
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url=f"http://{service}") as client:
            response = await client.request(method, path, headers=headers, content=content,
                                            json=None if content is not None else body)
        if settle and method != "GET":
            await self.platform.settle()
        return response

    async def do(self, service: str, method: str, path: str, actor: Actor, body: Any = None,
                 expect: int = 200) -> Any:
        response = await self.call(service, method, path, actor, body)
        assert response.status_code == expect, f"{method} {path}: {response.text}"
        return response.json()

    # --- bringing an order to a stage ----------------------------------------------------

    async def placed(self) -> Trade:
        run = uuid.uuid4().hex[:8]
        trade = Trade("", f"buyer-{run}", f"supplier-{run}")
        order = await self.do("order", "POST", "/orders", trade.actor("B"),
                              place_body(trade.supplier), expect=201)
        trade.order_id = order["order_id"]
        return trade

    async def confirmed(self) -> Trade:
        trade = await self.placed()
        await self.do("order", "POST", f"/orders/{trade.order_id}/confirm",
                      trade.actor("S"), CONFIRM)
        return trade

    async def paid(self) -> Trade:
        trade = await self.confirmed()
        await self.do("payment", "POST", f"/orders/{trade.order_id}/payments/card",
                      trade.actor("B"), CARD)
        return trade

    async def shipped(self) -> Trade:
        trade = await self.paid()
        await self.do("shipping", "POST", f"/orders/{trade.order_id}/shipment",
                      trade.actor("S"), self.dispatch_proof())
        return trade

    async def disputed(self, trade: Trade) -> Trade:
        view = await self.do("dispute", "POST", f"/orders/{trade.order_id}/dispute",
                             trade.actor("B"), self.dispute_body(), expect=201)
        trade.attachment_id = view["dispute"]["evidence"][0]["attachment_id"]
        return trade

    async def countered(self, trade: Trade) -> Trade:
        await self.do("dispute", "POST", f"/orders/{trade.order_id}/dispute/answer",
                      trade.actor("S"), {"answer": "counter_offer", "amount": 1000})
        return trade

    async def escalated(self, trade: Trade) -> Trade:
        await self.do("dispute", "POST", f"/orders/{trade.order_id}/dispute/escalate",
                      trade.actor("B"))
        return trade

    async def build(self, needed: dict[str, int]) -> None:
        """Orders for each stage: one shared, and ``needed[stage]`` fresh ones. Orders that
        will be disputed are shipped first, then the clock moves past the wait for a dispute."""
        before = {"placed": self.placed, "confirmed": self.confirmed, "paid": self.paid}
        for stage, make in before.items():
            for i in range(1 + needed.get(stage, 0)):
                trade = await make()
                self._keep(stage, trade, i)
        later = {stage: [await self.shipped() for _ in range(1 + needed.get(stage, 0))]
                 for stage in STAGES[3:]}
        self.platform.advance(timedelta(days=6))
        await self.platform.settle()
        for stage, trades in later.items():
            for i, trade in enumerate(trades):
                if stage != "shipped":
                    await self.disputed(trade)
                if stage in ("countered", "escalated"):
                    await self.countered(trade)
                if stage == "escalated":
                    await self.escalated(trade)
                self._keep(stage, trade, i)
        self.transfer_id = uuid.uuid4().hex
        response = await self.call("payment", "POST", "/bank/transfers", Actor(
            party_id=BANK_PARTY, role=Role.BANK), *self.transfer("no such reference", 500))
        assert response.status_code == 202, response.text

    def _keep(self, stage: str, trade: Trade, i: int) -> None:
        if i == 0:
            self.shared[stage] = trade
        else:
            self.fresh[stage].append(trade)

    def transfer(self, reference: str, amount: int,
                 transfer_id: str | None = None) -> tuple[bytes, dict[str, str]]:
        return signed_notification(
            {"transfer_id": transfer_id or self.transfer_id, "reference": reference,
             "amount": amount, "currency": "USD", "sender_name": "ACME Imports",
             "sender_account": "DE89370400440532013000"},
            PaymentSettings(), self.platform.clock.now())

    def dispatch_proof(self) -> dict[str, str]:
        return {"carrier": "dhl", "tracking_number": "1234567890",
                "ship_date": self.platform.clock.now().date().isoformat()}

    @staticmethod
    def dispute_body() -> dict[str, Any]:
        return {"reason": "not_as_described", "requested": "full_refund",
                "description": "the bolts are M6",
                "evidence": [{"kind": "attachment", "filename": "bolts.png",
                              "content_type": "image/png", "data_base64": PNG}]}

    # --- one cell ----------------------------------------------------------------------

    async def request(self, row: Row, trade: Trade,
                      actor: Actor | None) -> tuple[str, Any, dict[str, str] | None]:
        """The path and body with which ``actor`` does what the row's endpoint does."""
        path = row.path.format(order_id=trade.order_id, attachment_id=trade.attachment_id,
                               transfer_id=self.transfer_id)
        key = (row.method, row.path.removeprefix("/orders/{order_id}"))
        if key == ("POST", "/bank/transfers"):
            payment = await self.do("payment", "GET", f"/orders/{trade.order_id}/payment",
                                    trade.actor("B"))
            body, headers = self.transfer(payment["transfer_instructions"]["reference"],
                                          payment["amount_due"], uuid.uuid4().hex)
            return path, body, headers
        if key == ("POST", "/contacts/me/verification"):
            return path, {"code": await self.code_for(actor)}, None
        bodies: dict[tuple[str, str], Any] = {
            ("POST", "/orders"): place_body("supplier-of-new-orders"),
            ("POST", "/confirm"): CONFIRM,
            ("POST", "/decline"): {"reason": "out of stock"},
            ("POST", "/cancel"): {"reason": "found it cheaper"},
            ("POST", "/messages"): {"text": "when will it ship?"},
            ("POST", "/payments/card"): CARD,
            ("POST", "/shipment"): self.dispatch_proof(),
            ("POST", "/dispute"): self.dispute_body(),
            ("POST", "/dispute/statements"): {"text": f"my side {uuid.uuid4().hex}"},
            ("POST", "/dispute/answer"): {"answer": "reject", "message": "they are M8"},
            ("POST", "/dispute/decision"): {"outcome": "release", "reason": "as ordered"},
            ("PUT", "/contacts/me"): {"email": "someone@example.com"},
        }
        return path, bodies.get(key), None

    async def code_for(self, actor: Actor | None) -> str:
        """The verification code mailed to ``actor``'s newly registered address ("000000"
        for a caller who may not register one)."""
        if actor is None or actor.role not in (Role.BUYER, Role.SUPPLIER):
            return "000000"
        address = f"{actor.party_id}.{actor.role}@example.com"
        response = await self.call("notify", "PUT", "/contacts/me", actor, {"email": address})
        assert response.status_code == 202, response.text
        [mail] = [m for m in self.platform.infra.mailbox.to(address)]
        return re.search(r"Code: +(\d{6})", mail.text).group(1)

    def trade_for(self, row: Row, allowed: bool) -> Trade:
        if row.stage == "-":
            return self.shared["placed"]
        if allowed and row.once:
            return self.fresh[row.stage].pop()
        return self.shared[row.stage]


class ServicesByHost(httpx.AsyncBaseTransport):
    """The console's network: ``http://<service>/...`` reaches that service's app."""

    def __init__(self, platform: InMemoryPlatform) -> None:
        self.platform = platform

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        app = self.platform.runtimes[request.url.host].http
        return await httpx.ASGITransport(app=app).handle_async_request(request)


def place_body(supplier: str) -> dict[str, Any]:
    return {"supplier": {"party_id": supplier, "name": "Shenzhen Parts"},
            "buyer_contact": {"name": "ACME Imports"},
            "items": [{"description": "Stainless bolts M8", "quantity": 40, "unit_price": 2350}],
            "currency": "USD",
            "destination": {"recipient": "ACME", "line1": "Hafenstrasse 1", "city": "Hamburg",
                            "country": "DE"},
            "delivery_period_days": 30}


CONFIRM = {"logistics": {"shipping_method": "express", "carrier": "dhl"}}


def fresh_orders_needed() -> dict[str, int]:
    needed: dict[str, int] = defaultdict(int)
    for row in rows():
        if row.once:
            needed[row.stage] += sum(1 for v in row.cells.values() if v == "Y")
    return needed


@pytest.fixture(scope="module")
async def world():
    platform = InMemoryPlatform()
    await platform.start(deliver_in_background=False)
    world = World(platform)
    await world.build(fresh_orders_needed())
    yield world
    await platform.stop()


def check(row: Row, column: str, expected: str, response: httpx.Response, key: str) -> str | None:
    """What is wrong with this cell's answer, if anything."""
    status = response.status_code
    if expected == "-":
        refused = (401,) if column == "anon" else (401, 403, 404)
        return None if status in refused else f"expected refusal {refused}, got {status}"
    if not 200 <= status < 300:
        return f"expected success, got {status}: {response.text[:200]}"
    if expected in ("L", "H") and (key in response.text) != (expected == "L"):
        return f"expected the listing to {'show' if expected == 'L' else 'hide'} {key}"
    return None


async def test_every_endpoint_answers_every_caller_as_the_matrix_says(world: World) -> None:
    wrong: list[str] = []
    for row in rows():
        # Refusals first, on the order the allowed cells would change: a missing rule
        # shows as a success, not as a conflict with the order's state.
        for column, expected in sorted(row.cells.items(), key=lambda c: c[1] != "-"):
            trade = world.trade_for(row, expected != "-")
            actor = trade.actor(column)
            path, body, headers = await world.request(row, trade, actor)
            response = await world.call(row.service, row.method, path, actor, body, headers,
                                        settle=expected != "-")
            key = world.transfer_id if "transfers" in row.path else trade.order_id
            if problem := check(row, column, expected, response, key):
                wrong.append(f"{row.service} {row.method} {row.path} as {column}: {problem}")
    for name in SERVICES:
        for method, path in PUBLIC:
            response = await world.call(name, method, path, None)
            if response.status_code not in (200, 503 if path == "/health/ready" else 200):
                wrong.append(f"{name} {method} {path} as anon: {response.status_code}")
    assert not wrong, "\n".join(wrong)


async def test_the_console_proxy_answers_as_the_services_do(world: World) -> None:
    """The console forwards the caller's own token: each read of a public resource through
    it answers every caller as the service does; nothing else of a service is reachable."""
    wrong: list[str] = []
    for row in rows():
        if row.method != "GET" or row.path.split("/")[1] not in PUBLIC_SEGMENTS[row.service]:
            continue
        for column, expected in row.cells.items():
            trade = world.trade_for(row, allowed=False)
            path, _, _ = await world.request(row, trade, trade.actor(column))
            response = await world.call("console", "GET", f"/api/{row.service}{path}",
                                        trade.actor(column))
            if problem := check(row, column, expected, response, trade.order_id):
                wrong.append(f"console GET /api/{row.service}{row.path} as {column}: {problem}")
    agent = Actor(party_id=AGENT, role=Role.AGENT)
    for row in rows():
        if row.path.split("/")[1] not in PUBLIC_SEGMENTS[row.service]:
            response = await world.call("console", row.method, f"/api/{row.service}{row.path}",
                                        agent)
            if response.status_code != 404:
                wrong.append(f"console {row.method} /api/{row.service}{row.path}: reachable "
                             f"({response.status_code})")
    for name in SERVICES:
        for method, path in PUBLIC:
            response = await world.call("console", method, f"/api/{name}{path}", agent)
            if response.status_code != 404:
                wrong.append(f"console {method} /api/{name}{path}: reachable")
    assert not wrong, "\n".join(wrong)


def test_the_matrix_has_a_row_for_every_endpoint_and_no_other() -> None:
    documented: set[tuple[str, str, str]] = set()
    for name in SERVICES:
        with mock.patch("shared.infra.runtime.mongo_client", lambda _settings: MemoryMongo()):
            spec = build(name, settings_class(name)(topic_prefix="matrix")).http.openapi()
        documented |= {(name, method.upper(), path) for path, ops in spec["paths"].items()
                       for method in ops}
    in_table = {(r.service, r.method, r.path) for r in rows()}
    public = {(name, method, path) for name in SERVICES for method, path in PUBLIC}
    assert documented - public - in_table == set(), "endpoints without a row in MATRIX"
    assert in_table - documented == set(), "rows of MATRIX without an endpoint"
    assert public <= documented

    console = console_app.build(ConsoleSettings()).openapi()
    served = {(m.upper(), p) for p, ops in console["paths"].items() for m in ops}
    assert served - PUBLIC == CONSOLE, "console endpoints without a rule"
