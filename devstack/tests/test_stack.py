"""One session stack: provisioning confines every service to its schema; topics, state file and env are right."""

from __future__ import annotations

import json
import os
from urllib.parse import urlsplit

import asyncpg  # type: ignore[import-untyped,unused-ignore]
import pytest

from siyu_devstack.provision import provision
from siyu_devstack.stack import Stack, list_stacks, stack_secret
from siyu_devstack.topics import TopicError, create_topics, describe_partitions
from siyu_shared.events.topics import DEFAULT_PARTITIONS
from siyu_shared.services import SERVICES, env_prefix_of, role_of, schema_of

from .helpers import connect

pytestmark = pytest.mark.integration


def test_env_names_every_service_and_kafka(stack: Stack) -> None:
    env = stack.env()
    assert set(env) == {f"{env_prefix_of(s)}DATABASE_URL" for s in SERVICES} | {
        "KAFKA_BOOTSTRAP_SERVERS",
        "KAFKA_TOPIC_PREFIX",
    }
    for service in SERVICES:
        url = urlsplit(env[f"{env_prefix_of(service)}DATABASE_URL"])
        assert url.scheme == "postgresql+asyncpg"
        assert url.username == role_of(service)
        assert url.password
        assert url.hostname == "127.0.0.1"
        assert url.path == "/siyu"
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == stack.bootstrap_servers
    assert stack.bootstrap_servers.startswith("127.0.0.1:")


async def test_each_role_works_in_its_own_schema_and_nowhere_else(stack: Stack) -> None:
    conns = {service: await connect(stack.service_dsn(service)) for service in SERVICES}
    try:
        for service, conn in conns.items():
            assert await conn.fetchval("SELECT current_schema()") == schema_of(service)
            await conn.execute("CREATE TABLE IF NOT EXISTS probe (id int PRIMARY KEY, owner text)")
            await conn.execute("INSERT INTO probe VALUES (1, $1) ON CONFLICT (id) DO NOTHING", service)
            assert await conn.fetchval(f"SELECT owner FROM {schema_of(service)}.probe") == service

        for service, conn in conns.items():
            for other in SERVICES:
                if other == service:
                    continue
                with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied for schema"):
                    await conn.fetch(f"SELECT * FROM {schema_of(other)}.probe")
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.execute(f"CREATE TABLE {schema_of(other)}.intruder (id int)")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute("CREATE TABLE public.intruder (id int)")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute("CREATE TEMP TABLE scratch (id int)")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute("CREATE SCHEMA intruder")
    finally:
        for conn in conns.values():
            await conn.close()


async def test_a_role_cannot_log_in_without_its_password(stack: Stack) -> None:
    dsn = urlsplit(stack.service_dsn("ingest"))
    wrong = f"postgresql://{dsn.username}:wrong@{dsn.hostname}:{dsn.port}/siyu"
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(wrong)


async def test_admin_dsn_reaches_the_siyu_database_as_superuser(stack: Stack) -> None:
    conn = await connect(stack.admin_dsn)
    try:
        assert await conn.fetchval("SELECT current_database()") == "siyu"
        assert await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        assert await conn.fetchval("SHOW max_connections") == "200"
        assert await conn.fetchval("SHOW fsync") == "off"  # the session stack is a fast one
        owners = dict(
            await conn.fetch(
                "SELECT nspname, pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = ANY($1)", list(SERVICES)
            )
        )
    finally:
        await conn.close()
    assert owners == {schema_of(s): role_of(s) for s in SERVICES}


async def test_provisioning_again_changes_nothing(stack: Stack) -> None:
    again = await provision(stack.server_admin_dsn, stack.database, secret=stack_secret(stack.state_dir))
    assert again == stack.service_dsns
    conn = await connect(stack.service_dsn("journey"))
    try:
        assert await conn.fetchval("SELECT 1") == 1
    finally:
        await conn.close()


async def test_every_topic_exists_with_six_partitions(stack: Stack) -> None:
    names = stack.topics.all()
    assert len(names) == 14 and sum(n.endswith(".dlq") for n in names) == 7
    assert await describe_partitions(stack.bootstrap_servers, names) == dict.fromkeys(names, DEFAULT_PARTITIONS)
    assert await create_topics(stack.bootstrap_servers, names, DEFAULT_PARTITIONS) == []  # idempotent


async def test_an_existing_topic_with_another_partition_count_is_an_error(stack: Stack) -> None:
    with pytest.raises(TopicError, match="partition count"):
        await create_topics(stack.bootstrap_servers, stack.topics.all()[:1], partitions=3)


def test_stack_json_records_owner_servers_and_urls(stack: Stack) -> None:
    state = json.loads((stack.dir / "stack.json").read_text())
    assert state["status"] == "running"
    assert state["owner_pid"] == os.getpid()
    assert stack.postgres is not None and stack.kafka is not None
    assert state["postgres"]["pid"] == stack.postgres.pid
    assert state["postgres"]["port"] == stack.postgres.port
    assert state["kafka"]["pid"] == stack.kafka.pid
    assert state["kafka"]["port"] == stack.kafka.port
    assert state["bootstrap_servers"] == stack.bootstrap_servers
    assert state["service_dsns"] == stack.service_dsns
    assert (stack.log_dir / "postgres.log").exists()
    assert (stack.log_dir / "kafka.log").stat().st_size > 0
    mine = [s for s in list_stacks(stack.state_dir) if s.id == stack.id]
    assert len(mine) == 1 and mine[0].owner_alive and not mine[0].stale
