"""``python -m bench [suite …]``: run the benchmark suites on a fresh local stack, print and save the figures."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import logging
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.harness import BenchContext, Figure, settle
from siyu_devstack.stack import Stack
from siyu_devstack.testing import migrate_all

SUITES = ("ingest", "segmentation", "journey", "attribution")
RESULTS = Path(__file__).parent / "results.json"


def machine() -> dict[str, object]:
    mem_kb = 0
    with contextlib.suppress(OSError, StopIteration, ValueError):
        mem_kb = int(
            next(
                line for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
            ).split()[1]
        )
    cpu = "unknown"
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "os": platform.platform(),
    }


def table(figures: list[Figure]) -> str:
    rows = [("suite", "figure", "value", "ceiling (same run)", "ratio", "target")]
    for f in figures:
        ceiling = f"{f.ceiling:,.1f} {f.unit} ({f.ceiling_label})" if f.ceiling is not None else "-"
        ratio = f"{f.ratio:.2f}" if f.ratio is not None else "-"
        target = (
            "-"
            if f.target is None
            else f"{'≥' if f.higher_is_better else '≤'} {f.target:,.0f} {'✓' if f.meets_target else '✗'}"
        )
        rows.append((f.suite, f.name, f"{f.value:,.1f} {f.unit}", ceiling, ratio, target))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


async def run_suites(names: list[str], stack: Stack) -> list[Figure]:
    ctx = BenchContext(stack=stack)
    figures: list[Figure] = []
    for name in names:
        try:
            module = importlib.import_module(f"bench.{name}")
        except ModuleNotFoundError:
            print(f"# {name}: no benchmark yet", file=sys.stderr)
            continue
        if figures:  # after a suite: its checkpoint and autovacuum are not the next one's
            print(f"# settled in {await settle(stack):.1f}s (CHECKPOINT, autovacuum idle)", file=sys.stderr)
        started = time.monotonic()
        print(f"# {name}: running…", file=sys.stderr)
        figures += await module.run(ctx)
        print(f"# {name}: done in {time.monotonic() - started:.0f}s", file=sys.stderr)
    return figures


def merge_results(figures: list[Figure]) -> dict[str, object]:
    """The results file with the suites that just ran replaced and the others kept, each with when and where it ran."""
    previous: dict[str, object] = {}
    if RESULTS.exists():
        try:
            previous = json.loads(RESULTS.read_text())
        except json.JSONDecodeError:
            previous = {}
    kept = previous.get("suites")
    suites: dict[str, object] = dict(kept) if isinstance(kept, dict) else {}
    ran_at = datetime.now(UTC).isoformat()
    for suite in dict.fromkeys(f.suite for f in figures):
        suites[suite] = {
            "ran_at": ran_at,
            "machine": machine(),
            "figures": [f.as_json() for f in figures if f.suite == suite],
        }
    return {"suites": suites}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("suites", nargs="*", default=list(SUITES), help=f"any of {', '.join(SUITES)}")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    with Stack(fast=False) as stack:
        migrate_all(stack)
        figures = asyncio.run(run_suites(args.suites, stack))
    report = merge_results(figures)
    RESULTS.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(table(figures))
    print(f"\nmachine: {machine()}\nwritten: {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
