"""The sandbox bank adapter: reports an incoming transfer to the payment service as a real
bank adapter would, with a bank token and a signed body.

    python -m services.payment.sandbox_bank --reference ESCV9S4RRCVXYC --amount 125000 --currency USD

It signs with the first key of ``BANK_WEBHOOK_KEYS`` and mints its token with
``AUTH_SECRET`` (both default to the development values).
"""

from __future__ import annotations

import argparse
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from shared.contracts.parties import Role
from shared.infra.auth import mint_token

from services.payment.bank_signature import parse_keys, signed_headers
from services.payment.settings import PaymentSettings

BANK_PARTY = "sandbox-bank"


def signed_notification(transfer: dict[str, Any], settings: PaymentSettings,
                        now: datetime) -> tuple[bytes, dict[str, str]]:
    """The body and the signature headers of one transfer report."""
    key_id, secret = next(iter(parse_keys(settings.bank_webhook_keys.get_secret_value()).items()))
    body = json.dumps(transfer).encode()
    return body, {"content-type": "application/json", **signed_headers(key_id, secret, body, now)}


def bank_token(settings: PaymentSettings) -> str:
    return mint_token(settings.auth_secret.get_secret_value(), BANK_PARTY, Role.BANK)


def main() -> None:
    parser = argparse.ArgumentParser(description="Report an incoming bank transfer (sandbox bank).")
    parser.add_argument("--url", default="http://127.0.0.1:8002", help="the payment service")
    parser.add_argument("--reference", required=True, help="the sender's text, e.g. the order's reference")
    parser.add_argument("--amount", type=int, required=True, help="in minor units")
    parser.add_argument("--currency", default="USD")
    parser.add_argument("--transfer-id", default=None)
    parser.add_argument("--sender-name", default="Sandbox Sender Ltd")
    parser.add_argument("--sender-account", default="DE89370400440532013000")
    args = parser.parse_args()
    settings = PaymentSettings()
    transfer = {"transfer_id": args.transfer_id or f"sbx-{uuid.uuid4().hex}",
                "reference": args.reference, "amount": args.amount, "currency": args.currency,
                "sender_name": args.sender_name, "sender_account": args.sender_account}
    body, headers = signed_notification(transfer, settings, datetime.now(UTC))
    answer = httpx.post(f"{args.url}/bank/transfers", content=body,
                        headers={**headers, "authorization": f"Bearer {bank_token(settings)}"})
    print(answer.status_code, answer.text)


if __name__ == "__main__":
    main()
