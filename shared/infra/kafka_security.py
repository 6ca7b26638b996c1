"""How the services authenticate to Kafka and encrypt the connection: settings passed to
the broker (FastStream) and to the admin client alike (docs/security.md lists the ACLs)."""

from __future__ import annotations

import ssl
from typing import Any

from faststream.kafka.security import parse_security
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

SASL = {"PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512}


def broker_security(settings: Any) -> BaseSecurity | None:
    """``KAFKA_SECURITY_PROTOCOL`` PLAINTEXT (development), SSL, SASL_PLAINTEXT or SASL_SSL;
    SASL with ``KAFKA_SASL_MECHANISM``, ``KAFKA_SASL_USERNAME``, ``KAFKA_SASL_PASSWORD``;
    TLS trusting ``KAFKA_SSL_CAFILE`` (else the system's CAs)."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    use_ssl = protocol in ("SSL", "SASL_SSL")
    context = ssl.create_default_context(cafile=settings.kafka_ssl_cafile) if use_ssl else None
    if protocol == "SSL":
        return BaseSecurity(ssl_context=context, use_ssl=True)
    if not settings.kafka_sasl_username or not settings.kafka_sasl_password:
        raise ValueError(f"KAFKA_SECURITY_PROTOCOL={protocol} needs KAFKA_SASL_USERNAME and "
                         "KAFKA_SASL_PASSWORD")
    return SASL[settings.kafka_sasl_mechanism](
        settings.kafka_sasl_username, settings.kafka_sasl_password.get_secret_value(),
        ssl_context=context, use_ssl=use_ssl)


def client_options(settings: Any) -> dict[str, Any]:
    """The same, as keyword arguments of an aiokafka client (admin, consumer, producer)."""
    return parse_security(broker_security(settings))
