"""Free TCP ports on the loopback interface.

Nothing in the local stack uses a fixed port: two stacks (say ``make run`` and a test session, or two test sessions)
must be able to run side by side, and a developer's own Postgres on 5432 or Kafka on 9092 must not be disturbed.
The kernel hands out a free port when we bind to port 0; we release it and give the number to the server we start.
That leaves a short window in which another process could take the port, so the callers retry with fresh ports when a
server fails to bind on its first start. Ports handed out by this process are remembered so that two stacks started
concurrently from one process never receive the same number.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

LOOPBACK = "127.0.0.1"

_lock = threading.Lock()
_handed_out: set[int] = set()


def free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """``count`` distinct ports that are free on ``host`` right now.

    All sockets are held open until every port is chosen, so the kernel cannot return the same port twice.
    """
    if count < 1:
        raise ValueError("count must be at least 1")
    sockets: list[socket.socket] = []
    ports: list[int] = []
    try:
        with _lock:
            while len(ports) < count:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sockets.append(sock)
                sock.bind((host, 0))
                port = int(sock.getsockname()[1])
                if port in _handed_out:
                    continue
                _handed_out.add(port)
                ports.append(port)
    finally:
        for sock in sockets:
            sock.close()
    return ports


def free_port(host: str = LOOPBACK) -> int:
    """One port that is free on ``host`` right now."""
    return free_ports(1, host)[0]


def port_is_open(port: int, host: str = LOOPBACK, timeout: float = 0.2) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_port(
    port: int,
    *,
    host: str = LOOPBACK,
    timeout: float = 30.0,
    check: Callable[[], None] | None = None,
    interval: float = 0.05,
) -> None:
    """Block until ``host:port`` accepts connections.

    ``check`` is called between attempts and should raise when waiting is pointless (the server process died), so a
    crashed server is reported at once instead of after the whole timeout.
    """
    deadline = time.monotonic() + timeout
    while not port_is_open(port, host):
        if check is not None:
            check()
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing listens on {host}:{port} after {timeout:.0f}s")
        time.sleep(interval)
