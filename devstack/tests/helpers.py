"""Small helpers for the devstack tests."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping

import asyncpg  # type: ignore[import-untyped,unused-ignore]

from siyu_devstack.provision import libpq_dsn


async def connect(dsn: str) -> asyncpg.Connection:
    """asyncpg connection from a libpq or SQLAlchemy (``postgresql+asyncpg://``) URL."""
    return await asyncpg.connect(libpq_dsn(dsn))


def stack_up(args: list[str], env: Mapping[str, str]) -> tuple[subprocess.Popen[str], list[str]]:
    """``siyu-stack <args>`` (an ``up``) in a process of its own, and the lines it printed until it was ready."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "siyu_devstack.cli", *args],
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line.rstrip("\n"))
        if line.startswith("# reuse from tests"):
            break
    return proc, lines
