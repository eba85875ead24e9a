"""The webhook edge over real Postgres and Kafka: what cannot be stored is refused alone (a 400 with the reason)
while its neighbours in the same group commit are stored; any storage failure is a 503 with Retry-After; an
internal header selects nothing; handshakes and timestamps are checked as the platforms define them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlparse
from uuid import uuid4

import asyncpg
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from siyu_devstack.stack import Stack
from siyu_devstack.testing import eventually
from siyu_ingest import samples
from siyu_ingest.adapters.deliveries import GroupWriter, StorageUnavailable, Unstorable
from siyu_ingest.metrics import STALE_CALLBACKS
from siyu_shared.events.topics import Topic
from siyu_shared.settings import to_libpq_url

from .conftest import Ingest

pytestmark = pytest.mark.integration
FEW = settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))


def xhs(leads_id: str, *, phone: str = "13800138000", **extra: Any) -> samples.Signed:
    lead = samples.xiaohongshu_lead(leads_id=leads_id, phone=phone)
    lead["data"].update(extra)
    return samples.xiaohongshu(lead)


def with_query(signed: samples.Signed, query: dict[str, str]) -> samples.Signed:
    body, headers, original = signed
    return body, headers, {**original, **query}


POISONS: dict[str, Callable[[str], tuple[str, samples.Signed]]] = {
    "NUL in a query value": lambda key: ("xiaohongshu", with_query(xhs(key), {"utm": "a\x00b"})),
    "NUL in a query name": lambda key: ("xiaohongshu", with_query(xhs(key), {"u\x00tm": "1"})),
    "NUL in the dedupe id": lambda key: ("xiaohongshu", xhs(key + "\x00")),
    "NUL in a payload field": lambda key: ("xiaohongshu", xhs(key, keyword="面\x00霜")),
    "integer beyond int64": lambda key: ("xiaohongshu", xhs(key, campaign_id=2**63)),
    "NUL inside a JSON string": lambda key: (
        "oceanengine",
        samples.oceanengine(samples.oceanengine_clue(message_id=key, clue_id=key, telephone="13800\x000000")),
    ),
}


@FEW
@given(valid=st.integers(min_value=1, max_value=8), poisons=st.lists(st.sampled_from(sorted(POISONS)), min_size=1))
async def test_a_poisoned_delivery_is_refused_alone_and_its_neighbours_are_stored(
    ingest: Ingest, valid: int, poisons: list[str]
) -> None:
    run = uuid4().hex[:8]
    sends: list[tuple[str, str, samples.Signed]] = [
        (f"ok-{run}-{i}", "xiaohongshu", xhs(f"ok-{run}-{i}", phone=f"1390000{i:04d}")) for i in range(valid)
    ]
    sends += [(kind, *POISONS[kind](f"bad-{run}-{i}")) for i, kind in enumerate(poisons)]
    # All at once: they share group commits, where one bad row used to fail its whole batch with a 503.
    replies = await asyncio.gather(*(ingest.post(channel, signed) for _, channel, signed in sends))
    for (name, _, _), reply in zip(sends, replies, strict=True):
        if name.startswith("ok-"):
            assert reply.status_code == 200, (name, reply.text)
        else:
            assert reply.status_code == 400, (name, reply.status_code, reply.text)
            detail = reply.json()["detail"]
            assert "NUL character" in detail or "beyond 64 bits" in detail, (name, reply.text)
    stored = {d["dedupe_key"] for d in await all_deliveries(ingest) if run in d["dedupe_key"]}
    assert stored == {name for name, _, _ in sends if name.startswith("ok-")}


async def all_deliveries(ingest: Ingest) -> list[dict[str, Any]]:
    reply = await ingest.http.get(f"/v1/tenants/{ingest.tenant}/deliveries?limit=500", headers=ingest.auth)
    assert reply.status_code == 200, reply.text
    out: list[dict[str, Any]] = reply.json()
    return out


class RecordingPool:
    """The real pool, recording how many rows each statement carried."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.statements: list[list[str]] = []

    async def execute(self, query: str, *args: Any) -> str:
        self.statements.append(list(args[2]))  # the dedupe keys of the rows
        result: str = await self.pool.execute(query, *args)
        return result


@pytest.fixture
async def pool(migrated: Stack) -> AsyncIterator[asyncpg.Pool]:
    async with asyncpg.create_pool(
        to_libpq_url(migrated.service_dsn("ingest")), min_size=1, max_size=2, server_settings={"search_path": "ingest"}
    ) as opened:
        yield opened


Row = dict[str, Any]
DATA_FAULTS: dict[str, Callable[[Row], Row]] = {
    "NUL in the dedupe id": lambda row: {**row, "dedupe_key": row["dedupe_key"] + "\x00"},
    "NUL in the query": lambda row: {**row, "query": {"x": "\x00"}},
    "NUL in a header": lambda row: {**row, "headers": {"msg-id": "a\x00"}},
    "NUL in the tenant": lambda row: {**row, "tenant": "t\x00"},
    "dedupe id too long for its column": lambda row: {**row, "dedupe_key": row["dedupe_key"] + "x" * 300},
}


@FEW
@given(
    before=st.integers(min_value=0, max_value=5),
    after=st.integers(min_value=0, max_value=5),
    faults=st.lists(st.sampled_from(sorted(DATA_FAULTS)), min_size=1, max_size=3),
)
async def test_the_writer_isolates_a_row_postgres_refuses(
    pool: asyncpg.Pool, before: int, after: int, faults: list[str]
) -> None:
    """Past the edge's checks, the group writer itself still fails a refused row alone: the batch is written again
    one row per statement, the refused row gets Unstorable and every other row is stored."""
    run = uuid4().hex[:8]
    recording = RecordingPool(pool)
    writer = GroupWriter(recording, max_inflight=1)

    def row(key: str) -> Row:
        return {"tenant": "t-writer", "channel": "douyin", "dedupe_key": key, "body": b"{}", "headers": {}, "query": {}}

    rows = [row(f"{run}-a{i}") for i in range(before)]
    rows += [DATA_FAULTS[kind](row(f"{run}-bad{i}")) for i, kind in enumerate(faults)]
    rows += [row(f"{run}-z{i}") for i in range(after)]
    first = row(f"{run}-first")  # written alone: it holds the one commit in flight, so the rest queue into one batch
    results = await asyncio.gather(*(writer.store(**r) for r in [first, *rows]), return_exceptions=True)
    assert any(len(keys) == len(rows) for keys in recording.statements), recording.statements
    for r, result in zip([first, *rows], results, strict=True):
        if "-bad" in r["dedupe_key"]:
            assert isinstance(result, Unstorable), (r, result)
        else:
            assert result is None, (r, result)
    stored = await pool.fetch("SELECT dedupe_key FROM deliveries WHERE dedupe_key LIKE $1", f"{run}-%")
    assert {s["dedupe_key"] for s in stored} == {
        r["dedupe_key"] for r in [first, *rows] if "-bad" not in r["dedupe_key"]
    }


def _postgres_errors() -> list[type[asyncpg.PostgresError]]:
    return sorted(
        (
            c
            for c in vars(asyncpg.exceptions).values()
            if isinstance(c, type)
            and issubclass(c, asyncpg.PostgresError)
            and len(getattr(c, "sqlstate", None) or "") == 5
        ),
        key=lambda c: c.__name__,
    )


OUTAGES: list[Callable[[], Exception]] = [
    lambda: asyncpg.exceptions.InternalClientError("cannot switch to state 12; another operation is in progress"),
    lambda: asyncpg.InterfaceError("pool is closing"),
    lambda: asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    lambda: ConnectionResetError(104, "Connection reset by peer"),
    lambda: ConnectionRefusedError(111, "Connect call failed"),
    lambda: TimeoutError(),
    lambda: OSError("network is unreachable"),
    lambda: RuntimeError("an error of a class nobody listed"),
    *((lambda c=c: c("the server said so")) for c in _postgres_errors() if c.sqlstate[:2] not in ("22", "23")),
]


class FailingPool:
    def __init__(self, error: Callable[[], Exception]) -> None:
        self.error = error

    async def execute(self, query: str, *args: Any) -> str:
        raise self.error()


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(error=st.sampled_from(OUTAGES), batch=st.integers(min_value=1, max_value=4))
async def test_any_storage_failure_is_a_503_with_retry_after(
    ingest: Ingest, error: Callable[[], Exception], batch: int
) -> None:
    ctx = ingest.app.state.ingest
    real = ctx.webhook_writer
    ctx.webhook_writer = GroupWriter(FailingPool(error), max_inflight=1)
    try:
        run = uuid4().hex[:8]
        replies = await asyncio.gather(*(ingest.post("xiaohongshu", xhs(f"{run}-{i}")) for i in range(batch)))
    finally:
        ctx.webhook_writer = real
    for reply in replies:
        assert reply.status_code == 503, (error(), reply.status_code, reply.text)
        assert reply.headers["retry-after"].isdigit()
        assert reply.json() == {"detail": "storage unavailable, retry later"}


async def test_the_writer_raises_only_its_two_outcomes() -> None:
    for make in OUTAGES:
        writer = GroupWriter(FailingPool(make))
        with pytest.raises(StorageUnavailable):
            await writer.store(tenant="t", channel="c", dedupe_key="k", body=b"", headers={}, query={})


async def test_a_real_outage_is_a_503_and_the_retry_is_stored(ingest: Ingest, migrated: Stack) -> None:
    """The ingest role may not connect and its sessions are ended (what a restart looks like to the pools): the
    delivery is refused with 503 and Retry-After, never a 500, and the platform's retry is stored once it is back."""
    role = urlparse(migrated.service_dsn("ingest")).username
    signed = xhs(f"outage-{uuid4().hex[:8]}")
    admin = await asyncpg.connect(migrated.admin_dsn)
    try:
        await admin.execute(f'ALTER ROLE "{role}" CONNECTION LIMIT 0')
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", role)
        ingest.app.state.ingest.credentials.forget(ingest.tenant, "xiaohongshu")  # the read must reach Postgres too
        for _ in range(3):
            reply = await ingest.post("xiaohongshu", signed)
            assert reply.status_code == 503, reply.text
            assert reply.headers["retry-after"].isdigit()
    finally:
        await admin.execute(f'ALTER ROLE "{role}" CONNECTION LIMIT -1')
        await admin.close()

    async def retried() -> bool:
        return (await ingest.post("xiaohongshu", signed)).status_code == 200

    await eventually(retried, timeout_s=30)
    assert len([d for d in await all_deliveries(ingest) if d["dedupe_key"].startswith("outage-")]) == 1


async def test_the_internal_origin_header_cannot_create_an_internal_record(ingest: Ingest) -> None:
    body, headers, query = samples.wecom(samples.wecom_add_contact(external_userid="wmOrigin"))
    marked = {**headers, "X-Siyu-Origin": "wecom-api"}
    reply = await ingest.http.post(f"/v1/webhooks/{ingest.tenant}/wecom", content=body, headers=marked, params=query)
    assert (reply.status_code, reply.text) == (200, "success")
    # A contact detail's own shape, posted as a WeCom callback with the header: not XML, refused.
    detail = orjson.dumps({"errcode": 0, "external_contact": {"external_userid": "wmOrigin", "unionid": "u"}})
    forged = await ingest.http.post(f"/v1/webhooks/{ingest.tenant}/wecom", content=detail, headers=marked)
    assert forged.status_code in (400, 401)
    # The internal channel is served by no route.
    internal = await ingest.http.post(f"/v1/webhooks/{ingest.tenant}/wecom_contact_detail", content=detail)
    assert internal.status_code == 404
    await eventually(ingest.settled)
    stored = await all_deliveries(ingest)
    assert [d["channel"] for d in stored] == ["wecom"]
    assert not any(d["dedupe_key"].startswith("detail:") for d in stored)
    assert stored[0]["status"] == "processed"
    (added,) = await eventually(lambda: ingest.events(Topic.CONTACTS))
    assert added["type"] == "siyu.contact.added"  # read as the callback it is


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(challenge=st.text(max_size=24) | st.sampled_from(["²", "9" * 5000, "998", str(2**63 - 1), str(2**63), "-5"]))
async def test_the_ocean_engine_challenge_is_a_64_bit_integer(ingest: Ingest, challenge: str) -> None:
    url = f"/v1/webhooks/{ingest.tenant}/oceanengine"
    get = await ingest.http.get(url, params={"event": "verify_webhook", "challenge": challenge})
    post = await ingest.post("oceanengine", samples.oceanengine({"event": "verify_webhook", "challenge": challenge}))
    ascii_int = challenge.isascii() and challenge.lstrip("-").isdigit() and challenge.count("-") <= 1
    if ascii_int and len(challenge) <= 20 and challenge[:1] != "+" and -(2**63) <= int(challenge) < 2**63:
        for reply in (get, post):
            assert reply.status_code == 200, reply.text
            assert reply.json()["challenge"] == int(challenge)
            assert reply.json()["BaseResp"]["StatusCode"] == 200
    else:
        for reply in (get, post):
            assert reply.status_code == 400, (challenge[:30], reply.status_code, reply.text)


async def test_a_stale_or_future_wecom_callback_is_refused_and_counted(ingest: Ingest) -> None:
    def stale() -> float:
        return float(STALE_CALLBACKS.labels("wecom")._value.get())

    before = stale()
    day = 86_400
    now = int(time.time())
    for offset, expected in ((-3 * day, 400), (2 * day, 400), (-day - 60, 400), (-3600, 200), (600, 200)):
        xml = samples.wecom_add_contact(external_userid=f"wmT{offset}", create_time=now + offset)
        reply = await ingest.post("wecom", samples.wecom(xml, timestamp=str(now + offset)))
        assert reply.status_code == expected, (offset, reply.text)
        if expected == 400:
            assert "window" in reply.json()["detail"]
    assert stale() == before + 3
    forged = samples.wecom(
        samples.wecom_add_contact(external_userid="wmF"), token="other", timestamp=str(now - 9 * day)
    )
    assert (await ingest.post("wecom", forged)).status_code == 401  # not authentic: not counted as stale
    assert stale() == before + 3


async def test_two_strangers_giving_the_same_shop_landline_stay_two_persons(ingest: Ingest) -> None:
    for leads_id, name in (("LL-1", "王芳"), ("LL-2", "李娜")):
        lead = samples.xiaohongshu_lead(leads_id=leads_id, phone="021-6232 8888", name=name)
        assert (await ingest.post("xiaohongshu", samples.xiaohongshu(lead))).status_code == 200
    same = samples.xiaohongshu_lead(leads_id="LL-3", phone="8613800138000")  # 86 without +: the mobile +86 138…
    mobile = samples.xiaohongshu_lead(leads_id="LL-4", phone="+86 138 0013 8000")
    for lead in (same, mobile):
        assert (await ingest.post("xiaohongshu", samples.xiaohongshu(lead))).status_code == 200
    leads = await eventually(lambda: _leads(ingest, 4))
    assert leads is not None
    by_id = {e["data"]["lead_id"]: e["data"] for e in leads}
    assert by_id["xiaohongshu:LL-1"]["person_id"] != by_id["xiaohongshu:LL-2"]["person_id"]
    assert not by_id["xiaohongshu:LL-1"]["has_phone"] and not by_id["xiaohongshu:LL-2"]["has_phone"]
    assert by_id["xiaohongshu:LL-3"]["person_id"] == by_id["xiaohongshu:LL-4"]["person_id"]
    assert await ingest.events(Topic.PERSONS) == []
    lookup = f"/v1/tenants/{ingest.tenant}/persons/lookup"
    landline = await ingest.http.post(lookup, json={"kind": "phone", "value": "021-6232 8888"}, headers=ingest.auth)
    assert landline.status_code == 422 and "landlines" in landline.json()["detail"][0]["msg"]


async def _leads(ingest: Ingest, n: int) -> list[dict[str, Any]] | None:
    events = await ingest.events(Topic.LEADS)
    return events if len(events) >= n else None


async def test_admin_edges_refuse_what_postgres_cannot_hold(ingest: Ingest) -> None:
    base = f"/v1/tenants/{ingest.tenant}"
    auth = ingest.auth
    cases: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", f"{base}/deliveries?after_id={2**63}", {}),
        ("GET", f"{base}/deliveries?channel=a%00b", {}),
        ("GET", f"{base}/deliveries/{2**63}", {}),
        ("GET", f"{base}/deliveries/0", {}),
        ("GET", f"{base}/persons/p%00x", {}),
        ("POST", f"{base}/persons/p%00x/erasure", {}),
        ("GET", f"{base}/imports/i%00x", {}),
        ("POST", f"{base}/persons/lookup", {"json": {"kind": "unionid", "value": "u\x00"}}),
        ("PUT", f"{base}/channels/douyin", {"json": {"secrets": {"client_secret": "s\x00"}}}),
        ("PUT", f"{base}/channels/douyin", {"json": {"secrets": {"client_secret": "s"}, "options": {"a": "\x00"}}}),
        ("PUT", f"{base}/channels/douyin", {"json": {"secrets": {"client_secret": "s"}, "options": {"n": 2**64}}}),
        ("PUT", f"{base}/channels/dou%00yin", {"json": {"secrets": {"client_secret": "s"}}}),
        ("POST", "/v1/webhooks/Acme.CN/douyin", {"content": b"{}"}),
        ("GET", "/v1/webhooks/Acme.CN/oceanengine?event=verify_webhook&challenge=1", {}),
        ("POST", f"/v1/webhooks/{ingest.tenant}/dou%00yin", {"content": b"{}"}),
    ]
    for method, url, extra in cases:
        reply = await ingest.http.request(method, url, headers=auth, **extra)
        assert reply.status_code == 422, (method, url, reply.status_code, reply.text)


async def test_an_import_row_postgres_cannot_hold_is_a_row_error_and_the_rest_is_stored(ingest: Ingest) -> None:
    rows = [
        {"order_no": "IMP-1", "buyer_open_uid": "AAHimp1", "payment": "10.00", "paid_at": "2024-01-01 10:00:00"},
        {"order_no": "IMP-2\u0000", "buyer_open_uid": "AAHimp2", "payment": "10.00", "paid_at": "2024-01-01 10:00:00"},
        {"order_no": "IMP-3", "buyer_open_uid": "AAH\u0000", "payment": "10.00", "paid_at": "2024-01-01 10:00:00"},
        {"order_no": "IMP-4", "buyer_open_uid": "AAHimp4", "payment": "10.00", "paid_at": "2024-01-01 10:00:00"},
    ]
    upload = b"\n".join(orjson.dumps(r) for r in rows)
    url = f"/v1/tenants/{ingest.tenant}/imports"
    made = await ingest.http.post(
        url, params={"kind": "orders", "format": "jsonl"}, content=upload, headers=ingest.auth
    )
    assert made.status_code == 201, made.text
    job = made.json()
    assert (job["accepted"], job["rejected"]) == (2, 2)
    assert [e["line"] for e in job["errors"]] == [2, 3]
    assert all("cannot be stored" in e["error"] for e in job["errors"])
