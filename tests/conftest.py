import os

import pytest

# Tests run a development platform: development secrets are allowed (shared/infra/settings.py).
os.environ.setdefault("ESCROW_ENV", "development")

from shared.infra.clock import ManualClock

from tests.support.infra import Infra, real_infrastructure
from tests.support.platform import Platform


@pytest.fixture(scope="session")
def infra():
    with real_infrastructure() as found:
        if isinstance(found, str):
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail(found, pytrace=False)
            pytest.skip(found)
        yield found


@pytest.fixture(scope="session")
async def platform(infra: Infra):
    """All five services on the real servers, sharing one manual clock, for the session."""
    running = Platform(infra, ManualClock())
    await running.start()
    yield running
    await running.stop()
