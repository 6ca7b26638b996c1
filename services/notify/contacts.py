"""Each party's own contact email: registered by the party itself and verified by a code
mailed to it, never typed by the other side of a trade. Only a verified address gets
trade mail; a new address replaces the old one only once it is verified.

``Contact`` is the rule (pure); ``ContactBook`` loads, applies and stores it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from pydantic import AwareDatetime, BaseModel, EmailStr, Field

from shared.domain.errors import DomainError, InvalidRequest, NotFound, TooManyRequests


class VerificationLimits(BaseModel):
    code_valid_for: timedelta = timedelta(hours=24)
    wrong_codes_allowed: int = Field(default=5, ge=1)
    # Verification mails one party can make the platform send per window.
    mails_per_window: int = Field(default=5, ge=1)
    window: timedelta = timedelta(days=1)


class Contact(BaseModel):
    party_id: str
    version: int = 0
    email: EmailStr | None = None  # verified: trade mail goes here
    verified_at: AwareDatetime | None = None
    pending_email: EmailStr | None = None
    code_hash: str | None = None
    code_expires_at: AwareDatetime | None = None
    wrong_codes: int = 0
    # When verification mails were sent, within the current window (the rate limit).
    verification_mails: list[AwareDatetime] = []

    def register(self, email: str, now: datetime, limits: VerificationLimits) -> str | None:
        """Ask to use ``email``; returns the code to mail, or None when it is verified
        already. Raises ``TooManyRequests`` past the verification-mail limit."""
        if email == self.email:
            self.pending_email = self.code_hash = self.code_expires_at = None
            return None
        recent = [t for t in self.verification_mails if t > now - limits.window]
        if len(recent) >= limits.mails_per_window:
            retry_at = min(recent) + limits.window
            raise TooManyRequests(
                f"at most {limits.mails_per_window} verification emails per "
                f"{_human(limits.window)}; try again after {retry_at:%Y-%m-%d %H:%M} UTC",
                retry_after=retry_at - now)
        code = f"{secrets.randbelow(10**6):06d}"
        self.pending_email, self.code_hash = email, _digest(self.party_id, code)
        self.code_expires_at, self.wrong_codes = now + limits.code_valid_for, 0
        self.verification_mails = [*recent, now]
        return code

    def verify(self, code: str, now: datetime, limits: VerificationLimits) -> None:
        if self.pending_email is None or self.code_hash is None or self.code_expires_at is None:
            if self.email is not None:
                return  # verified already: a repeated confirmation changes nothing
            raise DomainError("no email is waiting for verification; register one first")
        if now >= self.code_expires_at:
            raise DomainError("the verification code has expired; register the email again "
                              "for a new code")
        if self.wrong_codes >= limits.wrong_codes_allowed:
            raise TooManyRequests("too many wrong codes; register the email again for a new "
                                  "code", retry_after=None)
        if not hmac.compare_digest(self.code_hash, _digest(self.party_id, code)):
            self.wrong_codes += 1
            raise InvalidRequest("the code is not the one we mailed", field="code")
        self.email, self.verified_at = self.pending_email, now
        self.pending_email = self.code_hash = self.code_expires_at = None
        self.wrong_codes = 0


def _digest(party_id: str, code: str) -> str:
    return hashlib.sha256(f"{party_id}:{code}".encode()).hexdigest()


def _human(period: timedelta) -> str:
    hours = int(period.total_seconds() // 3600)
    return f"{hours // 24} day(s)" if hours % 24 == 0 else f"{hours} hour(s)"


def require_contact(contact: Contact | None, party_id: str) -> Contact:
    if contact is None:
        raise NotFound(f"party {party_id} has registered no contact email")
    return contact
