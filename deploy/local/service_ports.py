"""Each service's HTTP port for the local scripts (services.sh, demo.py): ``<SERVICE>_HTTP_PORT``
from the environment, else the default of the service's own settings, the one place the
defaults are written.

    .venv/bin/python deploy/local/service_ports.py      # prints "order 8001" ... one a line
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from shared.infra.settings import ServiceSettings  # noqa: E402

from services.console.settings import ConsoleSettings  # noqa: E402
from services.dispute.settings import DisputeSettings  # noqa: E402
from services.notify.settings import NotifySettings  # noqa: E402
from services.order.settings import OrderSettings  # noqa: E402
from services.payment.settings import PaymentSettings  # noqa: E402
from services.shipping.settings import ShippingSettings  # noqa: E402

SETTINGS: dict[str, type[ServiceSettings]] = {
    "order": OrderSettings, "payment": PaymentSettings, "shipping": ShippingSettings,
    "dispute": DisputeSettings, "notify": NotifySettings, "console": ConsoleSettings}


def service_ports() -> dict[str, int]:
    ports = {}
    for name, settings in SETTINGS.items():
        given = os.environ.get(f"{name.upper()}_HTTP_PORT", "").strip()
        if given and not given.isdigit():
            raise SystemExit(f"{name.upper()}_HTTP_PORT must be a port number, not {given!r}")
        ports[name] = int(given) if given else settings.model_fields["http_port"].default
    return ports


if __name__ == "__main__":
    for service, port in service_ports().items():
        print(service, port)
