"""Whole card trades driven from outside the platform at increasing offered rates: `make bench`.

    .venv/bin/python -m bench.trades                  # levels 1,2,5,10,15,20,25,30,40 trades/s, 15 s each
    .venv/bin/python -m bench.trades --quick          # two short levels: a smoke run (~1 min)
    .venv/bin/python -m bench.trades --levels 5,10 --seconds 30 --profile

The five services run as separate processes (deploy/local/services.sh, as `make run` starts
them) on the servers of deploy/local/infra.sh, on their own ports, topics and database. The
generator is open-loop: trade i of a level starts at ``level start + i / rate`` whatever
happened to earlier trades, and its latency runs from that intended start, so queueing in
the platform (or in this process) cannot hide. A level is *sustained* when every trade
closed and the completion rate kept up with the offered rate (>= 80 %: it is
measured between the first and the last close, so latency jitter moves it); the run stops at the first
level that is not (``--all-levels`` runs them all). Then: mail delivery, idle CPU, the raw
bound (bench/rawbound.py), a JSON file and a PNG plot in ``<run dir>/bench/``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import subprocess
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from pymongo import AsyncMongoClient

from shared.infra.settings import ServiceSettings

from bench import rawbound
from bench.actors import Actors, Parties, Trade, play, register_parties
from bench.observe import Observer
from bench.platform import DEFAULT_PORTS, REPO, SERVICES, Meter, Platform, platform
from bench.profile import Profiler
from bench.report import plot, print_level, print_usage, summarise_level, write_json

COMMANDS_PER_TRADE = 5  # place, confirm, pay, ship, confirm receipt
PARTIES = 10  # buyers, and as many suppliers: 100 pairs


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.trades", description=__doc__.split("\n")[0])
    parser.add_argument("--levels", default="1,2,5,10,15,20,25,30,40",
                        help="offered rates in trades/s, comma-separated (default %(default)s)")
    parser.add_argument("--seconds", type=float, default=15, help="trades are started for this long "
                        "at each level (default %(default)s)")
    parser.add_argument("--drain", type=float, default=30, help="then the level's trades have this "
                        "long to close (default %(default)s s)")
    parser.add_argument("--idle-seconds", type=float, default=20)
    parser.add_argument("--mail-timeout", type=float, default=60, help="after the last level, how "
                        "long to wait for every trade's mail (default %(default)s s)")
    parser.add_argument("--all-levels", action="store_true", help="go on after a level is not sustained")
    parser.add_argument("--quick", action="store_true", help="levels 1,3 for 6 s each, short waits")
    parser.add_argument("--profile", action="store_true", help="py-spy on each service during each "
                        "level (costs CPU: the figures are lower); prints the hottest functions")
    parser.add_argument("--log-level", default="INFO", help="the services' LOG_LEVEL (make run: INFO)")
    parser.add_argument("--out", type=Path, help="folder for the JSON and PNG (default <run dir>/bench)")
    args = parser.parse_args()
    if args.quick:
        args.levels, args.seconds, args.drain = "1,3", 6.0, 20.0
        args.idle_seconds, args.mail_timeout = 5.0, 30.0
    args.rates = [float(r) for r in args.levels.split(",")]
    return args


def commit() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, check=True).stdout.strip()
        return rev + ("+changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


async def run_level(rate: float, seconds: float, drain: float, actors: Actors, observer: Observer,
                    parties: Parties, meter: Meter, profiler: Profiler | None) -> tuple[list[Trade], dict]:
    loop = asyncio.get_running_loop()
    count = max(1, round(rate * seconds))
    began_loop, began_wall = loop.time() + 0.05, time.time() + 0.05
    trades = [Trade(began_wall + i / rate, *parties.for_trade(i)) for i in range(count)]
    window = meter.window()
    if profiler:
        profiler.start(seconds + drain)
    tasks = []
    for i, trade in enumerate(trades):
        delay = began_loop + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(play(trade, actors, observer)))
    _, pending = await asyncio.wait(tasks, timeout=max(0.1, began_loop + seconds + drain - loop.time()))
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    if profiler:
        await profiler.stop()
    return trades, window.close()


async def settle_mails(observer: Observer, orders: set[str], expected: int, timeout: float) -> float:
    """Waits until each order has ``expected`` mails (or, with ``expected`` 0, until no mail
    came for 3 s); returns how long it waited."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    last_count, last_change = -1, began
    while loop.time() - began < timeout:
        per_order = Counter(m.order_id for m in observer.mails if m.order_id in orders)
        if expected and all(per_order[o] >= expected for o in orders):
            break
        count = sum(per_order.values())
        if count != last_count:
            last_count, last_change = count, loop.time()
        elif not expected and count and loop.time() - last_change > 3:
            break
        await asyncio.sleep(0.2)
    return loop.time() - began


def raw_bound_inputs(observer: Observer, orders: set[str], trades: int, mails_per_trade: int) -> dict[str, Any]:
    messages: Counter[str] = Counter()
    sizes: list[int] = []
    for order in orders:
        for seen in observer.by_order.get(order, {}).values():
            messages[seen.event_type.split(".")[0]] += 1
            sizes.append(seen.size)
    consumed: Counter[str] = Counter(h.event_type.split(".")[0] for h in observer.hops if h.order_id in orders)
    per_topic = {topic: (count / trades, max(1, round(consumed[topic] / count)))
                 for topic, count in messages.items()}
    return {"trades": trades, "per_topic": per_topic,
            "message_bytes": round(sum(sizes) / max(1, len(sizes))),
            "writes": sum(consumed.values()) + (mails_per_trade + COMMANDS_PER_TRADE) * trades}


async def remove_run(bootstrap: str, mongodb_url: str, prefix: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        topics = [t for t in await admin.list_topics() if t.startswith(f"{prefix}.")]
        if topics:
            await admin.delete_topics(topics)
    finally:
        await admin.close()
    client: AsyncMongoClient = AsyncMongoClient(mongodb_url)
    try:
        await client.drop_database(prefix)
    finally:
        await client.close()


async def bench(args: argparse.Namespace, plat: Platform) -> dict[str, Any]:
    infra = plat.infra
    meter = Meter(plat.processes())
    meter.start()
    observer = Observer(infra["KAFKA_BOOTSTRAP_SERVERS"], plat.prefix, Path(infra["MAILBOX_DIR"]))
    await observer.start()
    actors = Actors({s: plat.url(s) for s in SERVICES}, ServiceSettings().auth_secret.get_secret_value())
    profiler = Profiler({s: meter.pids[s] for s in SERVICES}) if args.profile else None
    result: dict[str, Any] = {"levels": []}
    levels: list[tuple[float, list[Trade], dict]] = []
    try:
        parties = await register_parties(actors, observer, PARTIES)
        warm = await play(Trade(time.time(), *parties.for_trade(0)), actors, observer)
        if warm.error or warm.closed_at is None:
            raise SystemExit(f"the warm-up trade failed: {warm.error}; read {plat.services_dir}/logs")
        await settle_mails(observer, {warm.order_id}, 0, 30)
        expected_mails = sum(1 for m in observer.mails if m.order_id == warm.order_id)
        print(f"warm-up trade closed in {warm.latency:.2f} s; {expected_mails} mails per trade")
        for rate in args.rates:
            trades, usage = await run_level(rate, args.seconds, args.drain, actors, observer,
                                            parties, meter, profiler)
            levels.append((rate, trades, usage))
            summary = summarise_level(rate, args.seconds, trades, [], [], usage)
            print_level(summary, complete=False)
            if profiler:
                profiler.print_top()
            sustained = (summary["closed"] == summary["trades"]
                         and summary["completed_per_s"] >= 0.8 * summary["offered_per_s"])
            if not sustained and not args.all_levels:
                print("  not sustained: no higher level")
                break
        orders = {t.order_id for _, trades, _ in levels for t in trades if t.order_id}
        closed_orders = {t.order_id for _, trades, _ in levels for t in trades if t.closed_at}
        waited = await settle_mails(observer, closed_orders, expected_mails, args.mail_timeout)
        per_order = Counter(m.order_id for m in observer.mails if m.order_id in closed_orders)
        short = sum(1 for o in closed_orders if per_order[o] < expected_mails)
        result["mail"] = {"expected_per_trade": expected_mails, "closed_trades": len(closed_orders),
                          "trades_missing_mail": short, "waited_after_last_level_s": round(waited, 1)}
        print(f"mail: {len(closed_orders) - short}/{len(closed_orders)} closed trades have all "
              f"{expected_mails} mails, {waited:.1f} s after the last level")
        open_trades = len(orders) - len(closed_orders)
        observer.pause()  # its polling of the group coordinator would count as the broker's
        window = meter.window()
        await asyncio.sleep(args.idle_seconds)
        result["idle"] = window.close()
        result["idle"]["trades_still_open"] = open_trades
        print(f"idle for {args.idle_seconds:.0f} s ({open_trades} trades still open), % of a core: "
              + ", ".join(f"{n} {p['cpu_pct_of_core']:.1f}" for n, p in result["idle"]["processes"].items()))
    finally:
        await actors.close()
        await observer.stop()
        await meter.stop()
    for rate, trades, usage in levels:
        ids = {t.order_id for t in trades if t.order_id}
        result["levels"].append(summarise_level(
            rate, args.seconds, trades, [h for h in observer.hops if h.order_id in ids],
            [m for m in observer.mails if m.order_id in ids], usage))
    result["raw_inputs"] = _raw_inputs(result["levels"], levels, observer, expected_mails)
    return result


def _raw_inputs(summaries: list[dict], levels: list[tuple[float, list[Trade], dict]],
                observer: Observer, mails_per_trade: int) -> dict[str, Any]:
    """From the level with the best complete throughput (else the best of any)."""
    complete = [i for i, s in enumerate(summaries) if s["closed"] == s["trades"]] or range(len(summaries))
    best = max(complete, key=lambda i: summaries[i]["completed_per_s"])
    closed = {t.order_id for t in levels[best][1] if t.closed_at}
    return {"level": best, **raw_bound_inputs(observer, closed, max(1, len(closed)), mails_per_trade)}


async def raw_bound(plat: Platform, inputs: dict[str, Any]) -> dict[str, Any]:
    kafka_s = await rawbound.kafka_seconds(plat.infra["KAFKA_BOOTSTRAP_SERVERS"], f"{plat.prefix}raw",
                                           inputs["trades"], inputs["per_topic"], inputs["message_bytes"])
    mongo_s = await rawbound.mongodb_seconds(plat.infra["MONGODB_URL"], f"{plat.prefix}raw", inputs["writes"])
    trades = inputs["trades"]
    return {**inputs, "kafka_s": round(kafka_s, 2), "mongodb_s": round(mongo_s, 2),
            "trades_per_s": round(trades / (kafka_s + mongo_s), 1)}


def print_summary(result: dict[str, Any]) -> None:
    print("\nper level (complete figures, mail and hops included):")
    for level in result["levels"]:
        print_level(level)
    raw = result["raw_bound"]
    topics = ", ".join(f"{topic} {per_trade:g} x {groups} groups"
                       for topic, (per_trade, groups) in raw["per_topic"].items())
    print(f"\nraw bound, {raw['trades']} trades as at {result['levels'][raw['level']]['offered_per_s']}/s "
          f"(messages per trade x consumer groups: {topics}; {raw['message_bytes']} bytes): "
          f"aiokafka {raw['kafka_s']} s + {raw['writes']} single-document writes with PyMongo "
          f"async {raw['mongodb_s']} s = {raw['trades_per_s']} trades/s")
    best = result["best_completed_per_s"]
    print(f"platform {best} trades/s (best level with every trade closed) / raw bound "
          f"{raw['trades_per_s']} trades/s = {result['platform_over_raw']}")
    print_usage(result["idle"], "idle: ")


async def main_async(args: argparse.Namespace) -> None:
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    ports = {s: int(os.environ.get(f"{s.upper()}_HTTP_PORT", DEFAULT_PORTS[s])) for s in SERVICES}
    plat = platform(prefix, ports, args.log_level)
    print(f"bench.trades: commit {commit()}, {os.cpu_count()} cores, load average "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}; Kafka {plat.infra['KAFKA_BOOTSTRAP_SERVERS']}, "
          f"MongoDB {plat.infra['MONGODB_URL']}, SMTP {plat.infra['SMTP_HOST']}:{plat.infra['SMTP_PORT']}; "
          f"topics/database {prefix}; levels {args.levels} trades/s x {args.seconds:g} s")
    began = time.time()
    try:
        plat.start()
        try:
            result = await bench(args, plat)
        finally:
            plat.stop()
        result["raw_bound"] = await raw_bound(plat, result.pop("raw_inputs"))
    finally:
        await remove_run(plat.infra["KAFKA_BOOTSTRAP_SERVERS"], plat.infra["MONGODB_URL"], prefix)
    complete = [lv["completed_per_s"] for lv in result["levels"] if lv["closed"] == lv["trades"]]
    result["best_completed_per_s"] = max(complete, default=0.0)
    result["platform_over_raw"] = round(result["best_completed_per_s"] / result["raw_bound"]["trades_per_s"], 3)
    result["run"] = {"commit": commit(), "cores": os.cpu_count(), "started": began,
                     "seconds": round(time.time() - began), "args": {k: str(v) for k, v in vars(args).items()},
                     "servers": {k: v for k, v in plat.infra.items() if k.endswith(("URL", "SERVERS"))}}
    print_summary(result)
    out = args.out or plat.run_dir / "bench"
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(began))
    write_json(out / f"trades-{stamp}.json", result)
    plot(out / f"trades-{stamp}.png", result["levels"],
         f"bench.trades at {result['run']['commit']}, {os.cpu_count()} cores: whole card trades, open loop")
    print(f"\nwrote {out}/trades-{stamp}.json and .png; took {time.time() - began:.0f} s")


def main() -> None:
    # The platform of services.sh runs in development mode (its published secrets): so do
    # its clients here, to mint their tokens with the development secret.
    os.environ.setdefault("ESCROW_ENV", "development")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    asyncio.run(main_async(parse_args()))


if __name__ == "__main__":
    main()
