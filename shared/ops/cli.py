"""escrowctl — one entry point for operators (``python -m shared.ops`` or ``escrowctl``).

    escrowctl story ORDER_ID                 # the order across the five services
    escrowctl reconcile [--stuck-after 900]  # exit 1 on a broken ledger or stuck money
    escrowctl deadletters list|show|replay --service payment [POSITION]
    escrowctl token --role agent --party ops-1
    escrowctl demo                           # play a trade on the running platform
    escrowctl config-reference [--write|--check]

Every command takes ``--json``. Connection settings come from the same environment
variables as the services (MONGODB_URL, MONGODB_DATABASE, KAFKA_BOOTSTRAP_SERVERS,
TOPIC_PREFIX); the tool reads the services' collections read-only (docs/operations.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import runpy
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from shared.contracts.parties import Role
from shared.contracts.topics import Service, Topics
from shared.infra import deadletters
from shared.infra.auth import mint_token
from shared.infra.settings import ServiceSettings
from shared.ops import reconcile as reconciliation
from shared.ops import story as stories
from shared.ops.records import Records

DEMO = Path(__file__).resolve().parents[2] / "deploy" / "local" / "demo.py"


def _out(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, indent=2, default=str) if args.json else text)


async def _story(args: argparse.Namespace, settings: ServiceSettings) -> int:
    records, client = Records.connect(settings.mongodb_url, settings.mongodb_database)
    try:
        told = await stories.story(records, args.order_id, topics=Topics(settings.topic_prefix),
                                   kafka=None if args.no_kafka else settings.kafka_bootstrap_servers)
    finally:
        await client.close()
    _out(args, told, stories.render(told))
    return 0 if told["found"] else 1


async def _reconcile(args: argparse.Namespace, settings: ServiceSettings) -> int:
    records, client = Records.connect(settings.mongodb_url, settings.mongodb_database)
    try:
        result = await reconciliation.reconcile(records, stuck_after=timedelta(seconds=args.stuck_after))
    finally:
        await client.close()
    _out(args, result, reconciliation.render(result))
    return 1 if result["problems"] else 0


def _letter(letter: deadletters.DeadLetter, *, full: bool = False) -> dict[str, Any]:
    shown: dict[str, Any] = {"position": letter.position, "key": (letter.key or b"").decode(errors="replace"),
                             "reason": letter.reason, "replayed": letter.replayed}
    if full:
        shown["headers"] = letter.headers
        shown["value"] = letter.value.decode(errors="replace")
    return shown


def _position(text: str) -> tuple[int, int]:
    partition, _, offset = text.partition("@")
    return int(partition), int(offset)


async def _deadletters(args: argparse.Namespace, settings: ServiceSettings) -> int:
    topics, service, kafka = Topics(settings.topic_prefix), Service(args.service), settings.kafka_bootstrap_servers
    if args.action == "replay" and args.position:
        letter = await deadletters.replay_one(kafka, topics, service, *_position(args.position))
        _out(args, {"replayed": [letter.position]}, f"replayed {letter.position} to {topics.retries(service)}")
        return 0
    if args.action == "replay":
        count = await deadletters.replay(kafka, topics, service)
        _out(args, {"replayed": count}, f"replayed {count} dead letter(s) to {topics.retries(service)}")
        return 0
    letters = await deadletters.list_dead_letters(kafka, topics, service)
    if args.action == "show":
        if not args.position:
            sys.exit("show needs a POSITION (partition@offset)")
        wanted = [d for d in letters if (d.partition, d.offset) == _position(args.position)]
        if not wanted:
            sys.exit(f"no dead letter {args.position} for {service}")
        shown = _letter(wanted[0], full=True)
        _out(args, shown, "\n".join(f"{k}: {v}" for k, v in shown.items()))
        return 0
    listed = [_letter(d) for d in letters]
    _out(args, listed, "\n".join(f"{d['position']} {d['key']}{' (replayed)' if d['replayed'] else ''}: "
                                 f"{d['reason']}" for d in listed) or "no dead letters")
    return 0


def _token(args: argparse.Namespace, settings: ServiceSettings) -> int:
    if not settings.development:
        sys.exit("tokens are minted here only for a development platform (ESCROW_ENV=development); "
                 "elsewhere the identity provider issues them")
    token = mint_token(settings.auth_secret.get_secret_value(), args.party, Role(args.role),
                       timedelta(hours=args.hours), issuer=settings.auth_issuer,
                       audience=settings.auth_audience)
    _out(args, {"token": token, "party": args.party, "role": args.role}, token)
    return 0


def _config_reference(args: argparse.Namespace, _settings: ServiceSettings) -> int:
    from shared.ops import configuration

    if args.write:
        configuration.DOCUMENT.write_text(configuration.reference())
        _out(args, {"written": str(configuration.DOCUMENT)}, f"wrote {configuration.DOCUMENT}")
        return 0
    if args.check:
        stale = configuration.is_stale()
        _out(args, {"stale": stale}, f"{configuration.DOCUMENT} is stale: run `escrowctl config-reference "
                                     "--write`" if stale else "up to date")
        return 1 if stale else 0
    _out(args, configuration.settings_table(), configuration.reference())
    return 0


def _demo(args: argparse.Namespace, _settings: ServiceSettings) -> int:
    if args.json:
        sys.exit("demo tells a story for people: it has no --json output")
    runpy.run_path(str(DEMO), run_name="__main__")
    return 0


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="machine-readable output")
    top = argparse.ArgumentParser(prog="escrowctl", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = top.add_subparsers(dest="command", required=True)
    story = commands.add_parser("story", parents=[common], help="an order's whole story")
    story.add_argument("order_id")
    story.add_argument("--no-kafka", action="store_true", help="skip the dead-letter topics")
    story.set_defaults(run=_story)
    check = commands.add_parser("reconcile", parents=[common], help="ledger and instruction reconciliation")
    check.add_argument("--stuck-after", type=float, default=900.0,
                       help="seconds after which an unsent instruction counts as stuck")
    check.set_defaults(run=_reconcile)
    letters = commands.add_parser("deadletters", parents=[common], help="list, show or replay dead letters")
    letters.add_argument("action", choices=["list", "show", "replay"])
    letters.add_argument("position", nargs="?", help="partition@offset (show; replay only this one)")
    letters.add_argument("--service", required=True, choices=[str(s) for s in Service])
    letters.set_defaults(run=_deadletters)
    token = commands.add_parser("token", parents=[common], help="mint a development token")
    token.add_argument("--party", required=True)
    token.add_argument("--role", required=True, choices=[str(r) for r in Role])
    token.add_argument("--hours", type=float, default=8.0)
    token.set_defaults(run=_token)
    demo = commands.add_parser("demo", parents=[common], help="play a trade on the running platform")
    demo.set_defaults(run=_demo)
    config = commands.add_parser("config-reference", parents=[common],
                                 help="every setting with its default (docs/configuration.md)")
    config.add_argument("--write", action="store_true")
    config.add_argument("--check", action="store_true")
    config.set_defaults(run=_config_reference)
    return top


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    settings = ServiceSettings()
    result = args.run(args, settings)
    if asyncio.iscoroutine(result):
        result = asyncio.run(result)
    sys.exit(result)
