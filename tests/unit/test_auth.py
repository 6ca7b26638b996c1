from datetime import UTC, datetime, timedelta

import pytest

from shared.contracts.parties import Parties, Party, Role
from shared.domain.actor import Actor
from shared.infra.auth import Unauthenticated, mint_token, verify_token

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
