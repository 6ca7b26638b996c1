"""Signed bearer tokens naming a party and its role.

Every request carries ``Authorization: Bearer <token>``, a JWT with ``sub`` (party id),
``role``, ``iss``, ``aud``, ``iat`` and ``exp``: HS256 with the shared secret on a developer
machine, or an identity provider's asymmetric signature (docs/security.md). Which orders a
party may act on is decided by each service from the order's parties.
``python -m shared.infra.auth --role buyer --party buyer-1`` mints a development token.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError

from shared.contracts.parties import Role
from shared.domain.actor import Actor
from shared.infra.settings import AUDIENCE, DEV_ISSUER, ServiceSettings

ALGORITHM = "HS256"
DEFAULT_TTL = timedelta(hours=1)


class Unauthenticated(Exception):
    """The request carries no valid token (HTTP 401)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def mint_token(secret: str, party_id: str, role: Role, ttl: timedelta = DEFAULT_TTL,
               now: datetime | None = None, *, issuer: str = DEV_ISSUER,
               audience: str = AUDIENCE) -> str:
    """A development token signed with the shared secret (a real deployment has its
    identity provider issue tokens; docs/security.md)."""
    issued = now or datetime.now(UTC)
    claims = {"sub": party_id, "role": str(role), "iat": issued, "exp": issued + ttl,
              "iss": issuer, "aud": audience}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


class TokenVerifier:
    """Checks a bearer token: signature, issuer, audience, expiry, a lifetime no longer than
    allowed, a non-empty subject and a known role. With an asymmetric algorithm the service
    holds only the public key (or fetches the identity provider's JWKS), so it cannot mint."""

    def __init__(self, key: str | Callable[[str], Any], *, algorithm: str = ALGORITHM,
                 issuer: str = DEV_ISSUER, audience: str = AUDIENCE,
                 max_lifetime: timedelta = timedelta(hours=24)) -> None:
        self._key = key
        self.algorithm = algorithm
        self.issuer = issuer
        self.audience = audience
        self.max_lifetime = max_lifetime

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> TokenVerifier:
        key: str | Callable[[str], Any]
        if settings.auth_algorithm == ALGORITHM:
            key = settings.auth_secret.get_secret_value()
        elif settings.auth_jwks_url:
            jwks = jwt.PyJWKClient(settings.auth_jwks_url, cache_keys=True, lifespan=300)
            key = lambda token: jwks.get_signing_key_from_jwt(token).key  # noqa: E731
        elif settings.auth_public_key:
            key = settings.auth_public_key
        else:
            raise ValueError(f"AUTH_ALGORITHM={settings.auth_algorithm} needs AUTH_PUBLIC_KEY "
                             "or AUTH_JWKS_URL")
        return cls(key, algorithm=settings.auth_algorithm, issuer=settings.auth_issuer,
                   audience=settings.auth_audience,
                   max_lifetime=settings.auth_max_token_lifetime)

    def verify(self, token: str) -> Actor:
        try:
            key = self._key(token) if callable(self._key) else self._key
            claims = jwt.decode(token, key, algorithms=[self.algorithm], issuer=self.issuer,
                                audience=self.audience,
                                options={"require": ["exp", "iat", "sub", "iss", "aud"]})
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("the token has expired") from None
        except (jwt.InvalidTokenError, jwt.PyJWKClientError) as exc:
            raise Unauthenticated(f"the token is not valid: {exc}") from None
        if not isinstance(claims["exp"], int | float) or not isinstance(claims["iat"], int | float):
            raise Unauthenticated("the token is not valid: exp and iat must be numbers")
        if claims["exp"] - claims["iat"] > self.max_lifetime.total_seconds():
            raise Unauthenticated(f"the token is not valid: it lives longer than "
                                  f"{self.max_lifetime}")
        try:
            return Actor.model_validate({"party_id": claims["sub"], "role": claims.get("role")})
        except ValidationError as exc:
            raise Unauthenticated(f"the token is not valid: {_first_error(exc)}") from None


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    return f"{'.'.join(str(p) for p in error['loc']) or 'claims'}: {error['msg']}"


def verify_token(secret: str, token: str) -> Actor:
    """A development token's actor (HS256, the development issuer and audience)."""
    return TokenVerifier(secret).verify(token)


_bearer = HTTPBearer(auto_error=False, description="A signed token naming your party and role; "
                     "a development one: python -m shared.infra.auth --role buyer --party buyer-1")


def current_actor(request: Request,
                  credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Actor:
    """FastAPI dependency: the authenticated actor of this request."""
    if credentials is None:
        raise Unauthenticated("send 'Authorization: Bearer <token>'")
    return verifier_of(request.app).verify(credentials.credentials)


def verifier_of(app: Any) -> TokenVerifier:
    """The app's token verifier, made once from its settings."""
    if not hasattr(app.state, "token_verifier"):
        app.state.token_verifier = TokenVerifier.from_settings(app.state.settings)
    verifier: TokenVerifier = app.state.token_verifier
    return verifier


CurrentActor = Annotated[Actor, Depends(current_actor)]


def main() -> None:
    parser = argparse.ArgumentParser(description="Mint a development bearer token.")
    parser.add_argument("--party", required=True, help="party id, e.g. buyer-acme")
    parser.add_argument("--role", required=True, choices=[str(r) for r in Role])
    parser.add_argument("--hours", type=float, default=DEFAULT_TTL.total_seconds() / 3600)
    args = parser.parse_args()
    settings = ServiceSettings()
    if not settings.development:
        parser.error("tokens are minted here only for a development platform "
                     "(ESCROW_ENV=development); elsewhere the identity provider issues them")
    print(mint_token(settings.auth_secret.get_secret_value(), args.party, Role(args.role),
                     timedelta(hours=args.hours), issuer=settings.auth_issuer,
                     audience=settings.auth_audience))


if __name__ == "__main__":
    main()
