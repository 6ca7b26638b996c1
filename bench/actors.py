"""A whole card trade played by its parties over the services' HTTP APIs, as a client outside
the platform would: place, confirm, pay by card, ship, confirm receipt, until the order is
closed. Each party waits for exactly what it needs before acting, learnt from the
``Observer`` (an event produced, or a service's consumer having handled one), not by polling
the APIs, so the benchmark's own requests are the trade's and nothing more.

The parties come from a pool registered before the trades (each registers and verifies its
own contact email, as notify requires before it mails a party), as a B2B platform's
returning buyers and suppliers would."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from shared.contracts.parties import Role
from shared.infra.auth import mint_token

from bench.observe import Observer

CARD_APPROVED = "4242424242424242"


class RequestFailed(Exception):
    pass


class Actors:
    """One keep-alive HTTP client per service, and a token per party."""

    def __init__(self, urls: dict[str, str], secret: str) -> None:
        # Idle connections are dropped well before uvicorn's 5 s keep-alive ends (both clocks
        # lag on a starved machine), so a request never goes out on a connection the server
        # is closing (a ReadError, not the platform's fault).
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=100, keepalive_expiry=2.0)
        self.clients = {name: httpx.AsyncClient(base_url=url, limits=limits, timeout=30.0)
                        for name, url in urls.items()}
        self.secret = secret

    async def close(self) -> None:
        await asyncio.gather(*(client.aclose() for client in self.clients.values()))

    async def call(self, service: str, method: str, path: str, party: str, role: Role,
                   body: Any = None) -> Any:
        token = mint_token(self.secret, party, role)
        response = await self.clients[service].request(
            method, path, json=body, headers={"authorization": f"Bearer {token}"})
        if response.status_code >= 300:
            template = path.replace(path.split("/")[2], "{id}") if path.count("/") > 1 else path
            raise RequestFailed(f"{method} {service}{template} answered {response.status_code}")
        return response.json() if response.content else None


@dataclass(frozen=True)
class Parties:
    buyers: list[str]
    suppliers: list[str]

    def for_trade(self, number: int) -> tuple[str, str]:
        return (self.buyers[number % len(self.buyers)],
                self.suppliers[(number // len(self.buyers)) % len(self.suppliers)])


async def register_parties(actors: Actors, observer: Observer, count: int) -> Parties:
    """``count`` buyers and ``count`` suppliers, each with a verified contact email."""
    run = uuid.uuid4().hex[:8]
    buyers = [f"buyer-{run}-{i}" for i in range(count)]
    suppliers = [f"supplier-{run}-{i}" for i in range(count)]
    await asyncio.gather(*(_register(actors, observer, p, Role.BUYER) for p in buyers),
                         *(_register(actors, observer, p, Role.SUPPLIER) for p in suppliers))
    return Parties(buyers, suppliers)


async def _register(actors: Actors, observer: Observer, party: str, role: Role) -> None:
    address = f"{party}@{role}s.example"
    await actors.call("notify", "PUT", "/contacts/me", party, role, {"email": address})
    mail = email.message_from_bytes((await observer.mail(address, "contact_verification")).read_bytes(),
                                    policy=email.policy.default)
    code = re.search(r"Code: +(\d{6})", mail.get_body(preferencelist=("plain",)).get_content())
    if code is None:
        raise RequestFailed(f"no verification code in the mail to {address}")
    await actors.call("notify", "POST", "/contacts/me/verification", party, role, {"code": code[1]})


@dataclass
class Trade:
    intended_start: float  # epoch seconds: when the open-loop schedule starts it
    buyer: str
    supplier: str
    order_id: str = ""
    started: float = 0.0
    closed_at: float | None = None
    error: str | None = None
    steps: dict[str, float] = field(default_factory=dict)

    @property
    def latency(self) -> float | None:
        return None if self.closed_at is None else self.closed_at - self.intended_start


async def play(trade: Trade, actors: Actors, observer: Observer) -> Trade:
    trade.started = time.time()
    buyer, supplier = trade.buyer, trade.supplier
    try:
        order = await actors.call("order", "POST", "/orders", buyer, Role.BUYER, {
            "supplier": {"party_id": supplier, "name": "Shenzhen Parts"},
            "buyer_contact": {"name": "ACME Imports"},
            "items": [{"description": "Stainless bolts M8", "quantity": 40, "unit_price": 2350},
                      {"description": "Hex nuts M8", "quantity": 40, "unit_price": 780}],
            "currency": "USD",
            "destination": {"recipient": "ACME", "line1": "Hafenstrasse 1", "city": "Hamburg",
                            "country": "DE"},
            "delivery_period_days": 10})
        trade.order_id = order_id = order["order_id"]
        trade.steps["placed"] = time.time()
        await actors.call("order", "POST", f"/orders/{order_id}/confirm", supplier, Role.SUPPLIER,
                          {"logistics": {"shipping_method": "express", "carrier": "dhl"}})
        await observer.event(order_id, "payment.escrow_opened")
        trade.steps["escrow open"] = time.time()
        await actors.call("payment", "POST", f"/orders/{order_id}/payments/card", buyer, Role.BUYER,
                          {"number": CARD_APPROVED, "expiry_month": 12,
                           "expiry_year": datetime.now(UTC).year + 2, "cvc": "123",
                           "holder_name": "Jane Buyer"})
        await observer.event(order_id, "shipping.shipment_expected")
        trade.steps["awaiting dispatch"] = time.time()
        await actors.call("shipping", "POST", f"/orders/{order_id}/shipment", supplier, Role.SUPPLIER,
                          {"carrier": "dhl", "tracking_number": "1234567890",
                           "ship_date": datetime.now(UTC).date().isoformat()})
        dispatched = await observer.event(order_id, "shipping.shipment_dispatched")
        await observer.consumed("dispute", dispatched)
        trade.steps["dispatch known"] = time.time()
        await actors.call("dispute", "POST", f"/orders/{order_id}/receipt", buyer, Role.BUYER, {})
        closed = await observer.event(order_id, "order.closed")
        trade.closed_at = closed.at
    except (RequestFailed, httpx.HTTPError) as exc:
        trade.error = str(exc) if isinstance(exc, RequestFailed) else f"{type(exc).__name__}"
    return trade
