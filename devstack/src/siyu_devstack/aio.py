"""Run a coroutine to completion from synchronous code.

The stack's lifecycle is synchronous (a context manager, a session fixture, a CLI), but the Kafka and Postgres clients
we probe with are asyncio libraries. ``asyncio.run`` refuses to run inside a thread that already has a running loop,
which is exactly where fault tests call ``stack.kafka.restart()`` from (an ``async def`` test), so in that case the
coroutine gets a fresh loop on a short-lived worker thread. The caller's loop is blocked meanwhile; tests that must
keep their loop responsive can wrap the call in ``asyncio.to_thread``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def run_sync(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run the coroutine made by ``factory`` and return its result (exceptions propagate)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="siyu-devstack-aio") as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()
