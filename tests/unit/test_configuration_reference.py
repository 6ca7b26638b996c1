"""Item 10.9: the configuration reference covers every setting, with its default and
meaning, and is regenerated whenever a settings class changes."""

from shared.ops.configuration import DOCUMENT, is_stale, settings_table, undocumented


def test_every_setting_says_what_it_means():
    assert undocumented() == [], ("settings without a description: add a comment above the "
                                  "field (or Field(description=...))")


def test_the_committed_configuration_reference_is_current():
    assert not is_stale(), f"{DOCUMENT} is stale: run `python -m shared.ops config-reference --write`"


def test_each_service_lists_its_own_settings_and_port():
    table = settings_table()
    assert [r["setting"] for r in table["order"]][:1] == ["HTTP_PORT"]
    assert "PAYMENT_WINDOW" in {r["setting"] for r in table["order"]}
    assert "LOG_FORMAT" in {r["setting"] for r in table["every service"]}
