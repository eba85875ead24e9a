"""The benchmark report: ratios, targets, merging partial runs, and the README's table being what
``bench/results.json`` holds (``python -m bench --table`` prints it after a full ``make bench``)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # `bench` is run as `python -m bench` from the root, not installed
from bench.__main__ import SUITES, figures_of, merge_results, read_results, table  # noqa: E402
from bench.harness import Figure  # noqa: E402

README_TABLE = re.compile(r"<!-- bench-table[^>]*-->\n\n(.*?)\n\n<!-- /bench-table -->", re.S)


def test_ratio_and_target_read_the_right_way_for_rates_and_latencies() -> None:
    rate = Figure("s", "rate", 500.0, "events/s", ceiling=1000.0, target=400.0)
    latency = Figure("s", "p99", 200.0, "ms", higher_is_better=False, ceiling=50.0, target=100.0)
    assert (rate.ratio, rate.meets_target) == (0.5, True)
    assert (latency.ratio, latency.meets_target) == (0.25, False)
    assert Figure("s", "no ceiling", 1.0, "s").ratio is None
    lines = table([rate, latency]).splitlines()
    assert "≥ 400 ✓" in lines[2] and "≤ 100 ✗" in lines[3] and "0.25" in lines[3]


def test_a_partial_run_replaces_its_suites_and_keeps_the_others() -> None:
    old = merge_results([Figure("journey", "timers", 15.0, "s"), Figure("ingest", "rate", 1.0, "x")], {}, scale=1.0)
    new = merge_results([Figure("journey", "timers", 12.0, "s")], old, scale=0.1)
    assert list(new["suites"]) == ["ingest", "journey"]
    assert new["suites"]["ingest"] == old["suites"]["ingest"]
    assert new["suites"]["journey"]["scale"] == 0.1
    assert [f.value for f in figures_of(new)] == [1.0, 12.0]


def test_the_readme_shows_the_committed_full_run() -> None:
    results = read_results(ROOT / "bench" / "results.json")
    suites = results.get("suites", {})
    assert list(suites) == list(SUITES), "bench/results.json should hold one full `make bench`"
    partial = {name: s.get("scale") for name, s in suites.items() if s.get("scale") != 1.0}
    assert not partial, f"suites run at a BENCH_SCALE other than 1: {partial}"
    found = README_TABLE.search((ROOT / "README.md").read_text())
    if found is None:
        pytest.fail("README.md has no <!-- bench-table --> … <!-- /bench-table --> block")
    assert found.group(1) == table(figures_of(results)), "paste `python -m bench --table` into the README"
