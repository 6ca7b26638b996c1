"""Authenticated envelopes: an event is believed only from the service that produces it.

Every service signs what it publishes with its own key, over the message body (which names
the producer and the event type), and puts ``<key id>:<hex signature>`` in the
``x-escrow-signature`` header: an Ed25519 signature, or HMAC-SHA256. A consumer takes a
message only when

- the event type belongs to the producer the envelope names (the catalogue in
  ``shared/contracts/events.py``: each event class declares its producer),
- it came on that producer's event topic (or on the consumer's own retry topic, where
  replayed dead letters keep their original headers), and
- the signature verifies with one of that producer's keys, chosen by key id.

So a service that can write to one topic cannot make another service's event believed.
Keys come from ``ENVELOPE_KEYS`` (comma-separated ``producer:key-id:ed25519:<public key>``
or ``producer:key-id:<HMAC secret>`` entries); a producer signs with its first listed key
and consumers accept every listed one, which is how keys rotate (docs/security.md).
Ed25519 is the one to deploy: a service holds only its own private key
(``ENVELOPE_SIGNING_KEY``) and the others' public keys, so not even a compromised consumer
can sign as another producer; with HMAC a consumer holds each producer's secret. In
development, HMAC keys are derived from a published secret.

    python -m shared.infra.signing new-keys   # a fresh Ed25519 key per producing service
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from shared.contracts.envelope import Envelope, UnknownEventType, event_class
from shared.contracts.topics import Service, Topics

SIGNATURE_HEADER = "x-escrow-signature"
DEV_ENVELOPE_SECRET = b"dev-only-envelope-secret-do-not-use-in-production"
DEV_KEY_ID = "dev"
MIN_KEY_BYTES = 32
ED25519 = "ed25519"


class Unauthentic(Exception):
    """The message cannot be believed: wrong topic, wrong producer or a bad signature."""


class HmacKey:
    """A shared secret: whoever verifies with it can also sign with it."""

    def __init__(self, secret: bytes) -> None:
        self.secret = secret

    @property
    def can_sign(self) -> bool:
        return True

    def sign(self, body: bytes) -> str:
        return hmac.new(self.secret, body, hashlib.sha256).hexdigest()

    def verifies(self, body: bytes, signature: str) -> bool:
        return hmac.compare_digest(self.sign(body), signature)


class Ed25519Key:
    """A producer's public key, and its private key only in the producer itself."""

    def __init__(self, public: Ed25519PublicKey, private: Ed25519PrivateKey | None = None) -> None:
        self.public = public
        self.private = private

    @property
    def can_sign(self) -> bool:
        return self.private is not None

    def sign(self, body: bytes) -> str:
        if self.private is None:
            raise ValueError("this service holds only the public half of the key")
        return self.private.sign(body).hex()

    def verifies(self, body: bytes, signature: str) -> bool:
        try:
            self.public.verify(bytes.fromhex(signature), body)
        except (InvalidSignature, ValueError):
            return False
        return True


Key = HmacKey | Ed25519Key
Keys = dict[Service, list[tuple[str, Key]]]


def development_keys() -> Keys:
    return {s: [(DEV_KEY_ID, HmacKey(hmac.digest(DEV_ENVELOPE_SECRET, str(s).encode(), "sha256")))]
            for s in Service}


def _raw_key(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise ValueError(f"{what} is not 32 bytes of base64")
    return raw


def parse_keys(spec: str) -> Keys:
    """``order:k2:ed25519:<public key>,order:k1:<older HMAC secret>,payment:k1:...`` → keys
    per producer."""
    keys: Keys = {}
    for entry in filter(None, (e.strip() for e in spec.split(","))):
        producer, sep, rest = entry.partition(":")
        key_id, sep2, secret = rest.partition(":")
        if not (sep and sep2 and key_id and secret):
            raise ValueError("ENVELOPE_KEYS entries are producer:key-id:ed25519:<public key> "
                             "or producer:key-id:secret")
        try:
            service = Service(producer)
        except ValueError:
            raise ValueError(f"ENVELOPE_KEYS names an unknown producer {producer!r}") from None
        key: Key
        if secret.startswith(f"{ED25519}:"):
            raw = _raw_key(secret.removeprefix(f"{ED25519}:"),
                           f"ENVELOPE_KEYS: the public key {producer}:{key_id}")
            key = Ed25519Key(Ed25519PublicKey.from_public_bytes(raw))
        elif len(secret.encode()) < MIN_KEY_BYTES:
            raise ValueError(f"ENVELOPE_KEYS: the key {producer}:{key_id} is shorter than "
                             f"{MIN_KEY_BYTES} bytes")
        else:
            key = HmacKey(secret.encode())
        keys.setdefault(service, []).append((key_id, key))
    return keys


def parse_signing_key(spec: str) -> tuple[str, Ed25519Key]:
    """``key-id:<base64 private key>`` → this service's own Ed25519 key."""
    key_id, sep, private = spec.strip().partition(":")
    if not (sep and key_id and private):
        raise ValueError("ENVELOPE_SIGNING_KEY is key-id:<base64 Ed25519 private key>")
    secret = Ed25519PrivateKey.from_private_bytes(_raw_key(private, "ENVELOPE_SIGNING_KEY"))
    return key_id, Ed25519Key(secret.public_key(), secret)


def new_keys(key_id: str) -> tuple[dict[Service, str], str]:
    """A fresh Ed25519 key per producing service: each one's ENVELOPE_SIGNING_KEY, and the
    ENVELOPE_KEYS that every service gets (public halves only)."""
    signing: dict[Service, str] = {}
    public: list[str] = []
    for service in Service:
        secret = Ed25519PrivateKey.generate()
        raw = secret.private_bytes_raw()
        signing[service] = f"{key_id}:{base64.b64encode(raw).decode()}"
        public_raw = secret.public_key().public_bytes_raw()
        public.append(f"{service}:{key_id}:{ED25519}:{base64.b64encode(public_raw).decode()}")
    return signing, ",".join(public)


@dataclass
class EnvelopeAuthenticator:
    """Signs this service's messages and checks everyone's."""

    service: Service
    topics: Topics
    keys: Keys = field(default_factory=development_keys)

    @classmethod
    def from_settings(cls, service: Service, topics: Topics, settings: Any) -> EnvelopeAuthenticator:
        spec = settings.envelope_keys.get_secret_value() if settings.envelope_keys else ""
        own = (settings.envelope_signing_key.get_secret_value()
               if settings.envelope_signing_key else "")
        if not spec:
            if not settings.development:
                raise ValueError("ENVELOPE_KEYS is not set (docs/security.md)")
            return cls(service, topics)
        keys = parse_keys(spec)
        if own:  # signs with its private key; its public half is listed for the others
            key_id, key = parse_signing_key(own)
            keys[service] = [(key_id, key)] + [(k, v) for k, v in keys.get(service, [])
                                               if k != key_id]
        current = keys.get(service, [])[:1]
        if not (current and current[0][1].can_sign):
            raise ValueError(f"no key to sign {service}'s events with: set ENVELOPE_SIGNING_KEY "
                             f"(Ed25519) or list an HMAC key for {service} first in ENVELOPE_KEYS")
        return cls(service, topics, keys)

    def sign(self, body: bytes) -> dict[str, str]:
        """The header to publish with ``body``, signed with this service's current key."""
        key_id, key = self.keys[self.service][0]
        return {SIGNATURE_HEADER: f"{key_id}:{key.sign(body)}"}

    def check(self, envelope: Envelope, body: bytes, headers: Mapping[str, Any] | None,
              topic: str | None) -> None:
        """Raise ``Unauthentic`` with the reason unless the message can be believed."""
        check_producer(envelope)
        producer = envelope.producer
        if topic is not None and topic not in (self.topics.events(producer),
                                               self.topics.retries(self.service)):
            raise Unauthentic(f"{envelope.event_type} came on {topic}, not on its producer's "
                              f"topic {self.topics.events(producer)}")
        signature = str((headers or {}).get(SIGNATURE_HEADER, ""))
        key_id, _, digest = signature.partition(":")
        if not digest:
            raise Unauthentic(f"{envelope.event_type} carries no {SIGNATURE_HEADER} header")
        key = dict(self.keys.get(producer, [])).get(key_id)
        if key is None:
            raise Unauthentic(f"no key {key_id!r} is known for {producer}")
        if not key.verifies(body, digest):
            raise Unauthentic(f"the signature of {envelope.event_type} does not verify with "
                              f"{producer}'s key {key_id!r}")


def check_producer(envelope: Envelope) -> None:
    """The event type must be one its named producer publishes (the catalogue)."""
    try:
        declared = event_class(envelope.event_type, envelope.schema_version).producer
    except UnknownEventType:
        return  # left to the consumer, which dead-letters unknown types as invalid
    if declared != envelope.producer:
        raise Unauthentic(f"{envelope.event_type} is published by {declared}, "
                          f"not by {envelope.producer}")


def main(argv: list[str]) -> None:
    if argv[:1] != ["new-keys"]:
        sys.exit("usage: python -m shared.infra.signing new-keys [key-id]")
    signing, public = new_keys(argv[1] if len(argv) > 1 else "k1")
    print("# Every service: ENVELOPE_KEYS (public keys only)")
    print(f"ENVELOPE_KEYS={public}")
    for service, key in signing.items():
        print(f"# {service} only, a secret: ENVELOPE_SIGNING_KEY={key}")


if __name__ == "__main__":
    main(sys.argv[1:])
