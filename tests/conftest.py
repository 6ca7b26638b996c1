import os

import pytest
from hypothesis import HealthCheck, Phase, settings

# Tests run a development platform: development secrets are allowed (shared/infra/settings.py).
os.environ.setdefault("ESCROW_ENV", "development")

from shared.infra.clock import ManualClock

from tests.support.infra import Infra, real_infrastructure
from tests.support.platform import Platform

# The search budget of the property tests (tests/support/statemachine.py): bounded and
# repeatable in CI; far longer with HYPOTHESIS_PROFILE=long; "dev" skips the shrinking
# while a property is being written.
settings.register_profile("ci", max_examples=40, stateful_step_count=30, deadline=None,
                          derandomize=True, database=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", max_examples=2000, stateful_step_count=60, deadline=None,
                          print_blob=True, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", parent=settings.get_profile("ci"), phases=[Phase.generate],
                          report_multiple_bugs=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


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
