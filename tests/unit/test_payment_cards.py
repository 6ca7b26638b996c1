"""Card checks, the transfer reference, the sandbox provider and the data vault."""

from datetime import date

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from shared.contracts.money import Money
from shared.domain.errors import InvalidRequest

from services.payment.cards import CardDetails, card_brand, check_card, luhn_valid
from services.payment.provider import (
    SANDBOX_APPROVE,
    SANDBOX_DECLINE,
    SANDBOX_INSUFFICIENT_FUNDS,
    Payee,
    ProviderError,
    SandboxProvider,
)
from services.payment.reference import find_references, is_valid, transfer_reference
from services.payment.vault import PaymentDataVault

TODAY = date(2026, 3, 2)
USD = Money(amount=5_000, currency="USD")


def card(number=SANDBOX_APPROVE, month=12, year=2030, cvc="123", holder="Ada Buyer") -> CardDetails:
    return CardDetails(number=SecretStr(number), expiry_month=month, expiry_year=year,
                       cvc=SecretStr(cvc), holder_name=holder)


@pytest.mark.parametrize("number, valid", [
    ("4242424242424242", True), ("4000000000000002", True), ("4242424242424241", False),
    ("79927398713", True), ("79927398710", False)])
def test_luhn(number, valid):
    assert luhn_valid(number) is valid


@pytest.mark.parametrize("number, brand", [
    ("4242424242424242", "visa"), ("5555555555554444", "mastercard"), ("2223003122003222", "mastercard"),
    ("378282246310005", "amex"), ("6011111111111117", "discover"), ("3566002020360505", "jcb"),
    ("6200000000000005", "unionpay"), ("30569309025904", "diners"), ("9999999999999995", "unknown")])
def test_brand_from_the_number_prefix(number, brand):
    assert card_brand(number) == brand


@pytest.mark.parametrize("details, field", [
    (card(number="4242424242424241"), "number"),
    (card(number="4242 4242 abcd 4242"), "number"),
    (card(number="4242"), "number"),
    (card(month=13), "expiry_month"),
    (card(year=2025), "expiry_year"),
    (card(year=2026, month=2), "expiry_month"),
    (card(cvc="12"), "cvc"),
    (card(number="378282246310005", cvc="123"), "cvc"),
    (card(holder="  "), "holder_name"),
])
def test_card_checks_name_the_field_and_never_echo_the_number(details, field):
    with pytest.raises(InvalidRequest) as raised:
        check_card(details, TODAY)
    assert raised.value.field == field and isinstance(raised.value, InvalidRequest)
    assert details.digits not in raised.value.detail


def test_a_card_valid_through_this_month_and_spaced_numbers_pass():
    check_card(card(number="4242 4242 4242 4242", year=2026, month=3), TODAY)
    check_card(card(number="378282246310005", cvc="1234"), TODAY)


def test_card_details_never_show_the_number_or_cvc():
    shown = repr(card()) + str(card())
    assert SANDBOX_APPROVE not in shown and "123" not in shown


def test_reference_form_is_stable_and_checkable():
    reference = transfer_reference("ord-1")
    assert reference == transfer_reference("ord-1") != transfer_reference("ord-2")
    assert reference.startswith("ESC") and len(reference) == 14 and is_valid(reference)
    assert transfer_reference("ord-1", attempt=1) != reference


def test_reference_is_found_in_free_text_despite_case_separators_and_lookalikes():
    reference = transfer_reference("ord-1")
    typed = f"Invoice 12 / {reference[:7].lower()}-{reference[7:]}".replace("0", "o").replace("1", "l")
    assert find_references(typed) == [reference]
    assert find_references("no reference here") == []


def test_escrow_before_the_reference_never_hides_it():
    """"Escrow ESC…" holds a second checksum-valid candidate in about 1 text in 32."""
    hidden = 0
    for n in range(400):
        reference = transfer_reference(f"ord-{n}")
        candidates = find_references(f"Escrow {reference}")
        assert reference in candidates
        hidden += candidates[0] != reference
    assert hidden, "the sample must hold texts whose first valid candidate is not the reference"


def test_a_single_typo_in_the_reference_never_matches():
    reference = transfer_reference("ord-7")
    for position in range(3, len(reference)):
        for replacement in "0123456789ABCDEFGHJKMNPQRSTVWXYZ":
            if replacement != reference[position]:
                typo = reference[:position] + replacement + reference[position + 1:]
                assert not is_valid(typo), typo


async def test_sandbox_approves_declines_and_fails_for_insufficient_funds():
    provider = SandboxProvider()
    outcomes = {}
    for number in (SANDBOX_APPROVE, SANDBOX_DECLINE, SANDBOX_INSUFFICIENT_FUNDS, "5555555555554444"):
        token = await provider.tokenise(card(number=number))
        assert token.last4 == number[-4:] and number not in token.token
        outcomes[number] = await provider.charge(token.token, USD, idempotency_key=number)
    assert outcomes[SANDBOX_APPROVE].approved and outcomes["5555555555554444"].approved
    assert outcomes[SANDBOX_DECLINE].decline_code == "card_declined"
    assert outcomes[SANDBOX_INSUFFICIENT_FUNDS].decline_code == "insufficient_funds"
    assert [m.kind for m in provider.movements] == ["charge", "charge"]


async def test_sandbox_moves_money_once_per_idempotency_key():
    provider = SandboxProvider()
    token = await provider.tokenise(card())
    first = await provider.charge(token.token, USD, "k-charge")
    assert await provider.charge(token.token, USD, "k-charge") == first
    refund = await provider.refund(first.charge_id, USD, "k-refund")
    assert await provider.refund(first.charge_id, USD, "k-refund") == refund
    payee = Payee(name="Supplier", account="party:supplier-1")
    payout = await provider.payout(payee, USD, "ref", "k-payout")
    assert await provider.payout(payee, USD, "ref", "k-payout") == payout
    assert [m.kind for m in provider.movements] == ["charge", "refund", "payout"]


async def test_sandbox_refuses_refunds_beyond_the_charge():
    provider = SandboxProvider()
    token = await provider.tokenise(card())
    charge = await provider.charge(token.token, USD, "k")
    with pytest.raises(ProviderError):
        await provider.refund(charge.charge_id, Money(amount=5_001, currency="USD"), "k-r")


def test_vault_seals_and_opens_sender_data():
    vault = PaymentDataVault(Fernet.generate_key().decode())
    sealed = vault.seal("Ada Buyer", "DE89370400440532013000")
    assert "DE89370400440532013000" not in sealed and "Ada" not in sealed
    payee = vault.open(sealed)
    assert (payee.name, payee.account) == ("Ada Buyer", "DE89370400440532013000")
    assert "DE89370400440532013000" not in repr(payee)
    with pytest.raises(ValueError):
        PaymentDataVault(Fernet.generate_key().decode()).open(sealed)
