"""The supervisor of ``siyu-stack up`` / ``run`` rides out a dead Postgres or Kafka: it waits for the server, starts
it again itself if it stays down, and stops nothing."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time

import asyncpg
import pytest

from siyu_devstack.cli import ServerWatch
from siyu_devstack.procs import kill_tree
from siyu_devstack.stack import Stack
from siyu_devstack.testing import eventually
from siyu_shared.settings import to_libpq_url

from .helpers import stack_up


class FakeServer:
    def __init__(self, *, fails: int = 0) -> None:
        self.up = True
        self.starts = 0
        self.fails = fails

    @property
    def running(self) -> bool:
        return self.up

    def state(self) -> tuple[int, bool]:
        return self.starts, self.running

    def start(self) -> str:
        self.starts += 1
        if self.starts <= self.fails:
            raise RuntimeError("port taken")
        self.up = True
        return "addr"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_server_back_within_the_grace_is_left_alone() -> None:
    server, clock = FakeServer(), Clock()
    watch = ServerWatch("Kafka", server, grace_s=3.0, clock=clock)
    watch.poll()
    server.up = False  # someone is restarting it
    for _ in range(2):
        watch.poll()
        clock.now += 1.0
    server.up = True
    watch.poll()
    clock.now += 10.0
    watch.poll()
    assert server.starts == 0


def test_a_server_still_down_after_the_grace_is_started_again_with_backoff() -> None:
    server, clock = FakeServer(fails=1), Clock()
    watch = ServerWatch("Postgres", server, grace_s=3.0, clock=clock)
    server.up = False
    watch.poll()
    clock.now += 2.9
    watch.poll()
    assert server.starts == 0
    clock.now += 0.2
    watch.poll()  # fails: tried again after the backoff, not at every poll
    clock.now += 1.0
    watch.poll()
    assert server.state() == (1, False)
    clock.now += 2.5
    watch.poll()
    assert server.state() == (2, True)
    watch.poll()
    assert server.starts == 2


@pytest.mark.integration
async def test_cli_up_starts_a_killed_postgres_again_and_keeps_running(stack: Stack) -> None:
    """``siyu-stack up`` with a Postgres of its own: the postmaster and its backends SIGKILLed, the supervisor
    starts it again on the same port (the services' URLs still work) and stays up; Ctrl-C stops it cleanly.
    Durable, as ``make run`` runs it (without ``--fast`` a kill loses no commit, the provisioned roles included)."""
    stack_id = f"sup-{os.getpid()}"
    proc, exports = await asyncio.to_thread(_stack_up, stack, stack_id)
    try:
        url = to_libpq_url(exports["INGEST_DATABASE_URL"].strip("'"))
        state_file = stack.dir.parent / stack_id / "stack.json"
        killed = json.loads(state_file.read_text())["postgres"]["pid"]
        kill_tree(killed)

        async def answers_again() -> bool:
            pid = json.loads(state_file.read_text())["postgres"]["pid"]
            if pid in (None, killed):
                return False
            conn = await asyncpg.connect(url, timeout=3)
            try:
                return bool(await conn.fetchval("SELECT 1") == 1)
            finally:
                await conn.close()

        started = time.monotonic()
        await eventually(answers_again, timeout_s=60, interval_s=0.5)
        print(f"Postgres answered again {time.monotonic() - started:.1f}s after the kill")
        assert proc.poll() is None, "the supervisor stopped"
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Postgres is down" in err and "Postgres is back" in err


def _stack_up(stack: Stack, stack_id: str) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """``siyu-stack up`` with a Postgres of its own and the session's Kafka, once it printed its environment."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"} | {
        "KAFKA_BOOTSTRAP_SERVERS": stack.bootstrap_servers
    }
    proc, lines = stack_up(["up", "--topic-prefix", "sup.", "--id", stack_id], env)
    return proc, dict(line.removeprefix("export ").split("=", 1) for line in lines if line.startswith("export "))
