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
from pydantic import BaseModel, ValidationError

from shared.contracts.parties import Parties, Role
from shared.infra.errors import DomainError, NotPermitted
from shared.infra.settings import ServiceSettings

ALGORITHM = "HS256"


class Unauthenticated(DomainError):
    status = 401
    title = "Authentication required"


class Actor(BaseModel):
    party_id: str
    role: Role

    def acts_as(self, role: Role, party_id: str) -> bool:
        """This actor is that party in that role, itself or through another platform service
        acting on its behalf (role ``service``)."""
        return self.party_id == party_id and self.role in (role, Role.SERVICE)

    def may_read(self, parties: Parties) -> bool:
        """Customer service sees every order; a party sees its own."""
        return (self.role is Role.AGENT or self.acts_as(Role.BUYER, parties.buyer.party_id)
                or self.acts_as(Role.SUPPLIER, parties.supplier.party_id))

    def require(self, *roles: Role) -> None:
        if self.role not in roles:
            raise NotPermitted(f"a {self.role} may not do this; it needs the role "
                               + " or ".join(str(r) for r in roles))


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
