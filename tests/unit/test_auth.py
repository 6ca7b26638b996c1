from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.contracts.parties import Parties, Party, Role
from shared.domain.actor import Actor
from shared.infra.auth import TokenVerifier, Unauthenticated, mint_token, verify_token
from shared.infra.settings import AUDIENCE, DEV_ISSUER, InsecureSettings, ServiceSettings

from services.order import app as order_app
from services.order.settings import OrderSettings
from services.payment.settings import PaymentSettings

KEY = "a-test-secret-of-at-least-32-bytes!"
OTHER = "another-secret-of-at-least-32-bytes"

PARTIES = Parties(buyer=Party(party_id="buyer-1", name="B", email="b@example.com"),
                  supplier=Party(party_id="supplier-1", name="S", email="s@example.com"))


def test_a_minted_token_names_its_party_and_role():
    assert verify_token(KEY, mint_token(KEY, "buyer-1", Role.BUYER)) == Actor(party_id="buyer-1",
                                                                                role=Role.BUYER)


def test_a_token_signed_with_another_secret_or_expired_is_refused():
    with pytest.raises(Unauthenticated, match="not valid"):
        verify_token(KEY, mint_token(OTHER, "buyer-1", Role.BUYER))
    old = mint_token(KEY, "buyer-1", Role.BUYER, ttl=timedelta(minutes=1),
                     now=datetime.now(UTC) - timedelta(hours=1))
    with pytest.raises(Unauthenticated, match="expired"):
        verify_token(KEY, old)


@pytest.mark.parametrize(("actor", "reads"), [
    (Actor(party_id="buyer-1", role=Role.BUYER), True),
    (Actor(party_id="supplier-1", role=Role.SUPPLIER), True),
    (Actor(party_id="agent-7", role=Role.AGENT), True),
    (Actor(party_id="buyer-1", role=Role.SERVICE), True),  # a platform service acting for the buyer
    (Actor(party_id="buyer-2", role=Role.SERVICE), False),
    (Actor(party_id="buyer-1", role=Role.SUPPLIER), False),  # the right id in the wrong role
    (Actor(party_id="buyer-1", role=Role.BANK), False),
])
def test_who_may_read_an_order(actor, reads):
    assert actor.may_read(PARTIES) is reads


# --- issue 8.7: tokens checked for issuer, audience, lifetime and subject --------------------

def claims_token(key: str = KEY, algorithm: str = "HS256", **overrides) -> str:
    now = datetime.now(UTC)
    claims = {"sub": "buyer-1", "role": "buyer", "iat": now, "exp": now + timedelta(minutes=5),
              "iss": DEV_ISSUER, "aud": AUDIENCE, **overrides}
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, key, algorithm=algorithm)


@pytest.mark.parametrize(("claims", "why"), [
    ({"iss": "someone-else"}, "(?i)issuer"),
    ({"aud": "another-platform"}, "(?i)audience"),
    ({"iss": None}, "iss"),
    ({"aud": None}, "aud"),
    ({"iat": None}, "iat"),
    ({"sub": ""}, "party_id"),
    ({"role": "god"}, "role"),
    ({"exp": datetime.now(UTC) + timedelta(days=30)}, "lives longer"),
])
def test_a_token_from_another_issuer_or_audience_or_too_long_lived_or_without_subject_is_refused(
        claims, why):
    with pytest.raises(Unauthenticated, match=why):
        verify_token(KEY, claims_token(**claims))


def test_services_holding_only_the_public_key_verify_but_cannot_mint() -> None:
    private = Ed25519PrivateKey.generate()
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    settings = ServiceSettings(auth_algorithm="EdDSA", auth_public_key=public_pem,
                               auth_issuer="https://idp.example")
    verifier = TokenVerifier.from_settings(settings)
    private_pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
    token = claims_token(private_pem, "EdDSA", iss="https://idp.example")
    assert verifier.verify(token) == Actor(party_id="buyer-1", role=Role.BUYER)
    # a token made with what a service holds (the public key as an HMAC secret) is refused
    forged = claims_token(KEY, "HS256", iss="https://idp.example")
    with pytest.raises(Unauthenticated):
        verifier.verify(forged)


@pytest.mark.parametrize(("env", "why"), [
    ({}, "AUTH_SECRET is the development value"),
    ({"auth_secret": "short"}, "AUTH_SECRET is shorter than 32 bytes"),
    ({"auth_secret": "x" * 40}, "AUTH_ISSUER is the development issuer"),
    ({"auth_algorithm": "EdDSA", "auth_issuer": "https://idp.example"}, "needs AUTH_PUBLIC_KEY"),
    ({"auth_secret": "x" * 40, "auth_issuer": "https://idp.example"}, "ENVELOPE_KEYS is not set"),
])
def test_outside_development_a_service_refuses_to_start_with_a_development_or_weak_secret(
        env, why, monkeypatch):
    monkeypatch.delenv("ESCROW_ENV", raising=False)
    settings = OrderSettings(**env)
    with pytest.raises(InsecureSettings, match=why):
        order_app.build(settings)


def test_payment_refuses_the_development_data_key_outside_development(monkeypatch):
    monkeypatch.delenv("ESCROW_ENV", raising=False)
    settings = PaymentSettings(auth_secret="x" * 40, auth_issuer="https://idp.example")
    with pytest.raises(InsecureSettings, match="PAYMENT_DATA_KEY is the development value"):
        settings.check_secrets()
    strong = PaymentSettings(auth_secret="x" * 40, auth_issuer="https://idp.example",
                             payment_data_key=Fernet.generate_key().decode(),
                             bank_webhook_keys="bank-2026:" + "k" * 40,
                             envelope_keys="payment:k1:" + "y" * 40)
    strong.check_secrets()


def test_in_development_mode_the_development_secrets_are_allowed(monkeypatch):
    monkeypatch.setenv("ESCROW_ENV", "development")
    PaymentSettings().check_secrets()
