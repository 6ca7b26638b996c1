"""The five services by name: their settings classes and composition roots."""

from __future__ import annotations

import importlib

from shared.infra.clock import Clock
from shared.infra.runtime import ServiceRuntime
from shared.infra.settings import ServiceSettings

SERVICES = ("order", "payment", "shipping", "dispute", "notify")


def settings_class(name: str) -> type[ServiceSettings]:
    module = importlib.import_module(f"services.{name}.settings")
    [cls] = [v for v in vars(module).values()
             if isinstance(v, type) and issubclass(v, ServiceSettings) and v is not ServiceSettings]
    return cls


def build(name: str, settings: ServiceSettings, clock: Clock | None = None) -> ServiceRuntime:
    return importlib.import_module(f"services.{name}.app").build(settings, clock)
