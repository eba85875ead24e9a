"""Every operation of every service, fuzzed from its own OpenAPI with a fresh tenant's admin key (issue 15).

Each service runs in-process (``running_service``: lifespan started, worker loops included) on the session's real
Postgres and Kafka; the fuzzer (``harness.py``) sends positive, negative and hostile requests to every operation and
fails the test with every distinct failure it saw: a 5xx (with where the exception was raised), a status the
document does not list, a body or content type that is not what it says. Ingest's webhooks also get requests
signed with the tenant's channel secrets (``webhooks.py``), so the parsers behind the signature are reached.

Bounded for ``make test`` (a few examples per operation and mode, a few seconds per operation, derandomized);
``make fuzz`` runs the same with more examples, a longer budget and a random seed.
"""

from __future__ import annotations

import asyncio
from uuid import uuid4

import httpx
import pytest
from fastapi import FastAPI

from siyu_devstack.stack import Stack
from siyu_devstack.testing import running_service
from siyu_ingest import samples
from siyu_shared.auth.keys import issue_key
from siyu_shared.db.engine import unit_of_work
from siyu_shared.services import SERVICES

from . import webhooks
from .harness import Profile, Report, Target, fuzz

# schemathesis' negative strategies use the `random` module (seeded by Hypothesis, so still deterministic).
pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning"),
]

BASE_URL = "http://fuzz.test"
PROFILE = Profile.from_env()


async def admin_key(app: FastAPI, tenant: str) -> str:
    async with unit_of_work(app.state.runtime.sessions) as session:
        issued = await issue_key(session, tenant=tenant, scopes=("admin",), name="fuzz admin")
    return issued.plaintext


async def configure_channels(http: httpx.AsyncClient, tenant: str, key: str) -> None:
    """Every channel configured for ``tenant`` with the credentials ``samples`` signs with."""
    for channel, creds in samples.CREDENTIALS.items():
        response = await http.put(
            f"/v1/tenants/{tenant}/channels/{channel}",
            json={
                "secrets": {k: v for k, v in creds.items() if isinstance(v, str)},
                "options": {k: v for k, v in creds.items() if not isinstance(v, str)},
            },
            headers={"Authorization": f"Bearer {key}"},
        )
        assert response.status_code == 200, response.text


async def fuzz_service(service: str, migrated: Stack, topic_prefix: str) -> Report:
    tenant = f"f{uuid4().hex[:8]}"
    async with running_service(service, migrated, topic_prefix=topic_prefix) as (app, _):
        key = await admin_key(app, tenant)
        # raise_app_exceptions: an unhandled exception reaches the fuzzer with its traceback (the server's 500).
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL, timeout=60) as http:
            extra = {}
            path_parameters = {"tenant": tenant}
            if service == "ingest":
                # The webhooks' tenant is another one, whose channels the admin routes under fuzz never touch.
                hooks = f"w{uuid4().hex[:8]}"
                await configure_channels(http, hooks, await admin_key(app, hooks))
                extra = {
                    "POST /v1/webhooks/{tenant}/{channel}": webhooks.signed_posts(BASE_URL, hooks),
                    "GET /v1/webhooks/{tenant}/{channel}": webhooks.verifications(BASE_URL, hooks),
                }
            target = Target(
                name=service,
                openapi=app.openapi(),
                client=http,
                loop=asyncio.get_running_loop(),
                headers={"Authorization": f"Bearer {key}"},
                path_parameters=path_parameters,
                extra_strategies=extra,
                extra_weight=6,  # the webhooks' parsers are the widest surface: they get more than the rest
            )
            return await asyncio.to_thread(fuzz, target, PROFILE)


@pytest.mark.parametrize("service", SERVICES)
async def test_no_operation_answers_5xx_or_other_than_documented(
    service: str, migrated: Stack, topic_prefix: str
) -> None:
    report = await fuzz_service(service, migrated, topic_prefix)
    print(f"{service}: what the fuzzer sent and got\n{report.coverage()}")  # shown with -rA or on failure
    operations = len(report.sent)
    assert operations >= 10, report.sent  # the document was read: every service has more operations than that
    if service == "ingest":  # the signed requests pass the signature check, so the parsers behind it were reached
        for webhook in ("POST /v1/webhooks/{tenant}/{channel}", "GET /v1/webhooks/{tenant}/{channel}"):
            assert report.statuses[webhook].get(200), (webhook, report.statuses[webhook])
    assert not report.findings, (
        f"{service}: {len(report.findings)} failures in {operations} operations ({PROFILE})\n{report.render()}"
    )
