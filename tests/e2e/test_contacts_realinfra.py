"""Contacts on the real servers: a party's trade mail waits until that party has verified
its own contact email, then goes out once; the other side never supplies an address."""

from __future__ import annotations

import pytest

from shared.contracts.parties import Role

from tests.support.platform import Platform, eventually
from tests.support.trade import Trade

pytestmark = pytest.mark.realinfra


async def test_mail_for_an_unverified_party_waits_and_is_sent_once_verified(platform: Platform):
    trade = Trade(platform)
    await trade.register_contact(trade.buyer, trade.buyer_email)
    await trade.place(contacts=False)
    await trade.wait_mails(("order_placed", "buyer"))

    async def supplier_mail_waits() -> None:
        response = await trade.call("notify", "GET", f"/orders/{trade.order_id}/emails", "agent-1",
                                    Role.AGENT)
        statuses = {m["recipient_role"]: m["status"] for m in response.json()}
        assert statuses == {"buyer": "sent", "supplier": "waiting_for_contact"}, statuses
    await eventually(supplier_mail_waits)
    assert not platform.infra.mailbox.to(trade.supplier_email)

    await trade.register_contact(trade.supplier, trade.supplier_email)
    await trade.wait_mails(("order_placed", "buyer"), ("order_placed", "supplier"))
    [placed] = [m for m in trade.mails() if trade.supplier_email in m.to]
    assert "new order from ACME Imports" in placed.subject
