"""pytest fixtures over one local stack per test session.

Enable with ``pytest_plugins = ["siyu_devstack.pytest_plugin"]`` in a top-level conftest. The stack is started on
first use (a session that needs no database pays nothing) and stopped when the session ends; Postgres runs with
durability off. Set ``DATABASE_URL`` / ``KAFKA_BOOTSTRAP_SERVERS`` to run the tests against existing servers instead
(for instance the ones a ``siyu-stack up`` in another terminal prints, which saves the start-up on every run); with a
shared Kafka and no ``KAFKA_TOPIC_PREFIX`` the session gets a topic prefix of its own.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest

from siyu_devstack.stack import Stack


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    """A started :class:`~siyu_devstack.stack.Stack` shared by the whole session."""
    prefix = os.environ.get("KAFKA_TOPIC_PREFIX")
    if prefix is None and os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        prefix = f"test-{secrets.token_hex(3)}."
    local = Stack(fast=True, topic_prefix=prefix)
    local.start()
    try:
        yield local
    finally:
        local.stop()


@pytest.fixture(scope="session")
def stack_env(stack: Stack) -> dict[str, str]:
    """The environment a service process needs to run against the session's stack (see :meth:`Stack.env`)."""
    return stack.env()


@pytest.fixture
async def topic_prefix(stack: Stack) -> str:
    """A prefix of this test's own: every topic (and DLQ) created under it, so tests never read each other's events.

    Pass it as ``kafka_topic_prefix`` to a service (consumer groups carry it too).
    """
    from siyu_devstack.topics import create_topics
    from siyu_shared.events.topics import TopicNames

    prefix = f"{stack.topic_prefix}t{secrets.token_hex(4)}."
    await create_topics(stack.bootstrap_servers, TopicNames(prefix).all(), partitions=stack.partitions)
    return prefix


@pytest.fixture(scope="session")
async def migrated(stack: Stack) -> Stack:
    """The stack with every service's migrations applied (once per session)."""
    import asyncio

    from siyu_devstack.testing import migrate_all

    await asyncio.to_thread(migrate_all, stack)
    return stack
