"""The key commands as an operator runs them: installed entry points, in processes of their own, on the real stack."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from siyu_devstack.stack import Stack
from siyu_shared.auth.keys import Principal, authenticate
from siyu_shared.db.engine import create_engine, session_factory
from siyu_shared.services import SERVICES

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
_STACK_VARIABLES = ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", "KAFKA_TOPIC_PREFIX")


def _bare_environment() -> dict[str, str]:
    """The caller's environment without anything that would point a service at a stack."""
    return {
        k: v
        for k, v in os.environ.items()
        if k not in _STACK_VARIABLES and not any(k.startswith(f"{s.upper()}_") for s in SERVICES)
    }


async def _run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(subprocess.run, command, env=env, capture_output=True, text=True, timeout=120)


async def _principal(stack: Stack, service: str, key: str) -> Principal | None:
    engine = create_engine(stack.admin_dsn, schema=service, pool_size=1)
    try:
        async with session_factory(engine)() as session:
            return await authenticate(session, key)
    finally:
        await engine.dispose()


async def test_siyu_keys_issues_one_key_valid_on_every_service_and_revokes_it(migrated: Stack) -> None:
    tenant = f"keys{secrets.token_hex(3)}"
    env = {**_bare_environment(), "DATABASE_URL": migrated.admin_dsn}
    made = await _run([str(BIN / "siyu-keys"), "create", "--tenant", tenant, "--scopes", "write", "--name", "ops"], env)
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    for service in SERVICES:
        principal = await _principal(migrated, service, key)
        assert principal is not None and principal.tenant == tenant and principal.allows("write")
        assert not principal.allows("admin")

    listed = await _run([str(BIN / "siyu-keys"), "list", "--tenant", tenant], env)
    key_id = key.split("_")[1]
    assert listed.returncode == 0 and key_id in listed.stdout and ",".join(SERVICES) in listed.stdout
    assert key.split("_", 2)[2] not in listed.stdout  # never the secret

    gone = await _run([str(BIN / "siyu-keys"), "revoke", key_id], env)
    assert gone.returncode == 0, gone.stderr
    assert [await _principal(migrated, s, key) for s in SERVICES] == [None] * len(SERVICES)
    again = await _run([str(BIN / "siyu-keys"), "revoke", key_id], env)
    assert again.returncode == 1 and "no active key" in again.stderr


async def test_siyu_keys_refuses_a_bad_tenant_and_a_missing_database_with_a_reason() -> None:
    bare = _bare_environment()
    bad = await _run([str(BIN / "siyu-keys"), "create", "--tenant", "Acme.CN"], {**bare, "DATABASE_URL": "x"})
    assert bad.returncode == 2 and "tenant id must match" in bad.stderr
    nowhere = await _run([str(BIN / "siyu-keys"), "create", "--tenant", "acme"], bare)
    assert nowhere.returncode == 2 and "DATABASE_URL" in nowhere.stderr and "Traceback" not in nowhere.stderr


@pytest.mark.parametrize("service", SERVICES)
async def test_a_service_keys_command_names_the_settings_it_misses(service: str) -> None:
    done = await _run([str(BIN / f"siyu-{service}"), "keys", "create", "--tenant", "acme"], _bare_environment())
    assert done.returncode == 2
    assert f"{service.upper()}_DATABASE_URL or DATABASE_URL is not set" in done.stderr
    assert "Traceback" not in done.stderr and "validation error" not in done.stderr


async def test_a_service_keys_command_issues_a_key_with_the_stack_environment(
    migrated: Stack, stack_env: dict[str, str]
) -> None:
    env = {**_bare_environment(), **stack_env}
    tenant = f"keys{secrets.token_hex(3)}"
    made = await _run([str(BIN / "siyu-journey"), "keys", "create", "--tenant", tenant, "--scopes", "read"], env)
    assert made.returncode == 0, made.stderr
    principal = await _principal(migrated, "journey", made.stdout.strip())
    assert principal is not None and principal.tenant == tenant
    assert await _principal(migrated, "ingest", made.stdout.strip()) is None  # one service's key, by design
