"""The figures of a run: summaries of the samples, the printed table, the JSON and the plot."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench.actors import Trade
from bench.observe import Hop, Mail


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..100); None without samples."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def ms(values_s: list[float], *qs: float) -> dict[str, float | None]:
    summary: dict[str, Any] = {f"p{q:g}": _round_ms(percentile(values_s, q)) for q in qs}
    summary["n"] = len(values_s)
    return summary


def _round_ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def summarise_level(rate: float, seconds: float, trades: list[Trade], hops: list[Hop],
                    mails: list[Mail], usage: dict) -> dict[str, Any]:
    closed = [t for t in trades if t.closed_at is not None]
    closes = sorted(t.closed_at for t in closed)  # type: ignore[misc]
    # Completion rate between the first and the last close: the offered rate when the
    # platform keeps up, its capacity when it does not.
    completed = (len(closes) - 1) / (closes[-1] - closes[0]) if len(closes) > 2 else 0.0
    errors: dict[str, int] = defaultdict(int)
    for trade in trades:
        if trade.error:
            errors[trade.error] += 1
        elif trade.closed_at is None:
            errors["not closed before the level's deadline"] += 1
    by_consumer: dict[str, list[float]] = defaultdict(list)
    for hop in hops:
        by_consumer[hop.consumer].append(hop.seconds)
    by_event: dict[str, list[float]] = defaultdict(list)
    for hop in hops:
        by_event[f"{hop.event_type} -> {hop.consumer}"].append(hop.seconds)
    started_late = [t.started - t.intended_start for t in trades if t.started]
    return {
        "offered_per_s": round(len(trades) / seconds, 2),
        "target_rate_per_s": rate,
        "seconds": seconds,
        "trades": len(trades),
        "closed": len(closed),
        "completed_per_s": round(completed, 2),
        "place_to_closed_ms": ms([t.latency for t in closed], 50, 95, 99),  # type: ignore[misc]
        "start_lag_ms": ms(started_late, 50, 99),
        "hop_ms": {"all": ms([h.seconds for h in hops], 50, 99),
                   **{name: ms(v, 50, 99) for name, v in sorted(by_consumer.items())}},
        "hop_ms_by_event": {name: ms(v, 50, 99) for name, v in sorted(by_event.items())},
        "consumptions_per_trade": round(len(hops) / max(1, len(trades)), 1),
        "mail_lag_ms": ms([m.lag for m in mails], 50, 99),
        "mails_per_trade": round(len(mails) / max(1, len(trades)), 1),
        "errors": dict(errors),
        "usage": usage,
    }


def _fmt(value: float | None) -> str:
    return "      -" if value is None else f"{value:7.0f}"


def print_level(level: dict[str, Any], complete: bool = True) -> None:
    """``complete``: with hops and mail, known only once the run's mail has arrived."""
    lat, hop, mail = level["place_to_closed_ms"], level["hop_ms"]["all"], level["mail_lag_ms"]
    print(f"  offered {level['offered_per_s']:5.1f}/s  completed {level['completed_per_s']:5.1f}/s  "
          f"closed {level['closed']}/{level['trades']}   place->closed p50 {_fmt(lat['p50'])} "
          f"p95 {_fmt(lat['p95'])} p99 {_fmt(lat['p99'])} ms")
    if not complete:
        print_usage(level["usage"], "    ")
        return
    print(f"    hop (produced -> consumed) p50 {_fmt(hop['p50'])} p99 {_fmt(hop['p99'])} ms "
          f"({level['consumptions_per_trade']} per trade);  mail lag p50 {_fmt(mail['p50'])} "
          f"p99 {_fmt(mail['p99'])} ms ({level['mails_per_trade']} mails per trade);  "
          f"start lag p99 {_fmt(level['start_lag_ms']['p99'])} ms")
    hops = "  ".join(f"{name} {_fmt(v['p50']).strip()}/{_fmt(v['p99']).strip()}"
                     for name, v in level["hop_ms"].items() if name != "all")
    print(f"    hop p50/p99 ms by consumer: {hops}")
    if level["errors"]:
        print(f"    errors: {level['errors']}")
    print_usage(level["usage"], "    ")


def print_usage(usage: dict[str, Any], indent: str) -> None:
    cells = [f"{name} {p['cpu_s']:.1f}/{p['run_queue_wait_s']:.1f}/{p['peak_rss_mib']:.0f}M"
             for name, p in usage["processes"].items()]
    pressure = usage.get("cpu_pressure_pct")
    print(f"{indent}CPU s / waiting for a CPU s / peak RSS over {usage['wall_s']:.0f} s"
          + (f" (machine: a task waited for a CPU {pressure:.0f}% of the time)" if pressure is not None else "")
          + ": " + ", ".join(cells))


def write_json(path: Path, result: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")


def plot(path: Path, levels: list[dict[str, Any]], title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    offered = [lv["offered_per_s"] for lv in levels]
    fig, (through, latency) = plt.subplots(1, 2, figsize=(11, 4.2))
    through.plot(offered, offered, ":", color="grey", label="offered")
    through.plot(offered, [lv["completed_per_s"] for lv in levels], "o-", label="completed")
    through.set_xlim(left=0)
    through.set_ylim(bottom=0)
    through.set_xlabel("offered trades/s")
    through.set_ylabel("completed trades/s")
    through.legend()
    through.grid(alpha=0.3)
    for q in ("p50", "p99"):
        values = [lv["place_to_closed_ms"][q] for lv in levels]
        latency.plot(offered, [v / 1000 if v is not None else math.nan for v in values], "o-",
                     label=f"place -> closed {q}")
    latency.set_xlabel("offered trades/s")
    latency.set_ylabel("seconds (log)")
    latency.set_yscale("log")
    latency.legend()
    latency.grid(alpha=0.3, which="both")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
