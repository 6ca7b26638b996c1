"""The escrow of one order: the money the buyer paid in, kept as a double-entry ledger
(``services.payment.ledger``), and the instructions that move it out again.

After every entry the ledger identity is checked together with the instructions that
carry each outgoing cent; a violation raises ``LedgerBroken`` and nothing is saved.
Money goes out as instructions (payout, refund, return) kept here as pending and sent to
the payment provider by the service layer, with the instruction id as idempotency key.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from shared.contracts.events import (
    BankTransferReceived,
    CardPaymentDeclined,
    EscrowFunded,
    EscrowOpened,
    EscrowRefunded,
    EscrowReleased,
    EscrowSettled,
    FundsReturned,
    PaymentDeadlinePassed,
    ReturnReason,
    SettlementReason,
)
from shared.contracts.parties import Parties
from shared.contracts.trade import (
    CardSummary,
    DisputeOutcome,
    PaymentMethod,
    RequestedOutcome,
    TransferInstructions,
)
from shared.domain.actor import Actor
from shared.domain.aggregate import Aggregate
from shared.domain.errors import DomainError, InvalidRequest

from services.payment.instructions import Instruction, InstructionKind, InstructionStatus
from services.payment.ledger import Account, Figures, LedgerBroken, LedgerEntry, balance, book

# The payment deadline is judged here, where money arrives, and nowhere else: the order
# closes unpaid only when this escrow says so (``PaymentDeadlinePassed``), so a payment
# booked in time always wins, however late its news reaches the order service.
PAYMENT_DUE = "payment_due"


class EscrowStatus(StrEnum):
    AWAITING_FUNDS = "awaiting_funds"
    FUNDED = "funded"  # the full amount is (or was) held; the goods are on their way
    DISPUTED = "disputed"  # nothing moves until the dispute is withdrawn or resolved
    SETTLED = "settled"  # empty, and takes no more money


class Funding(BaseModel):
    """Money that came in: one card charge or one bank transfer."""

    source_id: str  # the provider's charge id, or the bank's transfer id
    method: PaymentMethod
    amount: int = Field(gt=0)
    currency: str
    accepted: int = 0  # counted towards the amount due
    sent_back: int = 0  # refunded or returned through this source
    received_at: datetime
    card: CardSummary | None = None
    request_key: str | None = None  # the card request's idempotency key
    sender_sealed: str | None = None  # encrypted sender name and account of a transfer

    @property
    def refundable(self) -> int:
        return self.amount - self.sent_back


class ChargeIntent(BaseModel):
    """A card charge about to be requested from the provider, recorded before the call so
    that a capture whose booking was lost is found and booked (or refunded) later."""

    request_key: str  # the provider's idempotency key
    amount: int = Field(gt=0)
    at: datetime


# What a buyer, or anyone who wires money with the order's reference, can make grow.
MAX_CARD_ATTEMPTS = 20
MAX_TRANSFERS_PER_ORDER = 50


class Escrow(Aggregate):
    status: EscrowStatus
    currency: str
    amount_due: int
    pay_by: datetime
    reference: str
    transfer_instructions: TransferInstructions
    opened_at: datetime
    method: PaymentMethod | None = None
    card: CardSummary | None = None
    card_declines: int = 0
    charge_intents: list[ChargeIntent] = []
    fundings: list[Funding] = []
    ledger: list[LedgerEntry] = []
    instructions: list[Instruction] = []
    instructions_pending: bool = False
    dispute_id: str | None = None
    disputes_seen: list[str] = []
    settlement_reason: SettlementReason | None = None

    # --- opening -------------------------------------------------------------------------

    @classmethod
    def open(cls, order_id: str, parties: Parties, amount_due: int, currency: str,
             pay_by: datetime, instructions: TransferInstructions, now: datetime) -> Escrow:
        escrow = cls(order_id=order_id, parties=parties, status=EscrowStatus.AWAITING_FUNDS,
                     currency=currency, amount_due=amount_due, pay_by=pay_by,
                     reference=instructions.reference, transfer_instructions=instructions,
                     opened_at=now)
        escrow.deadlines[PAYMENT_DUE] = pay_by
        escrow.record(EscrowOpened(order_id=order_id, parties=parties, amount_due=amount_due,
                                   currency=currency, pay_by=pay_by, bank_transfer=instructions), now)
        return escrow

    # --- ledger figures ------------------------------------------------------------------

    @property
    def figures(self) -> Figures:
        return Figures.of(self.ledger)

    def balance(self, account: Account) -> int:
        return balance(self.ledger, account)

    @property
    def paid_in(self) -> int:
        return self.figures.paid_in

    @property
    def held(self) -> int:
        return self.figures.held

    @property
    def released(self) -> int:
        return self.figures.released

    @property
    def refunded(self) -> int:
        return self.figures.refunded

    @property
    def received_total(self) -> int:
        """What counts towards the amount due."""
        return sum(f.accepted for f in self.fundings)

    @property
    def remaining(self) -> int:
        return max(self.amount_due - self.received_total, 0)

    def check_ledger(self) -> None:
        figures = self.figures
        released, refunded, held = figures.released, figures.refunded, figures.held
        problems = figures.problems()
        by_kind = {kind: sum(i.amount for i in self.instructions
                             if i.kind is kind and i.currency == self.currency)
                   for kind in InstructionKind}
        if released != by_kind[InstructionKind.PAYOUT]:
            problems.append(f"released {released} but payout instructions total "
                            f"{by_kind[InstructionKind.PAYOUT]}")
        if refunded != by_kind[InstructionKind.REFUND] + by_kind[InstructionKind.RETURN]:
            problems.append(f"refunded {refunded} but refund and return instructions total "
                            f"{by_kind[InstructionKind.REFUND] + by_kind[InstructionKind.RETURN]}")
        if self.status is EscrowStatus.SETTLED and held:
            problems.append(f"settled with {held} still held")
        if problems:
            raise LedgerBroken(f"escrow of order {self.order_id}: " + "; ".join(problems))

    # --- money in ------------------------------------------------------------------------

    def require_payable(self, now: datetime) -> None:
        """Awaiting funds and within the payment window, whether or not the deadline's
        sweep has run yet."""
        if now >= self.pay_by and self.method is None:
            raise DomainError(f"the payment deadline passed ({self.pay_by:%Y-%m-%d %H:%M} UTC); "
                              "the order closes unpaid")
        if self.status is not EscrowStatus.AWAITING_FUNDS:
            raise DomainError(f"the escrow of this order is {self.status}; it takes no payment")

    def on_deadline(self, kind: str, due: datetime, now: datetime) -> None:
        if kind != PAYMENT_DUE:
            return super().on_deadline(kind, due, now)
        if self.status is EscrowStatus.AWAITING_FUNDS:
            self.record(PaymentDeadlinePassed(order_id=self.order_id, parties=self.parties,
                                              pay_by=self.pay_by, currency=self.currency,
                                              received_total=self.received_total), now)
            self.close(now)

    def may_read(self, actor: Actor) -> bool:
        return actor.may_read(self.parties)

    def takes_another_transfer(self) -> bool:
        """Whether one more bank transfer may be booked to this escrow; past the cap, more
        go back to their sender without touching it."""
        return sum(1 for f in self.fundings
                   if f.method is PaymentMethod.BANK_TRANSFER) < MAX_TRANSFERS_PER_ORDER

    def funding(self, source_id: str) -> Funding | None:
        return next((f for f in self.fundings if f.source_id == source_id), None)

    def funding_for_request(self, request_key: str) -> Funding | None:
        return next((f for f in self.fundings if f.request_key == request_key), None)

    def intended(self, request_key: str) -> bool:
        return any(i.request_key == request_key for i in self.charge_intents)

    def intend_charge(self, request_key: str, amount: int, now: datetime) -> bool:
        """Record that ``request_key`` may capture ``amount``; False if recorded already."""
        if self.intended(request_key):
            return False
        self.require_payable(now)
        if len(self.charge_intents) >= MAX_CARD_ATTEMPTS:
            raise DomainError(f"at most {MAX_CARD_ATTEMPTS} card payments may be tried on one "
                              "order; pay by bank transfer with the order's transfer instructions")
        self.charge_intents.append(ChargeIntent(request_key=request_key, amount=amount, at=now))
        self.note(now, "card charge requested", request_key=request_key, amount=amount)
        return True

    def decline_card(self, amount: int, reason: str, card: CardSummary, now: datetime) -> None:
        self.card_declines += 1
        self.record(CardPaymentDeclined(order_id=self.order_id, parties=self.parties, amount=amount,
                                        currency=self.currency, reason=reason, card=card), now)

    def receive_card_payment(self, charge_id: str, amount: int, card: CardSummary, now: datetime,
                             request_key: str | None = None) -> bool:
        """Book a captured charge; returns False if it was booked already. A charge asked for
        in time counts even if its capture ends after the deadline; one that finds the escrow
        no longer awaiting funds is refunded in full at once."""
        if self.funding(charge_id) is not None:
            return False
        intent = next((i for i in self.charge_intents if i.request_key == request_key), None)
        self.run_due_deadlines(now, due_by=intent.at if intent else None)
        funding = Funding(source_id=charge_id, method=PaymentMethod.CARD, amount=amount,
                          currency=self.currency, received_at=now, card=card, request_key=request_key)
        self._take_in(funding, now)
        return True

    def receive_bank_transfer(self, transfer_id: str, amount: int, currency: str,
                              sender_sealed: str, now: datetime) -> bool:
        """Book an incoming transfer matched by reference; returns False for a transfer
        already booked."""
        if self.funding(transfer_id) is not None:
            return False
        self.run_due_deadlines(now)
        funding = Funding(source_id=transfer_id, method=PaymentMethod.BANK_TRANSFER, amount=amount,
                          currency=currency, received_at=now, sender_sealed=sender_sealed)
        if currency != self.currency:
            # Never converted: sent back as it came, outside this order's ledger.
            self.fundings.append(funding)
            self._return(funding, amount, ReturnReason.WRONG_CURRENCY, now, booked=False)
            return True
        self._take_in(funding, now)
        return True

    def _take_in(self, funding: Funding, now: datetime) -> None:
        self.fundings.append(funding)
        self._book(f"in:{funding.source_id}", Account.ESCROW_HELD, Account.BUYER_FUNDS,
                   funding.amount, now, f"{funding.method} {funding.source_id} paid in")
        if self.status is EscrowStatus.AWAITING_FUNDS:
            self._accept(funding, now)
        if funding.amount > funding.accepted:
            reason = (ReturnReason.ORDER_NOT_PAYABLE if self.status is EscrowStatus.SETTLED
                      else ReturnReason.OVERPAYMENT)
            self._return(funding, funding.amount - funding.accepted, reason, now)
        self.check_ledger()

    def _accept(self, funding: Funding, now: datetime) -> None:
        funding.accepted = min(funding.amount, self.remaining)
        if funding.method is PaymentMethod.BANK_TRANSFER:
            self.record(BankTransferReceived(
                order_id=self.order_id, parties=self.parties, transfer_id=funding.source_id,
                amount=funding.amount, currency=self.currency, received_total=self.received_total,
                remaining=self.remaining), now)
        else:
            self.card = funding.card
        if self.remaining == 0:
            self.status = EscrowStatus.FUNDED
            self.method = funding.method
            self.deadlines.pop(PAYMENT_DUE, None)
            self.record(EscrowFunded(order_id=self.order_id, parties=self.parties,
                                     amount=self.amount_due, currency=self.currency,
                                     method=funding.method, card=funding.card), now)

    def _return(self, funding: Funding, amount: int, reason: ReturnReason, now: datetime, *,
                booked: bool = True) -> None:
        movement = f"return:{funding.source_id}"
        if booked and not self._book(movement, Account.BUYER_REFUNDS, Account.ESCROW_HELD, amount,
                                     now, f"{reason}: back to the sender of {funding.source_id}"):
            return
        funding.sent_back += amount
        self._instruct(movement, InstructionKind.RETURN, amount, funding.currency, funding.method,
                       funding.source_id, reason, now)
        self.record(FundsReturned(order_id=self.order_id, parties=self.parties, amount=amount,
                                  currency=funding.currency, reason=reason,
                                  transfer_id=funding.source_id), now)

    # --- money out -----------------------------------------------------------------------

    def close(self, now: datetime) -> None:
        """The order was cancelled or closed unpaid: everything held goes back to the buyer."""
        if self.status is EscrowStatus.SETTLED:
            return
        if self.status is EscrowStatus.DISPUTED:
            raise DomainError("the order cannot close while a dispute holds its escrow")
        self.deadlines.pop(PAYMENT_DUE, None)
        self._refund(self.held, SettlementReason.ORDER_CLOSED, "order_closed", now)
        self._settle(SettlementReason.ORDER_CLOSED, now)

    def refund_not_shipped(self, now: datetime) -> None:
        if self.status is EscrowStatus.SETTLED:
            return
        self._require_funded("refund for a missed dispatch")
        self._refund(self.held, SettlementReason.NOT_SHIPPED, "not_shipped", now)
        self._settle(SettlementReason.NOT_SHIPPED, now)

    def release_on_receipt(self, now: datetime) -> None:
        if self.status is EscrowStatus.SETTLED:
            return
        self._require_funded("release on receipt")
        self._release(self.held, SettlementReason.RECEIPT_CONFIRMED, "receipt_confirmed", now)
        self._settle(SettlementReason.RECEIPT_CONFIRMED, now)

    def open_dispute(self, dispute_id: str, requested: RequestedOutcome, disputed_amount: int,
                     currency: str, now: datetime) -> None:
        """Only the disputed amount stays held; for a partial refund the rest is released now."""
        if dispute_id in self.disputes_seen:
            return
        self._require_funded("open a dispute")
        self._require_currency(currency)
        self.status = EscrowStatus.DISPUTED
        self.dispute_id = dispute_id
        self.disputes_seen.append(dispute_id)
        self.note(now, "dispute opened: escrow frozen", dispute_id=dispute_id, requested=requested,
                  disputed_amount=disputed_amount, held=self.held)
        if requested is RequestedOutcome.PARTIAL_REFUND:
            undisputed = self.held - min(disputed_amount, self.held)
            self._release(undisputed, SettlementReason.UNDISPUTED_PART,
                          f"undisputed_part:{dispute_id}", now)

    def withdraw_dispute(self, dispute_id: str, now: datetime) -> None:
        """Nothing moves: release comes with the receipt confirmation."""
        if self.status is EscrowStatus.DISPUTED and self.dispute_id == dispute_id:
            self.status = EscrowStatus.FUNDED
            self.dispute_id = None
            self.note(now, "dispute withdrawn: escrow waits for receipt", dispute_id=dispute_id,
                      held=self.held)
        elif dispute_id not in self.disputes_seen:
            raise DomainError(f"dispute {dispute_id} was never opened on this escrow")

    def resolve_dispute(self, dispute_id: str, outcome: DisputeOutcome, refund_amount: int,
                        currency: str, now: datetime) -> None:
        """Refund the decided amount, release the rest held, settle. A full refund gives back
        all that is still held; a release gives back nothing."""
        if self.status is not EscrowStatus.DISPUTED or self.dispute_id != dispute_id:
            if dispute_id in self.disputes_seen:
                return
            raise DomainError(f"dispute {dispute_id} is not open on this escrow")
        self._require_currency(currency)
        held = self.held
        if outcome is DisputeOutcome.FULL_REFUND:
            refund = held
        elif outcome is DisputeOutcome.RELEASE:
            refund = 0
        else:
            if refund_amount > held:
                raise InvalidRequest(f"refund of {refund_amount} exceeds the {held} still held",
                                     field="refund_amount")
            refund = refund_amount
        if refund != refund_amount:
            self.note(now, "refund follows the outcome", outcome=outcome,
                      refund_amount=refund_amount, refunded=refund)
        key = f"dispute_resolved:{dispute_id}"
        self._refund(refund, SettlementReason.DISPUTE_RESOLVED, key, now)
        self._release(self.held, SettlementReason.DISPUTE_RESOLVED, key, now)
        self.dispute_id = None
        self._settle(SettlementReason.DISPUTE_RESOLVED, now)

    def _refund(self, amount: int, reason: SettlementReason, key: str, now: datetime) -> None:
        """Back to the buyer through the sources they paid with, oldest first."""
        left = amount
        for funding in self.fundings:
            if left == 0:
                break
            part = min(left, funding.refundable) if funding.currency == self.currency else 0
            if part == 0:
                continue
            movement = f"refund:{key}:{funding.source_id}"
            if not self._book(movement, Account.BUYER_REFUNDS, Account.ESCROW_HELD, part, now,
                              f"{reason}: refund through {funding.method} {funding.source_id}"):
                continue
            left -= part
            funding.sent_back += part
            instruction = self._instruct(movement, InstructionKind.REFUND, part, self.currency,
                                         funding.method, funding.source_id, reason, now)
            self.record(EscrowRefunded(order_id=self.order_id, parties=self.parties, amount=part,
                                       currency=self.currency, reason=reason, method=funding.method,
                                       refund_id=instruction.instruction_id, held_after=self.held,
                                       refund_total=amount), now)
        if left:
            raise LedgerBroken(f"escrow of order {self.order_id}: {left} of a refund has no source")

    def _release(self, amount: int, reason: SettlementReason, key: str, now: datetime) -> None:
        movement = f"release:{key}"
        if amount <= 0 or not self._book(movement, Account.SUPPLIER_PAYOUTS, Account.ESCROW_HELD,
                                         amount, now, f"{reason}: payout to the supplier"):
            return
        instruction = self._instruct(movement, InstructionKind.PAYOUT, amount, self.currency,
                                     PaymentMethod.BANK_TRANSFER, None, reason, now)
        self.record(EscrowReleased(order_id=self.order_id, parties=self.parties, amount=amount,
                                   currency=self.currency, reason=reason,
                                   payout_id=instruction.instruction_id, held_after=self.held), now)

    def _settle(self, reason: SettlementReason, now: datetime) -> None:
        self.status = EscrowStatus.SETTLED
        self.settlement_reason = reason
        self.check_ledger()
        self.record(EscrowSettled(order_id=self.order_id, parties=self.parties, currency=self.currency,
                                  paid_in_total=self.paid_in, released_total=self.released,
                                  refunded_total=self.refunded), now)

    # --- instructions --------------------------------------------------------------------

    def pending_instructions(self) -> list[Instruction]:
        return [i for i in self.instructions if i.status is InstructionStatus.PENDING]

    def mark_sent(self, instruction_id: str, provider_reference: str, now: datetime) -> bool:
        instruction = next((i for i in self.instructions if i.instruction_id == instruction_id), None)
        if instruction is None:
            raise DomainError(f"no instruction {instruction_id}")
        if instruction.status is InstructionStatus.SENT:
            return False
        instruction.status = InstructionStatus.SENT
        instruction.sent_at = now
        instruction.provider_reference = provider_reference
        self.instructions_pending = bool(self.pending_instructions())
        self.note(now, f"{instruction.kind} sent", instruction_id=instruction_id,
                  amount=instruction.amount, currency=instruction.currency,
                  method=instruction.method, provider_reference=provider_reference)
        return True

    def _instruct(self, movement: str, kind: InstructionKind, amount: int, currency: str,
                  method: PaymentMethod, source_id: str | None, reason: str,
                  now: datetime) -> Instruction:
        instruction = Instruction(instruction_id=f"{self.order_id}:{movement}", kind=kind,
                                  amount=amount, currency=currency, method=method,
                                  source_id=source_id, reason=reason, created_at=now)
        self.instructions.append(instruction)
        self.instructions_pending = True
        self.check_ledger()
        return instruction

    # --- rules ---------------------------------------------------------------------------

    def _book(self, entry_id: str, debit: Account, credit: Account, amount: int, now: datetime,
              memo: str) -> bool:
        return book(self.ledger, entry_id, debit, credit, amount, now, memo)

    def _require_funded(self, action: str) -> None:
        if self.status is not EscrowStatus.FUNDED:
            raise DomainError(f"cannot {action}: the escrow is {self.status}")

    def _require_currency(self, currency: str) -> None:
        if currency != self.currency:
            raise InvalidRequest(f"amounts in {currency} for an escrow held in {self.currency}",
                                 field="currency")
