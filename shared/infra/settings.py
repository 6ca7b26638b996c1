"""Configuration every service reads from the environment."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.infra.logging import LogFormat
from shared.infra.telemetry import Tracing

# Published in this repository, so worthless as a secret: only a development platform
# (ESCROW_ENV=development) may run with it.
DEV_AUTH_SECRET = "dev-only-secret-do-not-use-in-production"
MIN_SECRET_BYTES = 32
# A larger request body gets 413 before it is decoded: enough for an order of 200 line
# items; the dispute service, which takes evidence files, allows more.
DEFAULT_MAX_REQUEST_BYTES = 256 * 1024
DEV_ISSUER = "escrow-dev"
AUDIENCE = "escrow-platform"


class Environment(StrEnum):
    DEVELOPMENT = "development"  # make run, the tests, the demo: development secrets allowed
    PRODUCTION = "production"  # the default: every secret must be set, and be strong


class InsecureSettings(RuntimeError):
    """A service outside development mode was given a development or weak secret."""


@dataclass(frozen=True)
class GuardedSecret:
    """A secret that must be set outside development: not the published value, long enough."""

    env_var: str
    value: SecretStr | None
    development_value: str | None
    min_bytes: int = MIN_SECRET_BYTES

    def problem(self) -> str | None:
        value = self.value.get_secret_value() if self.value else ""
        if not value:
            return f"{self.env_var} is not set"
        if value == self.development_value:
            return f"{self.env_var} is the development value published in the source code"
        if len(value.encode()) < self.min_bytes:
            return f"{self.env_var} is shorter than {self.min_bytes} bytes"
        return None


SECONDS = re.compile(r"\s*[0-9]+(\.[0-9]+)?\s*")


class ServiceSettings(BaseSettings):
    """Durations (every ``timedelta`` field, here and in each service's settings) are read as
    seconds (``0``, ``90``, ``1.5``) or ISO 8601 (``P5D``, ``PT2M``); never negative."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore")

    # `development` allows the published development secrets (make run, tests, demo);
    # anything else refuses to start without real ones.
    escrow_env: Environment = Environment.PRODUCTION
    # Kafka brokers, comma-separated host:port.
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    # MongoDB connection string (a replica set in production).
    mongodb_url: str = "mongodb://127.0.0.1:27017/?directConnection=true"
    # Database holding this service's collections.
    mongodb_database: str = "escrow"
    # Prefix of every topic name (`<prefix>.<service>.events`, `.deadletter`, `.retry`).
    topic_prefix: str = "escrow"
    # Partitions of a topic the service creates when missing: the most consumers of one
    # group that can work at once (replicas beyond it idle). Existing topics keep theirs.
    topic_partitions: int = Field(default=3, ge=1, le=1000)
    # Replication factor of a topic the service creates (3 on a production cluster).
    topic_replication_factor: int = Field(default=1, ge=1, le=10)
    # Address the HTTP API listens on (`0.0.0.0` in a container).
    http_host: str = "127.0.0.1"
    # Port of the HTTP API (each service has its own default).
    http_port: int = 8000
    # Bearer tokens (shared/infra/auth.py, docs/security.md). HS256 with a shared secret, or
    # an identity provider's asymmetric keys (a PEM public key or its JWKS URL), so services
    # verify tokens without being able to mint them.
    auth_algorithm: Literal["HS256", "EdDSA", "RS256", "ES256"] = "HS256"
    # HS256 signing secret shared with the token issuer.
    auth_secret: SecretStr = SecretStr(DEV_AUTH_SECRET)
    # PEM public key verifying EdDSA/RS256/ES256 tokens.
    auth_public_key: str | None = None
    # JWKS URL of the identity provider (instead of a fixed public key).
    auth_jwks_url: str | None = None
    # Required `iss` claim of every token.
    auth_issuer: str = DEV_ISSUER
    # Required `aud` claim of every token.
    auth_audience: str = AUDIENCE
    # Tokens valid for longer than this (exp - iat) are refused.
    auth_max_token_lifetime: timedelta = timedelta(hours=24)
    # Request bodies larger than this many bytes are refused with 413 before decoding.
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    # Event keys: producer:key-id:ed25519:<public key> (or producer:key-id:<HMAC secret>)
    # entries, comma-separated (shared/infra/signing.py, docs/security.md).
    envelope_keys: SecretStr | None = None
    # This service's own Ed25519 event signing key, key-id:<base64 private key>.
    envelope_signing_key: SecretStr | None = None
    # Kafka connection: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL (docs/security.md).
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    # SASL mechanism for Kafka: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "SCRAM-SHA-512"
    # This service's Kafka principal.
    kafka_sasl_username: str | None = None
    # The Kafka principal's password.
    kafka_sasl_password: SecretStr | None = None
    # CA bundle trusted for the brokers' TLS certificates (default: the system's).
    kafka_ssl_cafile: str | None = None
    # How often messages saved but not yet published are published again.
    outbox_sweep_seconds: float = 2.0
    # How often stored deadlines are checked against the clock.
    deadline_sweep_seconds: float = 5.0
    # Python log level of every logger (DEBUG, INFO, WARNING, ERROR).
    log_level: str = "INFO"
    # Development and tests only: the services' clock runs this many seconds (the file's
    # content) ahead of the system's, so deadlines can be reached without waiting days.
    clock_offset_file: Path | None = None
    # `json` (one JSON object per line, for collectors) or `text` (a developer's terminal).
    log_format: LogFormat = "json"
    # GET /health/ready answers within this, ready or not.
    readiness_timeout_seconds: float = 0.9
    # `none` (no tracing, no cost), `otlp` (spans over OTLP/HTTP to OTEL_EXPORTER_OTLP_ENDPOINT)
    # or `console` (spans as JSON on stdout, for a developer's machine).
    tracing: Tracing = "none"

    @property
    def development(self) -> bool:
        return self.escrow_env is Environment.DEVELOPMENT

    def guarded_secrets(self) -> list[GuardedSecret]:
        """The secrets this service needs; services with more secrets add theirs."""
        secrets = [GuardedSecret("ENVELOPE_KEYS", self.envelope_keys, None)]
        if self.auth_algorithm == "HS256":
            secrets.append(GuardedSecret("AUTH_SECRET", self.auth_secret, DEV_AUTH_SECRET))
        return secrets

    def check_secrets(self) -> None:
        """Refuse to run outside development with a development, missing or short secret."""
        if self.development:
            return
        problems = [p for s in self.guarded_secrets() if (p := s.problem())]
        if self.auth_algorithm != "HS256" and not (self.auth_public_key or self.auth_jwks_url):
            problems.append(f"AUTH_ALGORITHM={self.auth_algorithm} needs AUTH_PUBLIC_KEY or "
                            "AUTH_JWKS_URL")
        if self.auth_issuer == DEV_ISSUER:
            problems.append(f"AUTH_ISSUER is the development issuer {DEV_ISSUER!r}; set the "
                            "identity provider's issuer")
        if problems:
            raise InsecureSettings(
                "refusing to start outside development mode: " + "; ".join(problems)
                + ". Set them (docs/security.md), or ESCROW_ENV=development on a developer "
                  "machine.")

    @field_validator("*", mode="before")
    @classmethod
    def _durations_in_seconds(cls, value: Any, info: ValidationInfo) -> Any:
        # pydantic reads "60" from the environment as a malformed day count, not as seconds
        if (info.field_name and cls.model_fields[info.field_name].annotation is timedelta
                and isinstance(value, str) and SECONDS.fullmatch(value)):
            return timedelta(seconds=float(value))
        return value

    @field_validator("*")
    @classmethod
    def _durations_not_negative(cls, value: Any) -> Any:
        if isinstance(value, timedelta) and value < timedelta(0):
            raise ValueError("a duration must not be negative")
        return value
