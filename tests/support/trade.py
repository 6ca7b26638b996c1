"""A trade driven through the actor APIs of the running services, as its parties would."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import date
from typing import Any

from shared.contracts.parties import Role

from services.payment.sandbox_bank import BANK_PARTY, signed_notification
from services.payment.settings import PaymentSettings
from tests.support.platform import Platform, eventually

CARD_APPROVED = "4242424242424242"


@dataclass
class Trade:
    platform: Platform
    order_id: str = ""
    total: int = 0

    def __post_init__(self) -> None:
        run = uuid.uuid4().hex[:8]
        self.buyer, self.supplier = f"buyer-{run}", f"supplier-{run}"
        self.buyer_email, self.supplier_email = f"{self.buyer}@buyers.example", f"{self.supplier}@suppliers.example"

    # --- acting -------------------------------------------------------------------------

    async def call(self, service: str, method: str, path: str, who: str | None = None,
                   role: Role | None = None, body: Any = None, expect: int | None = 200) -> Any:
        who = who or self.buyer
        role = role or (Role.BUYER if who == self.buyer else Role.SUPPLIER)
        async with self.platform.client(service, who, role) as client:
            response = await client.request(method, path, json=body)
        if expect is not None:
            assert response.status_code == expect, f"{method} {path}: {response.status_code} {response.text}"
        return response

    async def register_contact(self, party: str, address: str) -> None:
        """The party registers its own contact email and enters the code mailed to it."""
        await self.call("notify", "PUT", "/contacts/me", party, body={"email": address}, expect=202)

        async def code_arrived() -> str:
            codes = [m.text for m in self.platform.infra.mailbox.to(address)
                     if m.headers.get("x-escrow-step") == "contact_verification"]
            assert codes, f"no verification code mailed to {address} yet"
            return re.search(r"Code: +(\d{6})", codes[-1]).group(1)
        code = await eventually(code_arrived)
        await self.call("notify", "POST", "/contacts/me/verification", party, body={"code": code})

    async def place(self, items: list[dict] | None = None, delivery_period_days: int = 10,
                    *, contacts: bool = True) -> str:
        """Place the order; first (with ``contacts``) both parties verify their own emails."""
        if contacts:
            await asyncio.gather(self.register_contact(self.buyer, self.buyer_email),
                                 self.register_contact(self.supplier, self.supplier_email))
        items = items or [{"description": "Stainless bolts M8", "quantity": 40, "unit_price": 2350},
                          {"description": "Hex nuts M8", "quantity": 40, "unit_price": 780}]
        response = await self.call("order", "POST", "/orders", expect=201, body={
            "supplier": {"party_id": self.supplier, "name": "Shenzhen Parts"},
            "buyer_contact": {"name": "ACME Imports"},
            "items": items, "currency": "USD",
            "destination": {"recipient": "ACME", "line1": "Hafenstrasse 1", "city": "Hamburg", "country": "DE"},
            "delivery_period_days": delivery_period_days})
        order = response.json()
        self.order_id, self.total = order["order_id"], order["total"]
        return self.order_id

    async def confirm(self) -> None:
        await self.call("order", "POST", f"/orders/{self.order_id}/confirm", self.supplier,
                        body={"logistics": {"shipping_method": "express", "carrier": "dhl"}})
        await eventually(self._escrow_open)

    async def _escrow_open(self) -> dict:
        response = await self.call("payment", "GET", f"/orders/{self.order_id}/payment", expect=None)
        assert response.status_code == 200, response.text
        return response.json()

    async def pay_by_card(self, number: str = CARD_APPROVED, expect: int = 200) -> Any:
        return await self.call("payment", "POST", f"/orders/{self.order_id}/payments/card", expect=expect,
                               body={"number": number, "expiry_month": 12, "expiry_year": 2031,
                                     "cvc": "123", "holder_name": "Jane Buyer"})

    async def transfer(self, amount: int, transfer_id: str | None = None, *,
                       reference: str | None = None, currency: str = "USD") -> Any:
        """The sandbox bank reports a transfer (by default to this order's reference): a bank
        token and a signed body."""
        if reference is None:
            reference = (await self.payment())["transfer_instructions"]["reference"]
        body, headers = signed_notification(
            {"transfer_id": transfer_id or uuid.uuid4().hex, "reference": reference, "amount": amount,
             "currency": currency, "sender_name": "ACME Imports",
             "sender_account": "DE89370400440532013000"}, PaymentSettings(), self.platform.clock.now())
        async with self.platform.client("payment", BANK_PARTY, Role.BANK) as client:
            return await client.post("/bank/transfers", content=body, headers=headers)

    async def shipment_expected(self) -> None:
        """Shipping has handled the funding: the delivery period and its reminder are set."""
        async def awaiting_dispatch():
            shipment = (await self.call("shipping", "GET", f"/orders/{self.order_id}/shipment",
                                        self.supplier)).json()
            assert shipment["status"] == "awaiting_dispatch", shipment
        await eventually(awaiting_dispatch)

    async def ship(self, ship_date: date | None = None) -> None:
        await self.shipment_expected()
        await self.call("shipping", "POST", f"/orders/{self.order_id}/shipment", self.supplier, body={
            "carrier": "dhl", "tracking_number": "1234567890",
            "ship_date": (ship_date or self.platform.clock.now().date()).isoformat()})
        await eventually(self._dispatch_known)

    async def _dispatch_known(self) -> None:
        response = await self.call("dispute", "GET", f"/orders/{self.order_id}/protection", expect=None)
        assert response.status_code == 200 and response.json().get("ship_date"), response.text

    async def confirm_receipt(self) -> None:
        await self.call("dispute", "POST", f"/orders/{self.order_id}/receipt", body={})

    async def paid_trade(self) -> None:
        await self.place()
        await self.confirm()
        await self.pay_by_card()
        await self.wait_status("paid")

    # --- reading ------------------------------------------------------------------------

    async def order(self) -> dict:
        return (await self.call("order", "GET", f"/orders/{self.order_id}")).json()

    async def payment(self) -> dict:
        return await eventually(self._escrow_open)

    async def ledger(self) -> dict:
        return (await self.call("payment", "GET", f"/orders/{self.order_id}/ledger")).json()

    async def wait_status(self, status: str, closure_reason: str | None = None) -> dict:
        async def reached():
            order = await self.order()
            assert order["status"] == status, (order["status"], [e["what"] for e in order["timeline"]])
            if closure_reason:
                assert order["closure_reason"] == closure_reason
            return order
        return await eventually(reached)

    async def balances(self) -> dict[str, int]:
        """The escrow's balances, checked against the ledger's invariant."""
        ledger = await self.ledger()
        assert ledger["balanced"], ledger
        balances = {k: ledger[k] for k in ("paid_in", "held", "released", "refunded")}
        assert balances["paid_in"] == balances["held"] + balances["released"] + balances["refunded"], balances
        return balances

    async def wait_balances(self, **expected: int) -> dict[str, int]:
        async def settled():
            balances = await self.balances()
            assert {k: balances[k] for k in expected} == expected, balances
            return balances
        return await eventually(settled)

    def mails(self) -> list:
        return self.platform.infra.mailbox.for_order(self.order_id)

    async def wait_mails(self, *expected: tuple[str, str]) -> list:
        """Wait until each (step, recipient) has arrived, then check none arrived twice."""
        addresses = {"buyer": self.buyer_email, "supplier": self.supplier_email}

        async def arrived():
            mails = self.mails()
            got = {(m.headers.get("x-escrow-step"), address) for m in mails for address in m.to}
            missing = [(s, r) for s, r in expected if (s, addresses.get(r, r)) not in got]
            assert not missing, f"missing emails {missing}; got {sorted(got)}"
            return mails
        mails = await eventually(arrived, timeout=90)
        sent = Counter((m.headers.get("x-escrow-event-id"), address) for m in mails for address in m.to)
        assert all(count == 1 for count in sent.values()), [k for k, c in sent.items() if c > 1]
        return mails
