"""Signed bearer tokens naming a party and its role.

Every request carries ``Authorization: Bearer <token>``, an HS256 JWT with ``sub`` (party
id) and ``role``. Which orders a party may act on is decided by each service from the
order's parties. ``python -m shared.infra.auth --role buyer --party buyer-1`` mints a
development token.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from typing import Annotated

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError

from shared.contracts.parties import Role
from shared.domain.actor import Actor
from shared.infra.settings import ServiceSettings

ALGORITHM = "HS256"


class Unauthenticated(Exception):
    """The request carries no valid token (HTTP 401)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def mint_token(secret: str, party_id: str, role: Role, ttl: timedelta = timedelta(days=30),
               now: datetime | None = None) -> str:
    issued = now or datetime.now(UTC)
    claims = {"sub": party_id, "role": str(role), "iat": issued, "exp": issued + ttl}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_token(secret: str, token: str) -> Actor:
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub"]})
        return Actor(party_id=claims["sub"], role=claims.get("role"))
    except jwt.ExpiredSignatureError:
        raise Unauthenticated("the token has expired") from None
    except (jwt.InvalidTokenError, ValidationError, KeyError) as exc:
        raise Unauthenticated(f"the token is not valid: {exc}") from None


_bearer = HTTPBearer(auto_error=False, description="A signed token naming your party and role; "
                     "a development one: python -m shared.infra.auth --role buyer --party buyer-1")


def current_actor(request: Request,
                  credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Actor:
    """FastAPI dependency: the authenticated actor of this request."""
    if credentials is None:
        raise Unauthenticated("send 'Authorization: Bearer <token>'")
    settings: ServiceSettings = request.app.state.settings
    return verify_token(settings.auth_secret.get_secret_value(), credentials.credentials)


CurrentActor = Annotated[Actor, Depends(current_actor)]


def main() -> None:
    parser = argparse.ArgumentParser(description="Mint a development bearer token.")
    parser.add_argument("--party", required=True, help="party id, e.g. buyer-acme")
    parser.add_argument("--role", required=True, choices=[str(r) for r in Role])
    parser.add_argument("--days", type=int, default=30)
    args = parser.parse_args()
    secret = ServiceSettings().auth_secret.get_secret_value()
    print(mint_token(secret, args.party, Role(args.role), timedelta(days=args.days)))


if __name__ == "__main__":
    main()
