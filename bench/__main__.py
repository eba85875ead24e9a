"""``python -m bench [suite …]``: run the benchmark suites on a fresh local stack, print and save the figures."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import importlib
import json
import logging
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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


async def run_suites(names: list[str], ctx: BenchContext) -> list[Figure]:
    stack = ctx.stack
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


def merge_results(figures: list[Figure], previous: dict[str, Any], *, scale: float) -> dict[str, Any]:
    """The results file with the suites that just ran replaced and the others kept, each with when and where it
    ran and at which ``BENCH_SCALE``."""
    kept = previous.get("suites")
    suites: dict[str, Any] = dict(kept) if isinstance(kept, dict) else {}
    ran_at = datetime.now(UTC).isoformat(timespec="seconds")
    for suite in dict.fromkeys(f.suite for f in figures):
        suites[suite] = {
            "ran_at": ran_at,
            "scale": scale,
            "machine": machine(),
            "figures": [f.as_json() for f in figures if f.suite == suite],
        }
    return {"suites": {name: suites[name] for name in sorted(suites, key=_suite_order)}}


def _suite_order(name: str) -> tuple[int, str]:
    return (SUITES.index(name) if name in SUITES else len(SUITES), name)


def read_results(path: Path = RESULTS) -> dict[str, Any]:
    try:
        loaded = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def figures_of(results: dict[str, Any]) -> list[Figure]:
    """The figures a results file holds, suite by suite."""
    fields = {f.name for f in dataclasses.fields(Figure)}
    return [
        Figure(**{k: v for k, v in figure.items() if k in fields})
        for suite in results.get("suites", {}).values()
        for figure in suite["figures"]
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("suites", nargs="*", default=list(SUITES), help=f"any of {', '.join(SUITES)}")
    parser.add_argument(
        "--table", action="store_true", help=f"only print the table of what {RESULTS.name} holds (for the README)"
    )
    args = parser.parse_args(argv)
    if args.table:
        print(table(figures_of(read_results())))
        return 0
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    with Stack(fast=False) as stack:
        migrate_all(stack)
        ctx = BenchContext(stack=stack)
        figures = asyncio.run(run_suites(args.suites, ctx))
    report = merge_results(figures, read_results(), scale=ctx.scale)
    RESULTS.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(table(figures))
    print(f"\nmachine: {machine()}\nwritten: {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
