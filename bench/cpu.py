"""CPU time read from the operating system, for the notes beside each figure: on a shared two-core machine,
wall-clock rates move a lot with the other load; CPU time per delivery, event or order much less."""

from __future__ import annotations

import psutil  # type: ignore[import-untyped,unused-ignore]


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) the process has used."""
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def server_cpu_s(pid: int | None) -> float | None:
    """CPU seconds used so far by a server and its processes: its own, its live children's and its exited (reaped)
    children's, e.g. a Postgres postmaster with its backends, WAL writer and checkpointer. None without a pid
    (an external server: not ours to measure)."""
    if pid is None:
        return None
    server = psutil.Process(pid)
    times = server.cpu_times()
    total = float(times.user + times.system + times.children_user + times.children_system)
    for child in server.children():
        try:
            times = child.cpu_times()
        except psutil.Error:
            continue  # exited meanwhile: counted with the server's children from now on
        total += times.user + times.system
    return total
