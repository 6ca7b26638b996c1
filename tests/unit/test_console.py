"""The console's proxy and sign-in, without a browser or the services (the browser tests on
the real platform are tests/e2e/test_console_browser_realinfra.py)."""

from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient

from shared.infra.auth import verify_token
from shared.infra.settings import DEV_AUTH_SECRET, InsecureSettings

from services.console.app import build
from services.console.settings import ConsoleSettings

seen: list[httpx.Request] = []


def upstream(request: httpx.Request) -> httpx.Response:
    seen.append(request)
    return httpx.Response(422, json={"title": "Invalid request", "errors": [{"field": "x"}]},
                          headers={"content-type": "application/problem+json",
                                   "x-correlation-id": request.headers.get("x-correlation-id", ""),
                                   "set-cookie": "leak=1"})


@pytest.fixture
def console() -> TestClient:
    seen.clear()
    settings = ConsoleSettings(escrow_env="development", payment_url="http://payment.internal:9")
    return TestClient(build(settings, transport=httpx.MockTransport(upstream)))


def test_the_proxy_forwards_the_users_token_and_correlation_id_and_answers_as_the_service(console):
    response = console.post("/api/payment/orders/o-1/payments/card?x=1", json={"number": "1"},
                            headers={"authorization": "Bearer t", "x-correlation-id": "c-1",
                                     "idempotency-key": "k-1", "cookie": "session=secret"})
    assert response.status_code == 422 and response.json()["errors"] == [{"field": "x"}]
    [request] = seen
    assert str(request.url) == "http://payment.internal:9/orders/o-1/payments/card?x=1"
    assert (request.headers["authorization"], request.headers["idempotency-key"]) == ("Bearer t", "k-1")
    assert "cookie" not in request.headers
    assert response.headers["x-correlation-id"] == "c-1"
    assert "set-cookie" not in response.headers


@pytest.mark.parametrize("path", ["/api/payment/bank/transfers/unmatched", "/api/order/health/ready",
                                  "/api/order/metrics", "/api/ledger/orders/o-1", "/api/order/../x",
                                  "/api/payment/orders/..%2F..%2Fbank/transfers/unmatched",
                                  "/api/payment/orders/%2E%2E/bank/transfers/unmatched"])
def test_the_proxy_reaches_no_private_endpoint(console, path):
    assert console.get(path).status_code == 404
    assert seen == []


def test_a_service_that_does_not_answer_is_a_502_problem():
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)
    client = TestClient(build(ConsoleSettings(escrow_env="development"), transport=httpx.MockTransport(down)))
    response = client.get("/api/order/orders")
    assert response.status_code == 502 and response.headers["content-type"] == "application/problem+json"


def test_development_mints_agent_buyer_and_supplier_tokens_only(console):
    token = console.post("/dev/token", json={"role": "agent", "party_id": "agent-1"}).json()["token"]
    actor = verify_token(DEV_AUTH_SECRET, token)
    assert (actor.party_id, actor.role) == ("agent-1", "agent")
    refused = console.post("/dev/token", json={"role": "bank", "party_id": "b"})
    assert refused.status_code == 422


def test_outside_development_no_token_is_minted_and_the_sign_in_hook_is_offered():
    settings = ConsoleSettings(escrow_env="production", auth_secret="s" * 40, auth_issuer="https://id.example",
                               identity_provider_url="https://id.example/authorize")
    client = TestClient(build(settings))
    assert client.post("/dev/token", json={"role": "agent", "party_id": "a"}).status_code == 404
    assert client.get("/config").json() == {"development": False,
                                            "identity_provider_url": "https://id.example/authorize"}
    with pytest.raises(InsecureSettings):
        build(ConsoleSettings(escrow_env="production"))


def test_the_pages_are_served(console):
    assert "app.js" in console.get("/").text
    assert console.get("/static/trade.js").status_code == 200
