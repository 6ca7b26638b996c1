"""Wait until local servers really answer a client (not merely until a port is open).

    .venv/bin/python deploy/local/wait_ready.py --timeout 120 \\
        --check kafka kafka 127.0.0.1:9092 --log kafka .run/logs/kafka.log --pid kafka 1234 \\
        --check mongo mongo 'mongodb://127.0.0.1:27017/?directConnection=true' \\
        --check mailbox smtp 127.0.0.1:1025 --check mailbox http http://127.0.0.1:8025/api/messages

Kinds of check:
  kafka  HOST:PORT  aiokafka admin client: cluster metadata lists a broker, a probe topic can be
                    created and described with a leader, and a group coordinator is available
  mongo  URL        pymongo ``ping`` (then a write and read of a probe document, not with --once)
  smtp   HOST:PORT  SMTP EHLO + NOOP answered with 250
  http   URL        HTTP GET answered with 200

All checks run concurrently under one deadline and are retried every --interval seconds.
``--pid NAME PID`` makes a check fail at once when that process has exited, and ``--log NAME
PATH`` names the log to read (its last lines are printed on failure).  ``--once`` tries each
check one time with short timeouts and prints one line per check (used by ``infra.sh status``).
Exit status: 0 when every check passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import logging
import os
import smtplib
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

PROBE_TOPIC = "escrow-infra-readiness-probe"
PROBE_GROUP = "escrow-infra-readiness-probe"
TOPIC_ALREADY_EXISTS = 36


class NotReady(Exception):
    pass


@dataclass
class Check:
    name: str
    kind: str
    target: str
    pid: int | None = None
    log: str | None = None
    ok: bool = False
    error: str = "not tried"
    attempts: int = 0
    elapsed: float = 0.0
    died: bool = False
    extra: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- probes


def _host_port(target: str) -> tuple[str, int]:
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise SystemExit(f"wait_ready: expected HOST:PORT, got {target!r}")
    return host.strip("[]"), int(port)


async def probe_kafka(target: str, timeout: float, once: bool) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    ms = max(1000, int(timeout * 1000))
    admin = AIOKafkaAdminClient(bootstrap_servers=target, request_timeout_ms=ms, client_id="escrow-wait-ready")
    try:
        await asyncio.wait_for(admin.start(), timeout)
        cluster = await asyncio.wait_for(admin.describe_cluster(), timeout)
        if not cluster.get("brokers"):
            raise NotReady("metadata lists no broker yet")
        if cluster.get("controller_id", -1) < 0:
            raise NotReady("no active controller yet")
        if once:
            return
        resp = await asyncio.wait_for(admin.create_topics([NewTopic(PROBE_TOPIC, 1, 1)], timeout_ms=ms), timeout)
        for code in _error_codes(resp.to_object()):
            if code not in (0, TOPIC_ALREADY_EXISTS):
                raise NotReady(f"creating the probe topic failed with Kafka error code {code}")
        topics = await asyncio.wait_for(admin.describe_topics([PROBE_TOPIC]), timeout)
        for t in topics:
            if t.get("error_code"):
                raise NotReady(f"describing the probe topic failed with Kafka error code {t['error_code']}")
            parts = t.get("partitions") or []
            if not parts or any(p.get("leader", -1) < 0 for p in parts):
                raise NotReady("the probe topic has no partition leader yet")
        # The first FindCoordinator creates __consumer_offsets; waiting for it here saves the
        # first consumer group of a test run from a round of COORDINATOR_NOT_AVAILABLE retries.
        await asyncio.wait_for(admin.find_coordinator(PROBE_GROUP), timeout)
    finally:
        try:
            await admin.close()
        except Exception:
            pass


def _error_codes(obj: object):
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == "error_code" and isinstance(v, int):
                yield v
            else:
                yield from _error_codes(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _error_codes(v)


def probe_mongo(target: str, timeout: float, once: bool) -> None:
    import pymongo

    ms = max(500, int(timeout * 1000))
    client = pymongo.MongoClient(target, serverSelectionTimeoutMS=ms, connectTimeoutMS=ms, socketTimeoutMS=ms)
    try:
        reply = client.admin.command("ping")
        if reply.get("ok") != 1:
            raise NotReady(f"ping answered {reply!r}")
        if once:
            return
        coll = client["escrow_infra_probe"]["probe"]
        coll.replace_one({"_id": "probe"}, {"_id": "probe", "at": time.time()}, upsert=True)
        if coll.find_one({"_id": "probe"}) is None:
            raise NotReady("a probe document written was not read back")
    finally:
        client.close()


def probe_smtp(target: str, timeout: float, once: bool) -> None:
    host, port = _host_port(target)
    with smtplib.SMTP(host, port, timeout=timeout) as smtp:
        code, msg = smtp.ehlo("wait-ready.local")
        if code != 250:
            raise NotReady(f"EHLO answered {code} {msg!r}")
        code, msg = smtp.noop()
        if code != 250:
            raise NotReady(f"NOOP answered {code} {msg!r}")


def probe_http(target: str, timeout: float, once: bool) -> None:
    with urllib.request.urlopen(target, timeout=timeout) as resp:  # noqa: S310 (local URL)
        if resp.status != 200:
            raise NotReady(f"GET answered {resp.status}")
        resp.read()


PROBES: dict[str, Callable[[str, float, bool], object]] = {
    "kafka": probe_kafka,
    "mongo": probe_mongo,
    "smtp": probe_smtp,
    "http": probe_http,
}


# --------------------------------------------------------------------------- loop


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped) still answers kill(0): look at its state where we can.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


async def attempt(check: Check, timeout: float, once: bool) -> None:
    probe = PROBES[check.kind]
    if inspect.iscoroutinefunction(probe):
        await probe(check.target, timeout, once)  # type: ignore[misc]
    else:
        await asyncio.wait_for(asyncio.to_thread(probe, check.target, timeout, once), timeout + 1)


async def run_check(check: Check, deadline: float, interval: float, once: bool, attempt_timeout: float) -> None:
    start = time.monotonic()
    while True:
        check.attempts += 1
        remaining = deadline - time.monotonic()
        try:
            await attempt(check, max(0.5, min(attempt_timeout, remaining)), once)
            check.ok = True
            check.error = ""
            break
        except Exception as exc:  # every failure is "not ready yet" until the deadline
            text = str(exc) or type(exc).__name__
            check.error = f"{type(exc).__name__}: {text}" if type(exc).__name__ not in text else text
        if check.pid is not None and not pid_alive(check.pid):
            check.died = True
            break
        if once or time.monotonic() + interval >= deadline:
            break
        await asyncio.sleep(interval)
    check.elapsed = time.monotonic() - start


def tail(path: str, lines: int = 15) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read().decode("utf-8", "replace").splitlines()
    except OSError as exc:
        return f"    (cannot read {path}: {exc})"
    return "\n".join("    " + line[:300] for line in data[-lines:])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", nargs=3, action="append", default=[], metavar=("NAME", "KIND", "TARGET"),
                   help=f"a server to wait for; KIND is one of {', '.join(PROBES)}")
    p.add_argument("--pid", nargs=2, action="append", default=[], metavar=("NAME", "PID"))
    p.add_argument("--log", nargs=2, action="append", default=[], metavar=("NAME", "PATH"))
    p.add_argument("--timeout", type=float, default=float(os.environ.get("INFRA_READY_TIMEOUT", "120")),
                   help="overall deadline in seconds (default 120, env INFRA_READY_TIMEOUT)")
    p.add_argument("--interval", type=float, default=0.25, help="pause between attempts (default 0.25 s)")
    p.add_argument("--once", action="store_true", help="one attempt per check, short timeouts, one line each")
    p.add_argument("--quiet", action="store_true", help="print only failures")
    args = p.parse_args(argv)
    if not args.check:
        p.error("nothing to check: give at least one --check NAME KIND TARGET")
    for _, kind, _ in args.check:
        if kind not in PROBES:
            p.error(f"unknown check kind {kind!r}; expected one of {', '.join(PROBES)}")
    return args


async def amain(args: argparse.Namespace) -> int:
    pids = {name: int(pid) for name, pid in args.pid}
    logs = dict(args.log)
    checks = [Check(name, kind, target, pids.get(name), logs.get(name)) for name, kind, target in args.check]
    timeout = 3.0 if args.once else args.timeout
    deadline = time.monotonic() + timeout
    attempt_timeout = 3.0 if args.once else 10.0
    await asyncio.gather(*(run_check(c, deadline, args.interval, args.once, attempt_timeout) for c in checks))

    failed = [c for c in checks if not c.ok]
    for c in checks:
        if args.once:
            state = "ready" if c.ok else f"NOT ready ({c.error})"
            print(f"{c.name:<12} {c.kind:<6} {c.target:<50} {state}")
        elif c.ok and not args.quiet:
            print(f"  {c.name}: {c.kind} {c.target} answered after {c.elapsed:.1f}s")
    if failed and not args.once:
        for c in failed:
            why = (f"its process (pid {c.pid}) exited" if c.died
                   else f"no answer within {timeout:.0f}s")
            print(f"ERROR: {c.name} did not come up: {why}; {c.kind} check of {c.target} "
                  f"last said: {c.error}", file=sys.stderr)
            if c.log:
                print(f"  read its log: {c.log} (last lines below)\n{tail(c.log)}", file=sys.stderr)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    # aiokafka logs every refused connection at ERROR level; the summary above is what matters.
    logging.basicConfig(level=logging.CRITICAL)
    for name in ("aiokafka", "kafka", "pymongo"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    return asyncio.run(amain(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
