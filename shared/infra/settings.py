"""Configuration every service reads from the environment."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.infra.logging import LogFormat

DEV_AUTH_SECRET = "dev-only-secret-do-not-use-in-production"


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore")

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    mongodb_url: str = "mongodb://127.0.0.1:27017/?directConnection=true"
    mongodb_database: str = "escrow"
    topic_prefix: str = "escrow"
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    auth_secret: SecretStr = SecretStr(DEV_AUTH_SECRET)
    outbox_sweep_seconds: float = 2.0
    deadline_sweep_seconds: float = 5.0
    log_level: str = "INFO"
    # Development and tests only: the services' clock runs this many seconds (the file's
    # content) ahead of the system's, so deadlines can be reached without waiting days.
    clock_offset_file: Path | None = None
    log_format: LogFormat = "json"
    readiness_timeout_seconds: float = 0.9
