"""HTTP routes of the payment service: validate, call one service function, answer."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from shared.contracts.money import Currency, PositiveMinorUnits
from shared.contracts.parties import Role
from shared.contracts.text import Name
from shared.contracts.trade import CardSummary, PaymentMethod, TransferInstructions
from shared.domain.actor import Actor
from shared.domain.aggregate import HistoryEntry
from shared.infra.auth import CurrentActor
from shared.infra.http import Problems

from services.payment.bank_signature import BankSignatureCheck, UnsignedNotification
from services.payment.bank_transfers import BankTransfer, TransferReport, UnmatchedQuery
from services.payment.card_intake import CardDeclined, ProviderUnavailable
from services.payment.cards import CardDetails
from services.payment.domain import Escrow, EscrowStatus
from services.payment.instructions import Instruction
from services.payment.ledger import Account, LedgerBroken, LedgerEntry
from services.payment.service import Payments
from services.payment.transfer_matching import TransferIdReused, TransferOutcome


class CardPayment(BaseModel):
    number: SecretStr = Field(description="the full card number: used for this charge only, "
                                          "never stored, logged or published",
                              examples=["4242424242424242"])
    expiry_month: int = Field(ge=1, le=12, examples=[12])
    expiry_year: int = Field(ge=2000, le=2100, examples=[2030])
    cvc: SecretStr = Field(examples=["123"])
    holder_name: Name = Field(examples=["Ada Buyer"])


class IncomingTransfer(BaseModel):
    """Any currency code is taken: money in a currency the order is not in (or the platform
    does not settle in) is returned, not refused."""

    model_config = ConfigDict(extra="forbid")

    transfer_id: str = Field(min_length=1, max_length=100, description="the bank's unique id")
    reference: str = Field(max_length=500, description="the sender's free text; holds the order's reference")
    amount: PositiveMinorUnits
    currency: Currency
    sender_name: Name
    sender_account: str = Field(min_length=1, max_length=64, description="IBAN or account number")


class TransferOutcomeView(BaseModel):
    transfer_id: str
    matched: bool
    order_id: str | None
    amount: int
    currency: str
    accepted: int = Field(description="counted towards the order")
    returned: int = Field(description="going back to the sender")
    received_total: int | None
    remaining: int | None
    detail: str

    @classmethod
    def of(cls, outcome: TransferOutcome) -> TransferOutcomeView:
        return cls(**outcome.__dict__)


class PaymentReceived(BaseModel):
    """One card charge or bank transfer; never the sender's name or account."""

    source_id: str
    method: PaymentMethod
    amount: int
    currency: str
    accepted: int
    sent_back: int
    received_at: datetime
    card: CardSummary | None


class PaymentView(BaseModel):
    order_id: str
    status: EscrowStatus
    currency: str
    amount_due: int
    pay_by: datetime
    received_total: int
    remaining: int
    paid_in: int
    held: int
    released: int
    refunded: int
    method: PaymentMethod | None
    card: CardSummary | None
    transfer_instructions: TransferInstructions
    payments: list[PaymentReceived]
    instructions: list[Instruction]
    dispute_id: str | None
    settlement_reason: str | None
    timeline: list[HistoryEntry]

    @classmethod
    def of(cls, escrow: Escrow) -> PaymentView:
        return cls(
            order_id=escrow.order_id, status=escrow.status, currency=escrow.currency,
            amount_due=escrow.amount_due, pay_by=escrow.pay_by, received_total=escrow.received_total,
            remaining=escrow.remaining, paid_in=escrow.paid_in, held=escrow.held,
            released=escrow.released, refunded=escrow.refunded, method=escrow.method, card=escrow.card,
            transfer_instructions=escrow.transfer_instructions,
            payments=[PaymentReceived(**f.model_dump(include=set(PaymentReceived.model_fields)))
                      for f in escrow.fundings],
            instructions=escrow.instructions, dispute_id=escrow.dispute_id,
            settlement_reason=escrow.settlement_reason, timeline=escrow.history)


class LedgerView(BaseModel):
    order_id: str
    currency: str
    entries: list[LedgerEntry]
    balances: dict[Account, int] = Field(description="debits minus credits per account")
    paid_in: int
    held: int
    released: int
    refunded: int
    invariant: str = "paid_in == held + released + refunded"
    balanced: bool

    @classmethod
    def of(cls, escrow: Escrow) -> LedgerView:
        try:
            escrow.check_ledger()
            balanced = True
        except LedgerBroken:
            balanced = False
        return cls(order_id=escrow.order_id, currency=escrow.currency, entries=escrow.ledger,
                   balances={a: escrow.balance(a) for a in Account}, paid_in=escrow.paid_in,
                   held=escrow.held, released=escrow.released, refunded=escrow.refunded,
                   balanced=balanced)


# The HTTP answer of the payment service's own errors (the shared ones are in shared.infra.http).
PROBLEMS: Problems = {
    CardDeclined: (402, "Card declined"),
    ProviderUnavailable: (503, "Payment provider unavailable"),
    UnsignedNotification: (401, "Not signed by the bank"),
    TransferIdReused: (409, "Transfer id already booked"),
}


class BankTransferView(BaseModel):
    """A transfer as the bank reported it and where it went; never the sender's data."""

    transfer_id: str
    reference: str = Field(description="the sender's text, as written")
    amount: int
    currency: str
    received_at: datetime
    order_id: str | None = Field(description="the order it was booked to; null: it matched none")
    return_status: str | None = Field(description="pending or sent, for a transfer being returned")
    returned_at: datetime | None
    return_reference: str | None = Field(description="the provider's reference of the return")

    @classmethod
    def of(cls, transfer: BankTransfer) -> BankTransferView:
        back = transfer.return_instruction
        return cls(transfer_id=transfer.transfer_id, reference=transfer.reference,
                   amount=transfer.amount, currency=transfer.currency,
                   received_at=transfer.received_at, order_id=transfer.order_id,
                   return_status=back.status if back else None,
                   returned_at=back.sent_at if back else None,
                   return_reference=back.provider_reference if back else None)


def router(payments: Payments, bank_signatures: BankSignatureCheck) -> APIRouter:
    api = APIRouter(tags=["payments"])

    async def require_the_bank(request: Request, actor: Actor) -> str:
        """The bank role, and a body signed by the bank adapter (``bank_signature``);
        returns the signature, remembered once the notification was taken."""
        actor.require(Role.BANK)
        return await bank_signatures.verify(request.headers, await request.body())

    @api.post("/orders/{order_id}/payments/card", response_model=PaymentView,
              summary="Buyer pays what is due by card",
              responses={402: {"description": "the card was declined"},
                         409: {"description": "the escrow takes no payment now"},
                         422: {"description": "a card field is invalid (named in errors)"}})
    async def pay_by_card(order_id: str, body: CardPayment, actor: CurrentActor,
                          idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
                          ) -> PaymentView:
        card = CardDetails(number=body.number, expiry_month=body.expiry_month,
                           expiry_year=body.expiry_year, cvc=body.cvc, holder_name=body.holder_name)
        return PaymentView.of(await payments.cards.pay_by_card(
            actor, order_id, card, idempotency_key=idempotency_key))

    @api.post("/bank/transfers", response_model=TransferOutcomeView, tags=["bank"],
              summary="The bank reports an incoming transfer (signed: see bank_signature)",
              responses={202: {"model": TransferOutcomeView,
                               "description": "no order matches: kept, and returned to the sender"},
                         401: {"description": "not signed by a configured bank key, stale or replayed"},
                         409: {"description": "another transfer was booked under this id"}})
    async def transfer_received(body: IncomingTransfer, actor: CurrentActor, request: Request,
                                response: Response) -> TransferOutcomeView:
        signature = await require_the_bank(request, actor)
        outcome = await payments.transfers.receive(actor, TransferReport(**body.model_dump()))
        await bank_signatures.remember(signature)
        if not outcome.matched:
            response.status_code = 202
        return TransferOutcomeView.of(outcome)

    @api.get("/bank/transfers/unmatched", response_model=list[BankTransferView], tags=["support"],
             summary="Customer service: transfers that matched no order, newest first")
    async def unmatched(actor: CurrentActor, currency: Currency | None = None,
                        returned: bool | None = None, received_from: datetime | None = None,
                        received_until: datetime | None = None,
                        reference_contains: Annotated[str | None, Query(max_length=100)] = None,
                        limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[BankTransferView]:
        found = await payments.transfers.unmatched(actor, UnmatchedQuery(
            currency=currency, returned=returned, received_from=received_from,
            received_until=received_until, reference_contains=reference_contains, limit=limit))
        return [BankTransferView.of(t) for t in found]

    @api.get("/bank/transfers/{transfer_id}", response_model=BankTransferView, tags=["support"],
             summary="Customer service: where one bank transfer went")
    async def bank_transfer(transfer_id: str, actor: CurrentActor) -> BankTransferView:
        return BankTransferView.of(await payments.transfers.transfer(actor, transfer_id))

    @api.get("/orders/{order_id}/payment", response_model=PaymentView,
             summary="Where the order's money is: due, paid in, held, released, refunded")
    async def payment(order_id: str, actor: CurrentActor) -> PaymentView:
        return PaymentView.of(await payments.get(actor, order_id))

    @api.get("/orders/{order_id}/ledger", response_model=LedgerView,
             summary="The escrow's double-entry ledger and its balances")
    async def ledger(order_id: str, actor: CurrentActor) -> LedgerView:
        return LedgerView.of(await payments.get(actor, order_id))

    return api
