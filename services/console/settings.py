from __future__ import annotations

from shared.infra.settings import GuardedSecret, ServiceSettings


class ConsoleSettings(ServiceSettings):
    """The console has no Kafka consumer and no collection: only the services' public URLs."""

    http_port: int = 8006

    def guarded_secrets(self) -> list[GuardedSecret]:
        """No events to sign: the token secret only."""
        return [s for s in super().guarded_secrets() if s.env_var != "ENVELOPE_KEYS"]
    # Public HTTP API of the order service, as the console's proxy reaches it.
    order_url: str = "http://127.0.0.1:8001"
    # Public HTTP API of the payment service.
    payment_url: str = "http://127.0.0.1:8002"
    # Public HTTP API of the shipping service.
    shipping_url: str = "http://127.0.0.1:8003"
    # Public HTTP API of the dispute service.
    dispute_url: str = "http://127.0.0.1:8004"
    # Public HTTP API of the notify service.
    notify_url: str = "http://127.0.0.1:8005"
    # How long the proxy waits for a service's answer.
    proxy_timeout_seconds: float = 15.0
    # Production sign-in: the identity provider's page that issues the platform's tokens and
    # sends the user back to `<console>/#token=<jwt>` (docs/console.md). Empty: paste a token.
    identity_provider_url: str | None = None
