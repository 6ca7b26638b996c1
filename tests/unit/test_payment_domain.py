"""The escrow aggregate: money in, money out, the ledger after every step."""

from datetime import UTC, datetime, timedelta

import pytest

from shared.contracts.events import (
    BankTransferReceived,
    EscrowFunded,
    EscrowRefunded,
    EscrowReleased,
    EscrowSettled,
    FundsReturned,
    PaymentDeadlinePassed,
    ReturnReason,
    SettlementReason,
)
from shared.contracts.parties import Parties, Party
from shared.contracts.trade import (
    CardSummary,
    DisputeOutcome,
    PaymentMethod,
    RequestedOutcome,
    TransferInstructions,
)
from shared.domain.errors import DomainError, InvalidRequest

from services.payment.domain import (
    Account,
    Escrow,
    EscrowStatus,
    InstructionKind,
    LedgerBroken,
    LedgerEntry,
)
from services.payment.reference import transfer_reference

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
PARTIES = Parties(buyer=Party(party_id="buyer-1", name="Buyer", email="buyer@example.com"),
                  supplier=Party(party_id="supplier-1", name="Supplier", email="supplier@example.com"))
CARD = CardSummary(brand="visa", last4="4242", token="tok_1")
DUE = 100_000


def open_escrow(amount_due: int = DUE, currency: str = "USD") -> Escrow:
    reference = transfer_reference("ord-1")
    escrow = Escrow.open("ord-1", PARTIES, amount_due, currency, NOW + timedelta(days=20),
                         TransferInstructions(reference=reference, beneficiary="Escrow Ltd",
                                              iban="GB33BUKB20201555555555", bic="BUKBGB22",
                                              bank_name="Sandbox Bank"), NOW)
    escrow.pull_events()
    return escrow


def figures(escrow: Escrow) -> tuple[int, int, int, int]:
    """(paid_in, held, released, refunded), after checking the invariant holds."""
    escrow.check_ledger()
    assert escrow.paid_in == escrow.held + escrow.released + escrow.refunded
    return escrow.paid_in, escrow.held, escrow.released, escrow.refunded


def transfer(escrow: Escrow, transfer_id: str, amount: int, currency: str = "USD") -> list:
    escrow.receive_bank_transfer(transfer_id, amount, currency, "sealed-sender", NOW)
    return escrow.pull_events()


def funded_by_card(amount_due: int = DUE) -> Escrow:
    escrow = open_escrow(amount_due)
    escrow.receive_card_payment("ch_1", amount_due, CARD, NOW)
    escrow.pull_events()
    return escrow


def types(events: list) -> list[str]:
    return [type(e).__name__ for e in events]


def test_opening_publishes_the_instructions_with_the_reference():
    escrow = Escrow.open("ord-1", PARTIES, DUE, "USD", NOW, TransferInstructions(
        reference="ESCX", beneficiary="b", iban="i", bic="c", bank_name="n"), NOW)
    [opened] = escrow.pull_events()
    assert opened.amount_due == DUE and opened.bank_transfer.reference == "ESCX"
    assert escrow.status is EscrowStatus.AWAITING_FUNDS and escrow.reference == "ESCX"
    assert figures(escrow) == (0, 0, 0, 0)


def test_card_payment_funds_the_escrow():
    escrow = open_escrow()
    escrow.receive_card_payment("ch_1", DUE, CARD, NOW)
    [funded] = escrow.pull_events()
    assert isinstance(funded, EscrowFunded)
    assert (funded.amount, funded.method, funded.card) == (DUE, PaymentMethod.CARD, CARD)
    assert escrow.status is EscrowStatus.FUNDED and escrow.card == CARD
    assert figures(escrow) == (DUE, DUE, 0, 0)
    [entry] = escrow.ledger
    assert (entry.debit, entry.credit, entry.amount) == (Account.ESCROW_HELD, Account.BUYER_FUNDS, DUE)


def test_the_same_charge_is_booked_once():
    escrow = funded_by_card()
    assert escrow.receive_card_payment("ch_1", DUE, CARD, NOW) is False
    assert escrow.pull_events() == [] and figures(escrow) == (DUE, DUE, 0, 0)


def test_two_partial_transfers_add_up_to_funding():
    escrow = open_escrow()
    [first] = transfer(escrow, "tt-1", 40_000)
    assert isinstance(first, BankTransferReceived)
    assert (first.received_total, first.remaining) == (40_000, 60_000)
    assert escrow.status is EscrowStatus.AWAITING_FUNDS and figures(escrow) == (40_000, 40_000, 0, 0)

    second, funded = transfer(escrow, "tt-2", 60_000)
    assert (second.received_total, second.remaining) == (DUE, 0)
    assert isinstance(funded, EscrowFunded) and funded.method is PaymentMethod.BANK_TRANSFER
    assert escrow.status is EscrowStatus.FUNDED and figures(escrow) == (DUE, DUE, 0, 0)


def test_a_repeated_transfer_id_is_a_no_op():
    escrow = open_escrow()
    transfer(escrow, "tt-1", 40_000)
    assert escrow.receive_bank_transfer("tt-1", 40_000, "USD", "x", NOW) is False
    assert escrow.pull_events() == [] and figures(escrow) == (40_000, 40_000, 0, 0)


def test_overpayment_is_returned_at_once():
    escrow = open_escrow()
    transfer(escrow, "tt-1", 40_000)
    events = transfer(escrow, "tt-2", 70_000)
    assert types(events) == ["BankTransferReceived", "EscrowFunded", "FundsReturned"]
    returned = events[-1]
    assert (returned.amount, returned.reason, returned.transfer_id) == (10_000, ReturnReason.OVERPAYMENT, "tt-2")
    assert figures(escrow) == (110_000, DUE, 0, 10_000)
    [instruction] = escrow.pending_instructions()
    assert (instruction.kind, instruction.amount, instruction.source_id) == (InstructionKind.RETURN, 10_000, "tt-2")


def test_money_after_funding_is_all_overpayment():
    escrow = funded_by_card()
    [returned] = transfer(escrow, "tt-9", 5_000)
    assert (returned.reason, returned.amount) == (ReturnReason.OVERPAYMENT, 5_000)
    assert figures(escrow) == (105_000, DUE, 0, 5_000)


def test_money_after_the_order_closed_is_returned():
    escrow = open_escrow()
    escrow.close(NOW)
    escrow.pull_events()
    [returned] = transfer(escrow, "tt-late", 30_000)
    assert (returned.reason, returned.amount) == (ReturnReason.ORDER_NOT_PAYABLE, 30_000)
    assert escrow.status is EscrowStatus.SETTLED and figures(escrow) == (30_000, 0, 0, 30_000)


def test_money_in_another_currency_is_returned_unconverted_outside_the_ledger():
    escrow = open_escrow()
    [returned] = transfer(escrow, "tt-eur", 50_000, currency="EUR")
    assert (returned.reason, returned.currency, returned.amount) == (ReturnReason.WRONG_CURRENCY, "EUR", 50_000)
    assert figures(escrow) == (0, 0, 0, 0) and escrow.status is EscrowStatus.AWAITING_FUNDS
    [instruction] = escrow.pending_instructions()
    assert (instruction.currency, instruction.amount) == ("EUR", 50_000)


def test_closing_with_partial_funds_refunds_them_through_each_transfer():
    escrow = open_escrow()
    transfer(escrow, "tt-1", 25_000)
    transfer(escrow, "tt-2", 15_000)
    escrow.close(NOW)
    events = escrow.pull_events()
    assert types(events) == ["EscrowRefunded", "EscrowRefunded", "EscrowSettled"]
    assert [(e.amount, e.reason, e.method) for e in events[:2]] == [
        (25_000, SettlementReason.ORDER_CLOSED, PaymentMethod.BANK_TRANSFER),
        (15_000, SettlementReason.ORDER_CLOSED, PaymentMethod.BANK_TRANSFER)]
    assert [e.held_after for e in events[:2]] == [15_000, 0]
    settled = events[-1]
    assert (settled.paid_in_total, settled.released_total, settled.refunded_total) == (40_000, 0, 40_000)
    assert [i.source_id for i in escrow.pending_instructions()] == ["tt-1", "tt-2"]
    assert figures(escrow) == (40_000, 0, 0, 40_000)


def test_closing_an_unpaid_escrow_settles_it_empty_and_twice_is_once():
    escrow = open_escrow()
    escrow.close(NOW)
    assert types(escrow.pull_events()) == ["EscrowSettled"]
    escrow.close(NOW)
    assert escrow.pull_events() == [] and figures(escrow) == (0, 0, 0, 0)


def test_closing_after_full_funding_refunds_everything():
    escrow = funded_by_card()
    escrow.close(NOW)
    refund, settled = escrow.pull_events()
    assert (refund.amount, refund.method) == (DUE, PaymentMethod.CARD)
    assert settled.refunded_total == DUE and figures(escrow) == (DUE, 0, 0, DUE)


def test_missed_dispatch_refunds_everything():
    escrow = funded_by_card()
    escrow.refund_not_shipped(NOW)
    refund, settled = escrow.pull_events()
    assert isinstance(refund, EscrowRefunded) and refund.reason is SettlementReason.NOT_SHIPPED
    assert refund.amount == DUE and isinstance(settled, EscrowSettled)
    assert figures(escrow) == (DUE, 0, 0, DUE)
    [instruction] = escrow.pending_instructions()
    assert (instruction.kind, instruction.method, instruction.source_id) == (
        InstructionKind.REFUND, PaymentMethod.CARD, "ch_1")


def test_receipt_releases_everything_once():
    escrow = funded_by_card()
    escrow.release_on_receipt(NOW)
    release, settled = escrow.pull_events()
    assert isinstance(release, EscrowReleased) and release.reason is SettlementReason.RECEIPT_CONFIRMED
    assert (release.amount, release.held_after) == (DUE, 0)
    assert settled.released_total == DUE and figures(escrow) == (DUE, 0, DUE, 0)
    escrow.release_on_receipt(NOW)
    assert escrow.pull_events() == [] and len(escrow.instructions) == 1


def test_receipt_before_funding_is_refused():
    with pytest.raises(DomainError):
        open_escrow().release_on_receipt(NOW)


def test_partial_dispute_releases_the_undisputed_part_to_the_minor_unit():
    escrow = funded_by_card(amount_due=100_001)
    escrow.open_dispute("d-1", RequestedOutcome.PARTIAL_REFUND, 33_333, "USD", NOW)
    [release] = escrow.pull_events()
    assert (release.amount, release.reason, release.held_after) == (
        66_668, SettlementReason.UNDISPUTED_PART, 33_333)
    assert escrow.status is EscrowStatus.DISPUTED and figures(escrow) == (100_001, 33_333, 66_668, 0)


def test_full_refund_dispute_moves_nothing_and_freezes_the_escrow():
    escrow = funded_by_card()
    escrow.open_dispute("d-1", RequestedOutcome.FULL_REFUND, DUE, "USD", NOW)
    assert escrow.pull_events() == [] and figures(escrow) == (DUE, DUE, 0, 0)
    for frozen in (escrow.release_on_receipt, escrow.refund_not_shipped, escrow.close):
        with pytest.raises(DomainError):
            frozen(NOW)
    assert figures(escrow) == (DUE, DUE, 0, 0)


def test_dispute_resolved_with_partial_refund_refunds_and_releases_the_rest():
    escrow = funded_by_card()
    escrow.open_dispute("d-1", RequestedOutcome.PARTIAL_REFUND, 30_000, "USD", NOW)
    escrow.pull_events()
    escrow.resolve_dispute("d-1", DisputeOutcome.PARTIAL_REFUND, 12_345, "USD", NOW)
    refund, release, settled = escrow.pull_events()
    assert (refund.amount, refund.reason, refund.held_after) == (12_345, SettlementReason.DISPUTE_RESOLVED, 17_655)
    assert (release.amount, release.reason, release.held_after) == (17_655, SettlementReason.DISPUTE_RESOLVED, 0)
    assert (settled.released_total, settled.refunded_total) == (87_655, 12_345)
    assert figures(escrow) == (DUE, 0, 87_655, 12_345)
    escrow.resolve_dispute("d-1", DisputeOutcome.PARTIAL_REFUND, 12_345, "USD", NOW)
    assert escrow.pull_events() == []


def test_dispute_resolved_as_full_refund_gives_back_all_still_held():
    escrow = funded_by_card()
    escrow.open_dispute("d-1", RequestedOutcome.PARTIAL_REFUND, 40_000, "USD", NOW)
    escrow.resolve_dispute("d-1", DisputeOutcome.FULL_REFUND, 40_000, "USD", NOW)
    assert figures(escrow) == (DUE, 0, 60_000, 40_000)


def test_dispute_resolved_as_release_pays_the_supplier():
    escrow = funded_by_card()
    escrow.open_dispute("d-1", RequestedOutcome.FULL_REFUND, DUE, "USD", NOW)
    escrow.resolve_dispute("d-1", DisputeOutcome.RELEASE, 0, "USD", NOW)
    assert figures(escrow) == (DUE, 0, DUE, 0)


def test_a_refund_above_what_is_held_is_refused_and_moves_nothing():
    escrow = funded_by_card()
    escrow.open_dispute("d-1", RequestedOutcome.PARTIAL_REFUND, 10_000, "USD", NOW)
    with pytest.raises(InvalidRequest):
        escrow.resolve_dispute("d-1", DisputeOutcome.PARTIAL_REFUND, 10_001, "USD", NOW)


def test_withdrawn_dispute_moves_nothing_then_receipt_releases_the_rest():
    escrow = funded_by_card()
    escrow.open_dispute("d-1", RequestedOutcome.PARTIAL_REFUND, 25_000, "USD", NOW)
    escrow.pull_events()
    escrow.withdraw_dispute("d-1", NOW)
    assert escrow.pull_events() == [] and escrow.status is EscrowStatus.FUNDED
    assert figures(escrow) == (DUE, 25_000, 75_000, 0)
    escrow.release_on_receipt(NOW)
    assert figures(escrow) == (DUE, 0, DUE, 0)


def test_repeated_dispute_events_are_no_ops():
    escrow = funded_by_card()
    escrow.open_dispute("d-1", RequestedOutcome.PARTIAL_REFUND, 25_000, "USD", NOW)
    escrow.open_dispute("d-1", RequestedOutcome.PARTIAL_REFUND, 25_000, "USD", NOW)
    escrow.withdraw_dispute("d-1", NOW)
    escrow.withdraw_dispute("d-1", NOW)
    escrow.open_dispute("d-1", RequestedOutcome.PARTIAL_REFUND, 25_000, "USD", NOW)
    assert [e.amount for e in escrow.pull_events()] == [75_000]
    assert escrow.status is EscrowStatus.FUNDED and figures(escrow) == (DUE, 25_000, 75_000, 0)


def test_mixed_funding_refunds_oldest_source_first():
    escrow = open_escrow()
    transfer(escrow, "tt-1", 30_000)
    escrow.receive_card_payment("ch_1", 70_000, CARD, NOW)
    escrow.pull_events()
    escrow.refund_not_shipped(NOW)
    refunds = [e for e in escrow.pull_events() if isinstance(e, EscrowRefunded)]
    assert [(r.method, r.amount) for r in refunds] == [(PaymentMethod.BANK_TRANSFER, 30_000),
                                                      (PaymentMethod.CARD, 70_000)]
    assert {r.refund_total for r in refunds} == {DUE}  # one refund in two parts: mailed so
    assert figures(escrow) == (DUE, 0, 0, DUE)


def test_a_capture_for_a_settled_escrow_is_refunded_in_full():
    escrow = open_escrow()
    escrow.close(NOW)
    escrow.pull_events()
    escrow.receive_card_payment("ch_late", DUE, CARD, NOW)
    [returned] = escrow.pull_events()
    assert isinstance(returned, FundsReturned) and returned.reason is ReturnReason.ORDER_NOT_PAYABLE
    [instruction] = escrow.pending_instructions()
    assert (instruction.method, instruction.source_id, instruction.amount) == (PaymentMethod.CARD, "ch_late", DUE)


def test_instructions_are_marked_sent_once():
    escrow = funded_by_card()
    escrow.release_on_receipt(NOW)
    [payout] = escrow.pending_instructions()
    assert escrow.instructions_pending
    assert escrow.mark_sent(payout.instruction_id, "po_1", NOW) is True
    assert escrow.mark_sent(payout.instruction_id, "po_1", NOW) is False
    assert not escrow.instructions_pending and escrow.pending_instructions() == []
    assert [h.what for h in escrow.history].count("payout sent") == 1


def test_the_ledger_check_catches_money_that_left_without_an_instruction():
    escrow = funded_by_card()
    escrow.ledger.append(LedgerEntry(entry_id="rogue", at=NOW, debit=Account.SUPPLIER_PAYOUTS,
                                     credit=Account.ESCROW_HELD, amount=1, memo="no instruction"))
    with pytest.raises(LedgerBroken):
        escrow.check_ledger()


def test_the_ledger_check_catches_more_out_than_in():
    escrow = funded_by_card()
    escrow.ledger.append(LedgerEntry(entry_id="rogue", at=NOW, debit=Account.BUYER_REFUNDS,
                                     credit=Account.ESCROW_HELD, amount=DUE + 1, memo="too much"))
    with pytest.raises(LedgerBroken):
        escrow.check_ledger()


def test_the_escrow_round_trips_through_its_stored_form():
    escrow = funded_by_card()
    escrow.open_dispute("d-1", RequestedOutcome.PARTIAL_REFUND, 25_000, "USD", NOW)
    again = Escrow.model_validate(escrow.model_dump(mode="json"))
    assert figures(again) == figures(escrow) and again.instructions == escrow.instructions


# --- issue 9.2: the payment deadline is judged here, whenever its sweep runs ----------------


def test_a_transfer_after_pay_by_closes_the_escrow_first_then_is_returned():
    escrow = open_escrow()
    escrow.receive_bank_transfer("t-late", DUE, "USD", "sealed-sender", NOW + timedelta(days=21))
    passed, settled, returned = escrow.pull_events()
    assert isinstance(passed, PaymentDeadlinePassed) and passed.received_total == 0
    assert isinstance(settled, EscrowSettled)
    assert isinstance(returned, FundsReturned) and returned.reason is ReturnReason.ORDER_NOT_PAYABLE
    assert escrow.status is EscrowStatus.SETTLED and figures(escrow) == (DUE, 0, 0, DUE)


def test_the_deadline_refunds_what_was_paid_and_closes_the_escrow_once():
    escrow = open_escrow()
    escrow.receive_bank_transfer("t-part", 3_000, "USD", "sealed-sender", NOW + timedelta(days=2))
    escrow.pull_events()
    escrow.run_due_deadlines(NOW + timedelta(days=20))
    passed, refunded, settled = escrow.pull_events()
    assert isinstance(passed, PaymentDeadlinePassed) and passed.received_total == 3_000
    assert isinstance(refunded, EscrowRefunded) and refunded.amount == 3_000
    assert isinstance(settled, EscrowSettled) and escrow.status is EscrowStatus.SETTLED
    escrow.run_due_deadlines(NOW + timedelta(days=30))
    assert escrow.pull_events() == [] and escrow.deadlines == {}


def test_a_card_charge_asked_for_in_time_counts_when_its_capture_ends_after_pay_by():
    escrow = open_escrow()
    pay_by = escrow.pay_by
    assert escrow.intend_charge("key-1", DUE, pay_by - timedelta(seconds=2))
    escrow.receive_card_payment("ch-1", DUE, CARD, pay_by + timedelta(seconds=1), request_key="key-1")
    assert escrow.status is EscrowStatus.FUNDED and escrow.deadlines == {}
    assert [type(e) for e in escrow.pull_events()] == [EscrowFunded]


def test_no_card_charge_is_intended_after_pay_by():
    escrow = open_escrow()
    with pytest.raises(DomainError, match="payment deadline passed"):
        escrow.intend_charge("key-1", DUE, NOW + timedelta(days=20))
