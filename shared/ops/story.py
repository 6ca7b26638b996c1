"""An order's whole story across the five services: one timeline merged from each
service's history, the escrow's ledger and instructions, the emails and the dead letters."""

from __future__ import annotations

from typing import Any

from shared.contracts.topics import Service, Topics
from shared.infra.deadletters import DeadLetter, list_dead_letters
from shared.ops.records import Records


async def story(records: Records, order_id: str, *, kafka: str | None, topics: Topics) -> dict[str, Any]:
    documents = await records.aggregates(order_id)
    timeline = sorted(
        ({"at": entry["at"], "service": service, "what": entry["what"], "detail": entry.get("detail", {})}
         for service, doc in documents.items() for entry in doc["state"].get("history", [])),
        key=lambda e: (e["at"], e["service"]))
    escrow = documents.get("payment", {}).get("state", {})
    dead = []
    if kafka:
        for service in Service:
            dead += [_dead(service, letter) for letter in await list_dead_letters(kafka, topics, service)
                     if letter.key == order_id.encode()]
    return {
        "order_id": order_id,
        "found": bool(documents),
        "states": {service: {"status": doc["state"].get("status"), "version": doc.get("version"),
                             "outbox_pending": len(doc.get("outbox", []))}
                   for service, doc in documents.items()},
        "timeline": timeline,
        "ledger": escrow.get("ledger", []),
        "instructions": escrow.get("instructions", []),
        "emails": [{k: m.get(k) for k in ("created_at", "step", "recipient_role", "to", "subject",
                                          "status", "attempts", "last_error", "sent_at")}
                   for m in await records.emails(order_id)],
        "dead_letters": dead,
    }


def _dead(service: Service, letter: DeadLetter) -> dict[str, Any]:
    return {"service": str(service), "position": letter.position, "reason": letter.reason,
            "replayed": letter.replayed}


def render(told: dict[str, Any]) -> str:
    if not told["found"]:
        return f"no service knows order {told['order_id']}"
    lines = [f"order {told['order_id']}"]
    lines += [f"  {service:<9} {s['status']} (version {s['version']}"
              + (f", {s['outbox_pending']} message(s) not yet published" if s["outbox_pending"] else "")
              + ")" for service, s in told["states"].items()]
    lines.append("timeline")
    lines += [f"  {str(e['at'])[:19]}  {e['service']:<9} {e['what']}" for e in told["timeline"]]
    if told["ledger"]:
        lines.append("ledger")
        lines += [f"  {str(e['at'])[:19]}  {e['amount']:>12}  {e['debit']} <- {e['credit']}  {e['memo']}"
                  for e in told["ledger"]]
    if told["instructions"]:
        lines.append("instructions")
        lines += [f"  {i['kind']:<7} {i['amount']:>12} {i['currency']}  {i['status']}  {i['reason']}"
                  for i in told["instructions"]]
    lines.append(f"emails ({len(told['emails'])})")
    lines += [f"  {m['status']:<8} {m['recipient_role']:<9} {m['subject']}" for m in told["emails"]]
    lines.append(f"dead letters ({len(told['dead_letters'])})")
    lines += [f"  {d['service']} {d['position']}{' (replayed)' if d['replayed'] else ''}: "
              f"{d['reason']}" for d in told["dead_letters"]]
    return "\n".join(lines)
