"""The card-number scan (tests/support/card_scan.py) finds card data where it hides and
leaves alone what only looks like it; the scan of Kafka and MongoDB is proven on the real
servers in tests/integration/test_card_scan_realinfra.py."""

from __future__ import annotations

import json
import os
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.support.card_scan import card_data, luhn_valid, scan_files, scan_value

# Test cards (the networks' published test numbers) and lookalikes built at run time, so
# that no source line is itself a finding of a scan of the repository.
VISA = "4242" * 4
AMEX = "3782" + "822463" + "10005"
MASTERCARD = "5555" + "5555" + "5555" + "4444"


def found(text: str) -> list[tuple[str, str]]:
    return list(card_data(text))


def test_a_13_digit_visa_number_is_still_found():
    visa13 = "4222222222222"
    assert luhn_valid(visa13) and found(f"pan={visa13}") == [("card number", "422222***2222")]


def test_luhn():
    assert luhn_valid(VISA) and luhn_valid(AMEX) and luhn_valid(MASTERCARD)
    assert not luhn_valid(VISA[:-1] + "3")


@pytest.mark.parametrize("text", [
    f"number={VISA}", f'{{"pan": "{AMEX}"}}', f"card {VISA[:4]} {VISA[4:8]} {VISA[8:12]} {VISA[12:]}",
    f"{MASTERCARD[:4]}-{MASTERCARD[4:8]}-{MASTERCARD[8:12]}-{MASTERCARD[12:]} was charged",
    f"({VISA})", f"'{VISA}'", f"{VISA}\n"])
def test_a_card_number_is_found_however_written(text):
    assert found(text) == [("card number", "424242******4242" if VISA in text.replace(" ", "").replace("-", "")
                            else ("378282*****0005" if AMEX in text else "555555******4444"))]


@pytest.mark.parametrize("text", [
    f"trace {VISA}ab12",  # part of a hex id
    f"id-{VISA}f",
    f"span {'a' + VISA}",
    f"uuid 3f2a{VISA[:4]}-{VISA[4:8]}-4a2b-8c3d-{VISA[:12]}",
    f"tracking {VISA}0000",  # inside a longer digit run
    f"ord_{VISA}",  # part of a name
    "last4 4242, brand visa", "amount 125000", "0" * 16, "1" * 16,
    VISA[:-1] + "3",  # not Luhn-valid
    "0" + VISA[1:],  # no card number starts with 0
    "2026-12-03T12:34:56.123456+00:00",
    # epoch milliseconds that pass Luhn, as Kafka logs them (the first clean CI run found these)
    "LogSegment(baseOffset=0, size=317, lastModifiedTime=1796308277799, largestRecordTimestamp=1796308277803)",
])
def test_what_only_looks_like_a_card_number_is_left_alone(text):
    assert [f for f in found(text) if f[0] == "card number"] == []


@pytest.mark.parametrize("text", [
    '"cvc": "123"', "cvv=1234", "CVC 123", "security_code: 987", "'cvv2': '4321'",
    f"{VISA} 12/30 123", "exp 12/2030 cvc? 1234",
])
def test_a_security_code_is_found(text):
    assert ("security code" in [what for what, _ in found(text)]), text


@pytest.mark.parametrize("text", [
    '"cvc": "**********"', "order 123 placed", "cvc must be 3 digits", "12/30", "version 1.2.3",
])
def test_what_is_not_a_security_code_is_left_alone(text):
    assert [f for f in found(text) if f[0] == "security code"] == []


def test_values_are_scanned_inside_structures_bytes_and_large_integers():
    value = {"order": {"lines": [{"note": f"pay with {VISA}"}]}, "raw": json.dumps({"x": AMEX}).encode(),
             "as_int": int(MASTERCARD), "card": {"cvc": "123"}}
    assert sorted(f.what for f in scan_value("doc", value)) == [
        "card number", "card number", "card number", "security code"]


def test_a_finding_never_shows_the_number():
    [finding] = scan_value("somewhere", f"charged {VISA}")
    assert VISA not in str(finding) and "424242******4242" in str(finding)


def test_log_files_and_stored_mails_are_scanned_decoded(tmp_path: Path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "payment.log").write_text('{"msg": "ok"}\n' + f'{{"msg": "charging {VISA}"}}\n')
    (logs / "old.log").write_text(f"{AMEX}\n")
    os.utime(logs / "old.log", (0, 0))  # before the run: not the run's
    mail = EmailMessage()
    mail["Subject"] = "Payment received"
    mail.set_content(f"Your card {MASTERCARD} was charged.", cte="base64")
    mails = tmp_path / "mail"
    mails.mkdir()
    (mails / "1.eml").write_bytes(bytes(mail))
    assert MASTERCARD.encode() not in bytes(mail)  # only the decoded body shows it

    findings = scan_files([logs, mails], since=1.0)

    assert sorted((f.where.split(" (")[0], f.masked) for f in findings) == sorted([
        (f"{logs / 'payment.log'}:2", "424242******4242"),
        ("mail 1.eml part text/plain", "555555******4444")])


def test_junit_reports_are_scanned_by_what_the_tests_printed_and_logged(tmp_path: Path):
    report = tmp_path / "junit.xml"
    report.write_text(f"""<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest">
  <testcase classname="tests.unit.test_x" name="test_card[{VISA}]">
    <failure message="assert {AMEX} == 1">details {AMEX}</failure>
    <system-out>nothing here</system-out>
  </testcase>
  <testcase classname="tests.e2e.test_y" name="test_pay">
    <system-out>INFO payment: charged {MASTERCARD}</system-out>
    <system-err>cvv=123</system-err>
  </testcase>
</testsuite></testsuites>""")

    findings = scan_files([report], since=0)

    assert sorted((f.where.rsplit(" ", 1)[1], f.what) for f in findings) == [
        ("system-err", "security code"), ("system-out", "card number")]
