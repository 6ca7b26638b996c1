"""Durations in the services' settings: seconds or ISO 8601, never negative, every field."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from services.dispute.settings import DisputeSettings
from services.notify.settings import NotifySettings
from services.order.settings import OrderSettings
from services.payment.settings import PaymentSettings
from services.shipping.settings import ShippingSettings

SETTINGS = (DisputeSettings, NotifySettings, OrderSettings, PaymentSettings, ShippingSettings)


@pytest.mark.parametrize(("given", "expected"), [
    ("0", timedelta(0)),
    ("90", timedelta(seconds=90)),
    ("1.5", timedelta(seconds=1.5)),
    ("PT0S", timedelta(0)),
    ("PT2M", timedelta(minutes=2)),
    ("P5D", timedelta(days=5)),
])
def test_a_period_is_read_as_seconds_or_iso_8601(monkeypatch: pytest.MonkeyPatch, given: str, expected: timedelta):
    monkeypatch.setenv("DISPUTE_OPENS_AFTER", given)
    assert DisputeSettings().dispute_opens_after == expected


@pytest.mark.parametrize("given", ["-5", "-PT5S", "five days"])
def test_a_negative_or_unreadable_period_is_refused_by_name(monkeypatch: pytest.MonkeyPatch, given: str):
    monkeypatch.setenv("DISPUTE_OPENS_AFTER", given)
    with pytest.raises(ValidationError, match="dispute_opens_after"):
        DisputeSettings()


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: s.__name__)
def test_every_duration_setting_of_every_service_takes_seconds(monkeypatch: pytest.MonkeyPatch, settings):
    durations = [name for name, field in settings.model_fields.items() if field.annotation is timedelta]
    for name in durations:
        monkeypatch.setenv(name.upper(), "0")
    loaded = settings()
    assert all(getattr(loaded, name) == timedelta(0) for name in durations)


def test_the_local_scripts_take_each_port_from_the_environment_else_the_service_settings(
        monkeypatch: pytest.MonkeyPatch):
    from deploy.local.service_ports import service_ports

    monkeypatch.setenv("NOTIFY_HTTP_PORT", "9005")
    ports = service_ports()
    assert ports["notify"] == 9005
    assert ports["order"] == OrderSettings.model_fields["http_port"].default
    assert len(set(ports.values())) == 6  # the five services and the console
