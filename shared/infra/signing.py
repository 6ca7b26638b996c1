"""Authenticated envelopes: an event is believed only from the service that produces it.

Every service signs what it publishes with its own key (HMAC-SHA256 over the message body,
which names the producer and the event type) and puts ``<key id>:<hex digest>`` in the
``x-escrow-signature`` header. A consumer takes a message only when

- the event type belongs to the producer the envelope names (the catalogue in
  ``shared/contracts/events.py``: each event class declares its producer),
- it came on that producer's event topic (or on the consumer's own retry topic, where
  replayed dead letters keep their original headers), and
- the signature verifies with one of that producer's keys, chosen by key id.

So a service that can write to one topic cannot make another service's event believed.
Keys come from ``ENVELOPE_KEYS`` (``producer:key-id:secret`` entries, comma-separated); a
producer signs with its first listed key and consumers accept every listed one, which is how
keys rotate (docs/security.md). In development, keys are derived from a published secret.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.contracts.envelope import Envelope, UnknownEventType, event_class
from shared.contracts.topics import Service, Topics

SIGNATURE_HEADER = "x-escrow-signature"
DEV_ENVELOPE_SECRET = b"dev-only-envelope-secret-do-not-use-in-production"
DEV_KEY_ID = "dev"
MIN_KEY_BYTES = 32


class Unauthentic(Exception):
    """The message cannot be believed: wrong topic, wrong producer or a bad signature."""


def development_keys() -> dict[Service, list[tuple[str, bytes]]]:
    return {s: [(DEV_KEY_ID, hmac.digest(DEV_ENVELOPE_SECRET, str(s).encode(), "sha256"))]
            for s in Service}


def parse_keys(spec: str) -> dict[Service, list[tuple[str, bytes]]]:
    """``order:k2:secret,order:k1:older-secret,payment:k1:...`` → keys per producer."""
    keys: dict[Service, list[tuple[str, bytes]]] = {}
    for entry in filter(None, (e.strip() for e in spec.split(","))):
        producer, sep, rest = entry.partition(":")
        key_id, sep2, secret = rest.partition(":")
        if not (sep and sep2 and key_id and secret):
            raise ValueError("ENVELOPE_KEYS entries are producer:key-id:secret")
        try:
            service = Service(producer)
        except ValueError:
            raise ValueError(f"ENVELOPE_KEYS names an unknown producer {producer!r}") from None
        if len(secret.encode()) < MIN_KEY_BYTES:
            raise ValueError(f"ENVELOPE_KEYS: the key {producer}:{key_id} is shorter than "
                             f"{MIN_KEY_BYTES} bytes")
        keys.setdefault(service, []).append((key_id, secret.encode()))
    return keys


@dataclass
class EnvelopeAuthenticator:
    """Signs this service's messages and checks everyone's."""

    service: Service
    topics: Topics
    keys: dict[Service, list[tuple[str, bytes]]] = field(default_factory=development_keys)

    @classmethod
    def from_settings(cls, service: Service, topics: Topics, settings: Any) -> EnvelopeAuthenticator:
        spec = settings.envelope_keys.get_secret_value() if settings.envelope_keys else ""
        if not spec:
            if not settings.development:
                raise ValueError("ENVELOPE_KEYS is not set (docs/security.md)")
            return cls(service, topics)
        keys = parse_keys(spec)
        if service not in keys:
            raise ValueError(f"ENVELOPE_KEYS has no key for {service}, which signs its events")
        return cls(service, topics, keys)

    def sign(self, body: bytes) -> dict[str, str]:
        """The header to publish with ``body``, signed with this service's current key."""
        key_id, key = self.keys[self.service][0]
        return {SIGNATURE_HEADER: f"{key_id}:{hmac.new(key, body, hashlib.sha256).hexdigest()}"}

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
        if not hmac.compare_digest(hmac.new(key, body, hashlib.sha256).hexdigest(), digest):
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
