"""A trade played through on the running platform, for a newcomer to watch: the buyer
orders, the supplier confirms, the buyer pays by card into escrow, the supplier ships
with courier proof, the buyer confirms receipt, and the supplier is paid.

Run by `make run` (or `make demo` against a platform already running).
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import sys
import time
import urllib.parse
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from shared.contracts.parties import Role  # noqa: E402
from shared.infra.auth import mint_token  # noqa: E402
from shared.infra.settings import ServiceSettings  # noqa: E402

from deploy.local.service_ports import service_ports  # noqa: E402

PORTS = service_ports()
MAILBOX = os.environ.get("MAILBOX_URL", "http://127.0.0.1:8025")
SECRET = ServiceSettings().auth_secret.get_secret_value()
RUN = uuid.uuid4().hex[:6]
BUYER, SUPPLIER = f"buyer-acme-{RUN}", f"supplier-shenzhen-{RUN}"


def call(service: str, method: str, path: str, party: str, role: Role, body: dict | None = None) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{PORTS[service]}{path}", method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"authorization": f"Bearer {mint_token(SECRET, party, role)}",
                 "content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        sys.exit(f"{method} {path} answered {error.code}: {error.read().decode()}")


def wait_for(what: str, check, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.3)
    sys.exit(f"gave up waiting for {what} after {timeout:.0f}s; read .run/logs/*.log")


def step(text: str) -> None:
    print(f"\n== {text}")


def register_contact(party: str, role: Role, address: str) -> None:
    """The party registers its own contact email and enters the code mailed there."""
    call("notify", "PUT", "/contacts/me", party, role, {"email": address})
    entry = wait_for(f"the verification code for {address}", lambda: _verification_mail(address))
    with urllib.request.urlopen(entry["raw_url"], timeout=10) as response:
        text = email.message_from_bytes(response.read(), policy=email.policy.default)
    code = re.search(r"Code: +(\d{6})", text.get_body(preferencelist=("plain",)).get_content())
    call("notify", "POST", "/contacts/me/verification", party, role, {"code": code.group(1)})
    print(f"   {party}: {address} verified")


def main() -> None:
    step("Buyer and supplier each register and verify their own contact email")
    register_contact(BUYER, Role.BUYER, f"purchasing-{RUN}@acme.example")
    register_contact(SUPPLIER, Role.SUPPLIER, f"sales-{RUN}@shenzhen-parts.example")

    step("Buyer places an order, naming the supplier by its party id")
    order = call("order", "POST", "/orders", BUYER, Role.BUYER, {
        "supplier": {"party_id": SUPPLIER, "name": "Shenzhen Precision Parts"},
        "buyer_contact": {"name": "ACME Imports GmbH"},
        "items": [{"description": "Stainless bolts M8, box of 100", "quantity": 40, "unit_price": 2350},
                  {"description": "Hex nuts M8, box of 100", "quantity": 40, "unit_price": 780}],
        "currency": "USD",
        "destination": {"recipient": "ACME Imports GmbH", "line1": "Hafenstrasse 1", "city": "Hamburg",
                        "postal_code": "20457", "country": "DE"},
        "delivery_period_days": 10})
    order_id = order["order_id"]
    print(f"   order {order_id}, total USD {order['total'] / 100:,.2f}")

    step("Supplier confirms with its logistics")
    call("order", "POST", f"/orders/{order_id}/confirm", SUPPLIER, Role.SUPPLIER,
         {"logistics": {"shipping_method": "express", "carrier": "dhl"}})

    step("Buyer pays into escrow by card (sandbox card 4242 4242 4242 4242)")
    wait_for("escrow to open", lambda: _status("payment", f"/orders/{order_id}/payment", BUYER, Role.BUYER))
    call("payment", "POST", f"/orders/{order_id}/payments/card", BUYER, Role.BUYER, {
        "number": "4242424242424242", "expiry_month": 12, "expiry_year": datetime.now(UTC).year + 2,
        "cvc": "123", "holder_name": "Jane Buyer"})
    wait_for("the order to be paid", lambda: call("order", "GET", f"/orders/{order_id}", BUYER,
                                                  Role.BUYER)["status"] == "paid")

    step("Supplier ships and submits the courier proof")
    wait_for("the shipment to expect dispatch",
             lambda: (_status("shipping", f"/orders/{order_id}/shipment", SUPPLIER, Role.SUPPLIER) or {})
             .get("status") == "awaiting_dispatch")
    call("shipping", "POST", f"/orders/{order_id}/shipment", SUPPLIER, Role.SUPPLIER, {
        "carrier": "dhl", "tracking_number": "1234567890", "ship_date": datetime.now(UTC).date().isoformat()})

    step("Buyer receives the goods and confirms receipt")
    wait_for("the dispute service to know the shipment",
             lambda: (_status("dispute", f"/orders/{order_id}/protection", BUYER, Role.BUYER) or {})
             .get("ship_date"))
    call("dispute", "POST", f"/orders/{order_id}/receipt", BUYER, Role.BUYER, {})

    step("Payment is released to the supplier; the order closes")
    final = wait_for("the order to close", lambda: (lambda o: o if o["status"] == "closed" else None)(
        call("order", "GET", f"/orders/{order_id}", BUYER, Role.BUYER)))
    ledger = call("payment", "GET", f"/orders/{order_id}/ledger", BUYER, Role.BUYER)
    print(f"   released to supplier: {final['released_total'] / 100:,.2f}, refunded: "
          f"{final['refunded_total'] / 100:,.2f}")
    print(f"   ledger balances: {json.dumps(ledger.get('balances', ledger))}")
    print("   timeline:")
    for entry in final["timeline"]:
        print(f"     {entry['at'][:19]}  {entry['what']}")

    step("Emails both parties received")
    mails = wait_for("the emails", lambda: _mails(order_id), timeout=30)
    for mail in mails:
        print(f"   to {', '.join(mail['rcpt_tos']):<40} {mail['subject']}")
    print(f"\nRead them at {MAILBOX} (files in .run/mail/). "
          f"APIs: {', '.join(f'http://127.0.0.1:{port}/docs' for port in PORTS.values())}. "
          "Stop everything with `make stop`.")


def _status(service: str, path: str, party: str, role: Role) -> dict | None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{PORTS[service]}{path}",
        headers={"authorization": f"Bearer {mint_token(SECRET, party, role)}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return None
        raise


def _mailbox() -> list[dict]:
    """Every caught mail as {subject, rcpt_tos, received_at, raw_url}, from Mailpit's API
    (docker compose) or from the local mailbox's (make run)."""
    try:
        with urllib.request.urlopen(f"{MAILBOX}/api/v1/messages?limit=5000", timeout=10) as response:
            found = json.loads(response.read()).get("messages", [])
        return [{"subject": m["Subject"], "rcpt_tos": [t["Address"] for t in m.get("To") or []],
                 "received_at": m["Created"], "raw_url": f"{MAILBOX}/api/v1/message/{m['ID']}/raw"}
                for m in found]
    except urllib.error.HTTPError as error:
        if error.code != 404:
            raise
    with urllib.request.urlopen(f"{MAILBOX}/api/messages", timeout=10) as response:
        found = json.loads(response.read())
    return [{**m, "raw_url": f"{MAILBOX}/raw/{m['file']}"} for m in found]


def _verification_mail(address: str) -> dict | None:
    entries = [m for m in _mailbox() if address in m["rcpt_tos"] and "confirm your email" in m["subject"].lower()]
    return sorted(entries, key=lambda m: m["received_at"])[-1] if entries else None


def _mails(order_id: str) -> list[dict] | None:
    mine = [m for m in _mailbox() if order_id in m.get("subject", "")]
    # Ten steps, each told to both parties.
    return sorted(mine, key=lambda m: m["received_at"]) if len(mine) >= 20 else None


if __name__ == "__main__":
    main()
