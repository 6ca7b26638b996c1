"""What a step is, and the one way to declare one: a template decorated with its event, step
name, recipients and what the mail asks for. Also the wording shared by the templates."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from shared.contracts.envelope import TradeEvent
from shared.contracts.events import SettlementReason
from shared.contracts.trade import Address, CardSummary, Carrier, DisputeReason, Logistics, PaymentMethod

from services.notify.rendering import Content, MailContext, Recipient

E = TypeVar("E", bound=TradeEvent)
Template = Callable[[MailContext[E]], Content]

BUYER, SUPPLIER, CUSTOMER_SERVICE = Recipient.BUYER, Recipient.SUPPLIER, Recipient.CUSTOMER_SERVICE
BOTH = (BUYER, SUPPLIER)


@dataclass(frozen=True)
class Step(Generic[E]):
    event: type[E]
    name: str
    recipients: tuple[Recipient, ...]
    template: Template[E]
    asks: str  # what the mail asks of its readers, for the README table
    # A message goes to the other side only: its author is left out.
    except_author: bool = False
    # The step is mailed only for events that pass (e.g. a statement of an escrow that held money).
    only_if: Callable[[E], bool] | None = None

    def recipients_of(self, event: E) -> tuple[Recipient, ...]:
        if self.only_if is not None and not self.only_if(event):
            return ()
        if self.except_author:
            author = getattr(event, "author_role", None)
            return tuple(r for r in self.recipients if r != author)
        return self.recipients


STEPS: dict[type[TradeEvent], Step[Any]] = {}


def step(event: type[E], name: str, recipients: tuple[Recipient, ...], *, asks: str,
         except_author: bool = False,
         only_if: Callable[[E], bool] | None = None) -> Callable[[Template[E]], Template[E]]:
    """Declare the decorated template as the mail of ``event``'s step."""
    def register(template: Template[E]) -> Template[E]:
        if event in STEPS:
            raise LookupError(f"{event.__name__} is already the step {STEPS[event].name}")
        STEPS[event] = Step(event, name, recipients, template, asks, except_author, only_if)
        return template
    return register


CARRIERS = {Carrier.DHL: "DHL", Carrier.FEDEX: "FedEx", Carrier.UPS: "UPS",
            Carrier.USPS: "USPS", Carrier.SF_EXPRESS: "SF Express", Carrier.EMS: "EMS"}

METHODS = {PaymentMethod.CARD: "card", PaymentMethod.BANK_TRANSFER: "bank transfer (T/T)"}

SETTLEMENT_REASONS = {
    SettlementReason.RECEIPT_CONFIRMED: "receipt of the goods was confirmed",
    SettlementReason.UNDISPUTED_PART: "this part of the payment is not in dispute",
    SettlementReason.NOT_SHIPPED: "the goods were not shipped in time",
    SettlementReason.ORDER_CLOSED: "the order was closed",
    SettlementReason.DISPUTE_RESOLVED: "the dispute was resolved",
}

DISPUTE_REASONS = {DisputeReason.NOT_RECEIVED: "goods not received",
                   DisputeReason.NOT_AS_DESCRIBED: "goods not as described",
                   DisputeReason.OTHER: "other"}


def logistics_text(logistics: Logistics) -> str:
    return f"{CARRIERS[logistics.carrier]}, {logistics.shipping_method.replace('-', ' ')}"


def address_text(a: Address) -> str:
    parts = [a.recipient, a.line1, a.line2, " ".join(p for p in (a.postal_code, a.city) if p),
             a.country]
    return ", ".join(p for p in parts if p)


def card_text(card: CardSummary | None) -> str:
    return f"{card.brand} card ending in {card.last4}" if card else "card"


def order_fact(m: MailContext[Any]) -> tuple[str, str]:
    return ("Order", m.event.order_id)
