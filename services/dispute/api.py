"""HTTP routes of the dispute service: receipt confirmation, disputes and the agents'
queue. Validate, call one service function, answer."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import APIRouter, Response
from pydantic import AnyHttpUrl, BaseModel, Field

from shared.contracts.events import DisputeAnswer
from shared.contracts.money import PositiveMinorUnits
from shared.contracts.parties import Parties
from shared.contracts.text import FileName, Note, OptionalStatement, Statement
from shared.contracts.trade import Carrier, DisputeOutcome, DisputeReason, Evidence, RequestedOutcome
from shared.domain.aggregate import HistoryEntry
from shared.infra.auth import CurrentActor

from services.dispute.attachments import (
    ALLOWED_CONTENT_TYPES,
    MAX_ATTACHMENT_BYTES,
    Upload,
)
from services.dispute.domain import BuyerProtection, ProtectionStatus
from services.dispute.handlers import DisputeService
from services.dispute.negotiation import MAX_ATTACHMENTS_PER_DISPUTE, MAX_LINKS_PER_DISPUTE, Dispute


class LinkEvidence(BaseModel):
    kind: Literal["link"] = "link"
    url: AnyHttpUrl
    note: Note | None = None


class AttachmentUpload(BaseModel):
    kind: Literal["attachment"] = "attachment"
    filename: FileName
    content_type: str = Field(description="one of " + ", ".join(ALLOWED_CONTENT_TYPES))
    data_base64: str = Field(description=f"the file, base64; at most "
                                         f"{MAX_ATTACHMENT_BYTES // (1024 * 1024)} MiB decoded")
    note: Note | None = None


class WithEvidence(BaseModel):
    evidence: list[Annotated[LinkEvidence | AttachmentUpload, Field(discriminator="kind")]] = Field(
        default=[], max_length=MAX_ATTACHMENTS_PER_DISPUTE + MAX_LINKS_PER_DISPUTE,
        description=f"links and/or attachments (at most {MAX_ATTACHMENTS_PER_DISPUTE} "
                    "attachments per dispute, counting every statement's)")

    def evidence_items(self) -> list[Evidence | Upload]:
        return [Evidence(kind="link", url=str(e.url), note=e.note) if isinstance(e, LinkEvidence)
                else Upload(filename=e.filename, content_type=e.content_type,
                            data_base64=e.data_base64, note=e.note)
                for e in self.evidence]


class OpenDispute(WithEvidence):
    reason: DisputeReason
    requested: RequestedOutcome
    amount: PositiveMinorUnits | None = Field(default=None, description="minor units; required for a partial "
                               "refund (above zero, below what was paid); a full refund is what "
                               "was paid")
    description: Statement


class AddStatement(WithEvidence):
    text: Statement = Field(description="your side of the story")


class AnswerDispute(BaseModel):
    answer: DisputeAnswer
    amount: PositiveMinorUnits | None = Field(default=None, description="minor units; only for a counter-offer, "
                               "above zero and below the disputed amount")
    message: OptionalStatement = ""


class Decision(BaseModel):
    outcome: DisputeOutcome
    refund_amount: PositiveMinorUnits | None = Field(default=None, description="minor units; required for a "
                                      "partial refund, above zero and below the disputed amount")
    reason: Statement


class ReceiptView(BaseModel):
    confirmed_at: datetime | None
    confirmed_by: str | None
    auto_confirm_at: datetime | None = Field(description="when receipt is confirmed automatically; "
                                             "empty while a dispute stops the clock")
    auto_confirm_remaining: timedelta | None = Field(description="time left on the clock while a "
                                                     "dispute stops it")


class _OrderProtection(BaseModel):
    """What both views say of the order the protection covers."""

    order_id: str
    status: ProtectionStatus
    parties: Parties
    currency: str | None
    paid_amount: int | None
    ship_date: date | None
    carrier: Carrier | None
    tracking_number: str | None


class DisputeView(_OrderProtection):
    dispute: Dispute
    history: list[HistoryEntry]

    @classmethod
    def of(cls, protection: BuyerProtection) -> DisputeView:
        assert protection.dispute is not None
        return cls(**protection.model_dump(include=set(cls.model_fields) - {"dispute"}),
                   dispute=protection.dispute)


class ProtectionView(_OrderProtection):
    dispute_opens_at: datetime | None
    receipt: ReceiptView
    dispute: Dispute | None
    withdrawn_disputes: list[Dispute]
    deadlines: dict[str, datetime]
    closed_at: datetime | None
    closed_because: str | None
    history: list[HistoryEntry]

    @classmethod
    def of(cls, p: BuyerProtection) -> ProtectionView:
        receipt = ReceiptView(confirmed_at=p.receipt_confirmed_at,
                              confirmed_by=p.receipt_confirmed_by,
                              auto_confirm_at=p.auto_confirm_at,
                              auto_confirm_remaining=p.auto_confirm_remaining)
        return cls(**p.model_dump(include=set(cls.model_fields)
                                  - {"receipt", "dispute", "withdrawn_disputes"}),
                   receipt=receipt, dispute=p.dispute, withdrawn_disputes=p.withdrawn_disputes)


def router(service: DisputeService) -> APIRouter:
    api = APIRouter()

    @api.post("/orders/{order_id}/receipt", response_model=ProtectionView, tags=["receipt"],
              summary="Buyer confirms receipt of the goods (releases the payment)")
    async def confirm_receipt(order_id: str, actor: CurrentActor) -> ProtectionView:
        return ProtectionView.of(await service.confirm_receipt(actor, order_id))

    @api.get("/orders/{order_id}/protection", response_model=ProtectionView, tags=["receipt"],
             summary="Receipt state, dispute window, deadlines and the dispute with its history")
    async def protection(order_id: str, actor: CurrentActor) -> ProtectionView:
        return ProtectionView.of(await service.get(actor, order_id))

    @api.post("/orders/{order_id}/dispute", status_code=201, response_model=DisputeView,
              tags=["disputes"], summary="Buyer opens the order's dispute")
    async def open_dispute(order_id: str, body: OpenDispute, actor: CurrentActor) -> DisputeView:
        return DisputeView.of(await service.open_dispute(
            actor, order_id, body.reason, body.requested, body.amount, body.description,
            body.evidence_items()))

    @api.get("/orders/{order_id}/dispute", response_model=DisputeView, tags=["disputes"],
             summary="The order's dispute and its history")
    async def get_dispute(order_id: str, actor: CurrentActor) -> DisputeView:
        protection, _ = await service.get_dispute(actor, order_id)
        return DisputeView.of(protection)

    @api.get("/orders/{order_id}/dispute/attachments/{attachment_id}", tags=["disputes"],
             response_class=Response, summary="An evidence file of the dispute",
             responses={200: {"content": {t: {} for t in ALLOWED_CONTENT_TYPES}}})
    async def attachment(order_id: str, attachment_id: str, actor: CurrentActor) -> Response:
        file = await service.attachment(actor, order_id, attachment_id)
        return Response(file.data, media_type=file.content_type, headers={
            "content-disposition": f"attachment; filename*=UTF-8''{quote(file.filename)}",
            "x-content-type-options": "nosniff",
            "etag": f'"{file.sha256}"',
        })

    @api.post("/orders/{order_id}/dispute/statements", status_code=201,
              response_model=DisputeView, tags=["disputes"],
              summary="Buyer or supplier adds a statement and evidence to the open dispute",
              description="While the dispute is open or escalated; the agent sees every "
                          "statement. The same statement sent again is added once.")
    async def add_statement(order_id: str, body: AddStatement, actor: CurrentActor) -> DisputeView:
        return DisputeView.of(await service.add_statement(
            actor, order_id, body.text, body.evidence_items()))

    @api.post("/orders/{order_id}/dispute/answer", response_model=DisputeView, tags=["disputes"],
              summary="Supplier accepts, rejects or makes a counter-offer")
    async def answer(order_id: str, body: AnswerDispute, actor: CurrentActor) -> DisputeView:
        return DisputeView.of(await service.answer_dispute(
            actor, order_id, body.answer, body.amount, body.message))

    @api.post("/orders/{order_id}/dispute/accept-counter-offer", response_model=DisputeView,
              tags=["disputes"], summary="Buyer accepts the supplier's counter-offer")
    async def accept_counter_offer(order_id: str, actor: CurrentActor) -> DisputeView:
        return DisputeView.of(await service.accept_counter_offer(actor, order_id))

    @api.post("/orders/{order_id}/dispute/withdraw", response_model=DisputeView, tags=["disputes"],
              summary="Buyer withdraws the dispute; the receipt clock runs again")
    async def withdraw(order_id: str, actor: CurrentActor) -> DisputeView:
        return DisputeView.of(await service.withdraw_dispute(actor, order_id))

    @api.post("/orders/{order_id}/dispute/escalate", response_model=DisputeView, tags=["disputes"],
              summary="Buyer or supplier hands the dispute to customer service")
    async def escalate(order_id: str, actor: CurrentActor) -> DisputeView:
        return DisputeView.of(await service.escalate_dispute(actor, order_id))

    @api.post("/orders/{order_id}/dispute/decision", response_model=DisputeView,
              tags=["customer service"], summary="An agent decides an escalated dispute (final)")
    async def decide(order_id: str, body: Decision, actor: CurrentActor) -> DisputeView:
        return DisputeView.of(await service.decide_dispute(
            actor, order_id, body.outcome, body.refund_amount, body.reason))

    @api.get("/disputes/escalated", response_model=list[DisputeView], tags=["customer service"],
             summary="Customer service's queue: escalated disputes with their whole history")
    async def escalated(actor: CurrentActor) -> list[DisputeView]:
        return [DisputeView.of(p) for p in await service.escalated(actor)]

    return api
