"""Each service skeleton against the real stack: migrations in its own schema, health, tenant-scoped keys."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from alembic.script import ScriptDirectory
from fastapi import FastAPI
from sqlalchemy import text

from siyu_devstack.stack import Stack
from siyu_devstack.testing import eventually, running_service, service_spec
from siyu_shared.auth.keys import issue_key
from siyu_shared.db.engine import create_engine, session_factory, unit_of_work
from siyu_shared.db.migrate import alembic_config
from siyu_shared.services import SERVICES

pytestmark = pytest.mark.integration


@pytest.fixture
async def ingest_app(migrated: Stack, topic_prefix: str) -> AsyncIterator[FastAPI]:
    async with running_service("ingest", migrated, topic_prefix=topic_prefix) as (app, _):
        yield app


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


@pytest.mark.parametrize("service", SERVICES)
async def test_migrations_land_in_the_service_schema_with_the_version_table(migrated: Stack, service: str) -> None:
    engine = create_engine(migrated.service_dsn(service), schema=service, pool_size=1)
    try:
        async with engine.connect() as conn:
            tables = set(
                (await conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = :s"), {"s": service}))
                .scalars()
                .all()
            )
            version = await conn.scalar(text("SELECT version_num FROM alembic_version"))
    finally:
        await engine.dispose()
    assert {"outbox", "inbox", "api_keys", "alembic_version"} <= tables
    spec = service_spec(service, migrated)
    head = ScriptDirectory.from_config(
        alembic_config(migrations=spec.migrations, url="", schema=service)
    ).get_current_head()
    assert version == head


async def test_health_ready_and_metrics(ingest_app: FastAPI) -> None:
    async with client(ingest_app) as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        ready = await http.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"database": "ok", "kafka": "ok"}
        metrics = (await http.get("/metrics")).text
    assert "siyu_http_requests_total" in metrics
    assert 'route="/readyz"' in metrics

    async def backlog_reported() -> bool:
        async with client(ingest_app) as http:
            return 'siyu_outbox_backlog{service="ingest"}' in (await http.get("/metrics")).text

    await eventually(backlog_reported)  # the worker's relay reports the outbox backlog


async def test_a_key_of_tenant_a_never_reaches_tenant_b(ingest_app: FastAPI) -> None:
    sessions = session_factory(ingest_app.state.runtime.engine)
    async with unit_of_work(sessions) as session:
        a_admin = await issue_key(session, tenant="brand-a", scopes=("admin",), name="a admin")
        a_reader = await issue_key(session, tenant="brand-a", scopes=("read",), name="a reader")
        b_admin = await issue_key(session, tenant="brand-b", scopes=("admin",), name="b admin")

    def auth(key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    async with client(ingest_app) as http:
        assert (await http.get("/v1/tenants/brand-a/api-keys")).status_code == 401
        assert (await http.get("/v1/tenants/brand-a/api-keys", headers=auth("siyu_nonsense"))).status_code == 401
        own = await http.get("/v1/tenants/brand-a/api-keys", headers=auth(a_admin.plaintext))
        assert own.status_code == 200
        assert {k["tenant"] for k in own.json()} == {"brand-a"}
        # Tenant A's key on tenant B's data: refused.
        other = await http.get("/v1/tenants/brand-b/api-keys", headers=auth(a_admin.plaintext))
        assert other.status_code == 403
        # Revoking B's key through A's own path: reported absent, and B's key keeps working.
        gone = await http.delete(f"/v1/tenants/brand-a/api-keys/{b_admin.key_id}", headers=auth(a_admin.plaintext))
        assert gone.status_code == 404
        assert (await http.get("/v1/tenants/brand-b/api-keys", headers=auth(b_admin.plaintext))).status_code == 200
        # Scopes: a read key cannot administer.
        assert (await http.get("/v1/tenants/brand-a/api-keys", headers=auth(a_reader.plaintext))).status_code == 403
        # Issue through the API, use, revoke, refused afterwards.
        made = await http.post(
            "/v1/tenants/brand-a/api-keys", json={"name": "bi", "scopes": ["admin"]}, headers=auth(a_admin.plaintext)
        )
        assert made.status_code == 201
        new_key = made.json()["api_key"]
        assert (await http.get("/v1/tenants/brand-a/api-keys", headers=auth(new_key))).status_code == 200
        revoked = await http.delete(
            f"/v1/tenants/brand-a/api-keys/{made.json()['key_id']}", headers=auth(a_admin.plaintext)
        )
        assert revoked.status_code == 204
        assert (await http.get("/v1/tenants/brand-a/api-keys", headers=auth(new_key))).status_code == 401
        bad = await http.post(
            "/v1/tenants/brand-a/api-keys", json={"scopes": ["root"]}, headers=auth(a_admin.plaintext)
        )
        assert bad.status_code == 422
