"""What the component benchmarks share: the servers' addresses, a run's own topics and
databases (and their removal afterwards), a realistic order, and the figures: latency
summaries, memory, CPU time of this process and of the servers."""

from __future__ import annotations

import logging
import os
import resource
import statistics
import sys
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient
from pymongo import AsyncMongoClient

from shared.contracts.parties import Parties, Party, Role
from shared.contracts.trade import Address, Carrier, LineItem, Logistics, ShippingMethod
from shared.domain.actor import Actor
from shared.infra.messaging import EventConsumer
from shared.infra.runtime import ServiceRuntime

from services.order.domain import Order

REPO = Path(__file__).resolve().parents[1]
RUN_DIR = Path(os.environ.get("ESCROW_RUN_DIR") or REPO / ".run")
INFRA_ENV = RUN_DIR / "infra.env"


@dataclass(frozen=True)
class Servers:
    kafka: str
    mongodb_url: str
    smtp_host: str
    smtp_port: int
    # A second MongoDB-wire server to compare with, when one is named (MONGODB_STRICT_URL).
    strict_mongodb_url: str | None = None


def quiet_logs() -> None:
    """Warnings and errors only: a benchmark's output is its figures."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # FastStream's own logger (INFO, its own handler) would print two lines per message.
    logging.getLogger("faststream").setLevel(logging.WARNING)
    # Producers and consumers of topics created a moment ago retry until the partitions
    # have a leader; aiokafka logs each retry (as WARNING, or ERROR for offset fetches).
    logging.getLogger("aiokafka.producer.sender").setLevel(logging.ERROR)
    logging.getLogger("aiokafka.consumer.fetcher").setLevel(logging.CRITICAL)
    # Known and irrelevant here: the dev-only payment data key of the in-process services.
    logging.getLogger("services.payment.app").setLevel(logging.ERROR)


def servers() -> Servers:
    """The servers from the environment, else from ``.run/infra.env`` (written by
    ``deploy/local/infra.sh up``); exits with a hint when there are none."""
    env = dict(os.environ)
    if not env.get("KAFKA_BOOTSTRAP_SERVERS") and INFRA_ENV.exists():
        for line in INFRA_ENV.read_text().splitlines():
            name, sep, value = line.partition("=")
            if sep and not name.startswith("#"):
                env.setdefault(name.strip(), value.strip())
    if not (env.get("KAFKA_BOOTSTRAP_SERVERS") and env.get("MONGODB_URL")):
        sys.exit("no servers: run `bash deploy/local/infra.sh up` (or `make run`) first, or set "
                 "KAFKA_BOOTSTRAP_SERVERS and MONGODB_URL")
    return Servers(env["KAFKA_BOOTSTRAP_SERVERS"], env["MONGODB_URL"], env.get("SMTP_HOST", "127.0.0.1"),
                   int(env.get("SMTP_PORT", "1025")), env.get("MONGODB_STRICT_URL"))


def run_prefix(kind: str) -> str:
    return f"bench{kind}{uuid.uuid4().hex[:8]}"


async def remove_run(infra: Servers, prefix: str, databases: Iterable[tuple[str, str]]) -> None:
    """Delete the run's topics and drop its databases ((url, name) pairs); best effort."""
    admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka)
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith(f"{prefix}.")]
        if names:
            await admin.delete_topics(names)
    except Exception as exc:  # cleanup only: the figures are already printed
        print(f"(could not delete topics of {prefix}: {exc})")
    finally:
        await admin.close()
    for url, name in databases:
        client: AsyncMongoClient = AsyncMongoClient(url)
        try:
            await client.drop_database(name)
        finally:
            await client.close()


def event_consumer(runtime: ServiceRuntime) -> EventConsumer:
    if runtime.consumer is None:
        raise LookupError(f"the {runtime.service} service consumes nothing")
    return runtime.consumer


# --- figures --------------------------------------------------------------------------


def percentile(values: list[float], q: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def latency(values_s: list[float]) -> str:
    """``p50 / p95 / max`` in milliseconds."""
    if not values_s:
        return "no samples"
    ms = [v * 1000 for v in values_s]
    return (f"p50 {percentile(ms, 50):8.1f} ms   p95 {percentile(ms, 95):8.1f} ms   "
            f"max {max(ms):8.1f} ms   (n={len(ms)})")


def current_rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        resident_pages = int(statm.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuWatch:
    """CPU seconds used by this process and by the local servers (their pids from
    ``.run/pids``) between ``start`` and ``report``. The servers are shared: their figure
    includes whatever else used them meanwhile."""

    SERVERS = ("mongo", "kafka", "mailbox", "ferretdb")  # pid files of infra.sh; FerretDB if asked

    def __init__(self) -> None:
        self.pids: dict[str, int] = {}
        for name in self.SERVERS:
            pid_file = RUN_DIR / "pids" / f"{name}.pid"
            try:
                pid = int(pid_file.read_text().strip())
                _cpu_seconds(pid)
            except (OSError, ValueError):
                continue
            self.pids[name] = pid
        self.start()

    def _snapshot(self) -> dict[str, float]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        seen = {"this process": usage.ru_utime + usage.ru_stime}
        for name, pid in self.pids.items():
            try:
                seen[name] = _cpu_seconds(pid)
            except OSError:
                pass
        return seen

    def start(self) -> None:
        self._began, self._wall = self._snapshot(), time.perf_counter()

    def report(self) -> str:
        wall = time.perf_counter() - self._wall
        used = {k: v - self._began[k] for k, v in self._snapshot().items() if k in self._began}
        parts = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in used.items())
        return f"CPU over {wall:.1f} s wall ({os.cpu_count()} cores): {parts}"


def load_average() -> str:
    return "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg())


def memory_line() -> str:
    now = current_rss_mib()
    return f"RSS now {now:.1f} MiB, peak {max(now, peak_rss_mib()):.1f} MiB"


# --- a realistic aggregate --------------------------------------------------------------


def confirmed_order(order_id: str, now: datetime) -> Order:
    """An order as the order service keeps it once the supplier confirmed it (awaiting
    payment, with its deadlines): the document the store benchmarks read and write."""
    run = order_id[-8:]
    parties = Parties(
        buyer=Party(party_id=f"buyer-{run}", name="ACME Imports", email=f"buyer-{run}@buyers.example"),
        supplier=Party(party_id=f"supplier-{run}", name="Shenzhen Parts",
                       email=f"supplier-{run}@suppliers.example"))
    order = Order.place(
        order_id, parties,
        [LineItem(description="Stainless bolts M8", quantity=40, unit_price=2350),
         LineItem(description="Hex nuts M8", quantity=40, unit_price=780)],
        "USD", Address(recipient="ACME", line1="Hafenstrasse 1", city="Hamburg", country="DE"), 10, now)
    order.confirm(Actor(party_id=parties.supplier.party_id, role=Role.SUPPLIER),
                  Logistics(shipping_method=ShippingMethod.EXPRESS, carrier=Carrier.DHL), now,
                  payment_window=timedelta(days=20), reminder_before=timedelta(days=3))
    order.pull_events()
    return order
