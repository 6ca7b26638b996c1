"""What an email says, written once as structured content and rendered twice: as plain
text and as HTML (every value escaped). Step templates in ``templates.py`` only decide
the content."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Generic, TypeVar

from shared.contracts.envelope import TradeEvent
from shared.contracts.money import Money

PLATFORM = "Escrow"


class Recipient(StrEnum):
    BUYER = "buyer"
    SUPPLIER = "supplier"
    CUSTOMER_SERVICE = "customer_service"
    PARTY = "party"  # a party as itself, not in a trade (its contact's verification)


E = TypeVar("E", bound=TradeEvent)


@dataclass(frozen=True)
class MailContext(Generic[E]):
    """Everything a template may use: the event and who reads the mail."""

    event: E
    recipient: Recipient

    @property
    def to_buyer(self) -> bool:
        return self.recipient is Recipient.BUYER

    @property
    def to_supplier(self) -> bool:
        return self.recipient is Recipient.SUPPLIER

    @property
    def buyer(self) -> str:
        return self.event.parties.buyer.name

    @property
    def supplier(self) -> str:
        return self.event.parties.supplier.name

    def money(self, amount: int) -> str:
        """Every event that carries an amount carries its currency."""
        currency: str = self.event.currency
        return Money(amount=amount, currency=currency).display()


def when(moment: datetime) -> str:
    """``Tue 27 Jan 2026, 09:00 UTC``: unambiguous across the parties' time zones."""
    return moment.astimezone(UTC).strftime("%a %d %b %Y, %H:%M UTC")


def day(value: date) -> str:
    return value.strftime("%d %b %Y")


@dataclass(frozen=True)
class Content:
    subject: str
    paragraphs: list[str]
    facts: list[tuple[str, str]] = field(default_factory=list)
    items: list[str] = field(default_factory=list)  # a bulleted list after the facts
    quote: str | None = None  # text written by a person (a message), shown verbatim
    next_step: str = ""


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def _one_line(value: str) -> str:
    """Header values must not contain line breaks (a name could, it is user input)."""
    return " ".join(value.split())


def render(content: Content, *, order_id: str, greeting_name: str) -> Rendered:
    """A mail about one order."""
    footer = (f"You receive this email because you take part in order {order_id} on the "
              f"{PLATFORM} platform. Sign in to see the order and act on it.")
    return render_mail(content, subject=f"Order {order_id}: {content.subject}",
                       greeting_name=greeting_name, footer=footer)


def render_mail(content: Content, *, subject: str, greeting_name: str, footer: str) -> Rendered:
    subject = _one_line(f"[{PLATFORM}] {subject}")
    return Rendered(subject=subject, text=_text(content, footer, greeting_name),
                    html=_html(content, footer, greeting_name, subject))


def _text(content: Content, footer: str, name: str) -> str:
    lines = [f"Hello {name},", ""]
    for paragraph in content.paragraphs:
        lines += [paragraph, ""]
    if content.quote is not None:
        lines += [*(f"> {line}" for line in content.quote.splitlines() or [""]), ""]
    if content.facts:
        width = max(len(label) for label, _ in content.facts) + 1
        lines += [f"  {label + ':':<{width}} {value}" for label, value in content.facts]
        lines.append("")
    if content.items:
        lines += [f"  - {item}" for item in content.items]
        lines.append("")
    if content.next_step:
        lines += [f"What happens next: {content.next_step}", ""]
    lines += ["-- ", footer, ""]
    return "\n".join(lines)


def _html(content: Content, footer: str, name: str, subject: str) -> str:
    e = html.escape
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{e(subject)}</title></head>",
             '<body style="font-family: Arial, Helvetica, sans-serif; color: #222;">',
             f"<p>Hello {e(name)},</p>"]
    parts += [f"<p>{e(p)}</p>" for p in content.paragraphs]
    if content.quote is not None:
        quoted = "<br>".join(e(line) for line in content.quote.splitlines())
        parts.append('<blockquote style="border-left: 3px solid #ccc; margin: 0; '
                     f'padding-left: 1em;">{quoted}</blockquote>')
    if content.facts:
        rows = "".join(f'<tr><th style="text-align: left; padding-right: 1em;">{e(label)}</th>'
                       f"<td>{e(value)}</td></tr>" for label, value in content.facts)
        parts.append(f"<table>{rows}</table>")
    if content.items:
        parts.append("<ul>" + "".join(f"<li>{e(item)}</li>" for item in content.items) + "</ul>")
    if content.next_step:
        parts.append(f"<p><strong>What happens next:</strong> {e(content.next_step)}</p>")
    parts += [f'<p style="color: #777; font-size: small;">{e(footer)}</p>',
              "</body></html>"]
    return "\n".join(parts)

