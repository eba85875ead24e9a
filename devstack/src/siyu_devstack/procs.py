"""Waiting for and killing server processes.

A zombie counts as gone: our servers are daemonised (pg_ctl's postmaster) or outlive a killed owner, so they are
reaped by PID 1, which in containers is often not a real init and reaps late (seconds), while the process has long
finished with its ports and files.
"""

from __future__ import annotations

import contextlib
import signal
import time

import psutil  # type: ignore[import-untyped,unused-ignore]


def is_gone(proc: psutil.Process) -> bool:
    try:
        return bool(proc.status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def wait_gone(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait until every process has exited (or is a zombie); returns those still running after ``timeout``."""
    deadline = time.monotonic() + timeout
    alive = [p for p in procs if not is_gone(p)]
    delay = 0.005
    while alive and time.monotonic() < deadline:
        time.sleep(delay)
        delay = min(delay * 2, 0.1)
        alive = [p for p in alive if not is_gone(p)]
    return alive


def kill_tree(pid: int, timeout: float = 10.0) -> None:
    """SIGKILL a process and its children, and wait for them."""
    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.send_signal(signal.SIGKILL)
    wait_gone(procs, timeout)
