"""Stacks left behind by killed runs are recognised by their dead owner and cleaned up, and nothing else is."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped,unused-ignore]
import pytest

from siyu_devstack.postgres import EmbeddedPostgres
from siyu_devstack.stack import StackInfo, clean_stale_stacks, list_stacks, stacks_root, state_root

pytestmark = pytest.mark.integration


@pytest.fixture
def state() -> Iterator[Path]:
    """A state root of its own, so no other session's start-up cleans our fake stacks before we do."""
    root = state_root() / "test-stale" / f"{os.getpid()}-{time.monotonic_ns()}"
    root.mkdir(parents=True)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)
        with contextlib.suppress(OSError):
            root.parent.rmdir()


def _dead_process() -> tuple[int, float]:
    """Pid and start time of a process that has exited: an owner killed with its stack still running."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.2)"])
    started = psutil.Process(proc.pid).create_time()
    proc.wait()
    return proc.pid, started


def _write_state(directory: Path, **state: Any) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "stack.json").write_text(json.dumps({"id": directory.name, "status": "running", **state}))


def test_a_stack_whose_owner_died_is_stopped_and_removed(state: Path, caplog: pytest.LogCaptureFixture) -> None:
    directory = stacks_root(state) / "stale"
    pg = EmbeddedPostgres(directory / "postgres" / "data", fast=True, log_file=directory / "logs" / "postgres.log")
    pg.start()
    pid = pg.pid
    assert pid is not None
    try:
        owner, started = _dead_process()
        _write_state(directory, owner_pid=owner, owner_started=started, postgres={"pid": pid, "port": pg.port})

        with caplog.at_level("WARNING", logger="siyu_devstack.stack"):
            removed = clean_stale_stacks(state)

        assert directory.name in removed
        assert not directory.exists()
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        assert f"cleaning stale stack {directory.name}" in caplog.text
        assert str(pid) in caplog.text
    finally:
        if pg.running:
            pg.stop()


def test_a_live_owners_stack_and_unrelated_processes_are_left_alone(state: Path) -> None:
    live, dead = stacks_root(state) / "live", stacks_root(state) / "dead"
    bystander = subprocess.Popen(["sleep", "30"])
    try:
        me = psutil.Process()
        _write_state(live, owner_pid=me.pid, owner_started=me.create_time())
        owner, started = _dead_process()
        # A recorded pid that now belongs to an unrelated process (pid reuse): it must not be killed.
        _write_state(dead, owner_pid=owner, owner_started=started, kafka={"pid": bystander.pid})

        removed = clean_stale_stacks(state)

        assert removed == ["dead"]
        assert live.exists() and not dead.exists()
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


def test_an_owner_killed_but_not_yet_reaped_counts_as_dead(state: Path) -> None:
    zombie = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        started = psutil.Process(zombie.pid).create_time()
        zombie.kill()
        while psutil.Process(zombie.pid).status() != psutil.STATUS_ZOMBIE:
            time.sleep(0.01)
        info = StackInfo("z", stacks_root(state) / "z", {"owner_pid": zombie.pid, "owner_started": started})
        assert not info.owner_alive and info.stale
    finally:
        zombie.wait()


def test_a_directory_without_state_is_removed_only_once_it_is_old(state: Path) -> None:
    directory = stacks_root(state) / "orphan"
    directory.mkdir(parents=True)
    assert clean_stale_stacks(state) == []  # may be a stack being created right now
    old = time.time() - 3600
    os.utime(directory, (old, old))
    assert clean_stale_stacks(state) == ["orphan"]
    assert not directory.exists()


def test_state_root_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SIYU_STATE_DIR", str(tmp_path))
    assert state_root() == tmp_path
    assert stacks_root() == tmp_path / "stacks"
    assert list_stacks() == []
