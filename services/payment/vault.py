"""Encryption at rest of personal payment data (the sender's name and account of a bank
transfer). Only ciphertext is stored; it is opened only to send money back to that account."""

from __future__ import annotations

import json

from cryptography.fernet import Fernet, InvalidToken

from services.payment.provider import Payee


class PaymentDataVault:
    def __init__(self, key: str) -> None:
        try:
            self._fernet = Fernet(key.encode())
        except ValueError as exc:
            raise ValueError("PAYMENT_DATA_KEY must be a Fernet key (32 url-safe base64 bytes); "
                             "make one with `python -c 'from cryptography.fernet import Fernet; "
                             "print(Fernet.generate_key().decode())'`") from exc

    def seal(self, name: str, account: str) -> str:
        return self._fernet.encrypt(json.dumps({"name": name, "account": account}).encode()).decode()

    def open(self, sealed: str) -> Payee:
        try:
            data = json.loads(self._fernet.decrypt(sealed.encode()))
        except InvalidToken as exc:
            raise ValueError("payment data cannot be decrypted with the configured key") from exc
        return Payee(name=data["name"], account=data["account"])
