"""Who is acting: a party in a role, as an authenticated token names it."""

from __future__ import annotations

from pydantic import BaseModel

from shared.contracts.parties import Parties, Role
from shared.contracts.text import PartyId
from shared.domain.errors import NotPermitted


class Actor(BaseModel):
    party_id: PartyId
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


def require(actor: Actor, parties: Parties, *roles: Role, doing: str = "do this") -> Role:
    """The role in which ``actor`` acts on the order of ``parties``, if it is one of
    ``roles`` (buyer and supplier: that order's own; agent: any customer-service agent);
    else ``NotPermitted`` saying who may do what. The one actor check of every service."""
    for role in roles:
        if role is Role.AGENT:
            if actor.role is Role.AGENT:
                return role
            continue
        party = parties.buyer if role is Role.BUYER else parties.supplier
        if actor.acts_as(role, party.party_id):
            return role
    who = " or ".join("a customer-service agent" if r is Role.AGENT else f"this order's {r}"
                      for r in roles)
    raise NotPermitted(f"only {who} may {doing}")
