"""The worker's batch path writes and emits exactly what processing one delivery at a time does.

The same deliveries (leads of every kind, a person seen through several channels, a merge in the middle of the
batch, orders paid/refunded/completed, a refund before its payment, masked phones) are processed one at a time,
the tenant's state and outbox are read, everything is wiped, and the same deliveries go through the batch path.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from uuid import uuid4

import orjson
import pytest
from sqlalchemy import text

from siyu_devstack.stack import Stack
from siyu_devstack.testing import service_spec
from siyu_ingest import samples
from siyu_ingest.adapters import deliveries
from siyu_ingest.adapters.channels import ADAPTERS
from siyu_ingest.adapters.channels.base import WebhookRequest
from siyu_ingest.adapters.deliveries import Delivery
from siyu_ingest.context import IngestContext
from siyu_ingest.settings import IngestSettings
from siyu_ingest.worker import apply_batch, apply_one_by_one
from siyu_shared.db.engine import SessionFactory, create_engine, session_factory, unit_of_work

pytestmark = pytest.mark.integration

P1, P2, P3 = "13800138000", "13900139000", "13700137000"


def _tmall(message_id: str, topic: str, tid: str, buyer: str, **extra: Any) -> tuple[str, samples.Signed]:
    message = samples.tmall_message(message_id=message_id, topic=topic, tid=tid, buyer=buyer, extra=extra)
    return "tmall", samples.tmall(message)


def _deliveries() -> list[tuple[str, samples.Signed]]:
    xhs = samples.xiaohongshu_lead
    return [
        ("xiaohongshu", samples.xiaohongshu(xhs(leads_id="E-1", phone=P1))),
        ("xiaohongshu", samples.xiaohongshu(xhs(leads_id="E-2", phone=P1, account_id="xhs-kol-9"))),
        ("xiaohongshu", samples.xiaohongshu(xhs(leads_id="E-3", phone="138****0000"))),
        ("xiaohongshu", samples.xiaohongshu(xhs(leads_id="E-4", phone="138****0000"))),
        _tmall("m1", "taobao_trade_TradeBuyerPay", "3000000000001", "AAH-1", receiver_mobile=P1),
        ("douyin", samples.douyin(samples.douyin_dm(open_id="dy-1", text=f"我的电话 {P2}", message_id="dm-1"))),
        ("oceanengine", samples.oceanengine(samples.oceanengine_clue(message_id="oe-1", clue_id="c-1", telephone=P2))),
        ("xiaohongshu", samples.xiaohongshu(xhs(leads_id="E-5", phone=P3))),
        # the buyer AAH-1 (person of P1) with P3: the P3 person merges into the older one, mid-batch
        _tmall("m2", "taobao_trade_TradeBuyerPay", "3000000000002", "AAH-1", receiver_mobile=P3),
        ("xiaohongshu", samples.xiaohongshu(xhs(leads_id="E-6", phone=P3))),
        _tmall("m3", "taobao_refund_RefundSuccess", "3000000000003", "AAH-2", refund_id="r-3", refund_fee="10.00"),
        _tmall("m4", "taobao_trade_TradeBuyerPay", "3000000000003", "AAH-2"),
        _tmall("m5", "taobao_refund_RefundSuccess", "3000000000001", "AAH-1", refund_id="r-1", refund_fee="99.00"),
        _tmall("m6", "taobao_trade_TradeSuccess", "3000000000002", "AAH-1"),
        ("wecom", samples.wecom(samples.wecom_add_contact(external_userid="wm-1"))),
    ]


async def _store(sessions: SessionFactory, ctx: IngestContext, tenant: str) -> None:
    async with unit_of_work(sessions) as session:
        for channel, creds in samples.CREDENTIALS.items():
            secrets = {k: v for k, v in creds.items() if isinstance(v, str)}
            options = {k: v for k, v in creds.items() if not isinstance(v, str)}
            await ctx.credentials.put(session, tenant=tenant, channel=channel, secrets=secrets, options=options)
        for channel, (body, headers, query) in _deliveries():
            lowered = {k.lower(): v for k, v in headers.items()}
            adapter, creds = ADAPTERS[channel], samples.CREDENTIALS[channel]
            key = adapter.dedupe_key(WebhookRequest(body=body, headers=lowered, query=query), creds)
            await deliveries.store(
                session, tenant=tenant, channel=channel, dedupe_key=key, body=body, headers=lowered, query=query
            )


async def _state(sessions: SessionFactory, ctx: IngestContext, tenant: str) -> dict[str, Any]:
    """Everything the tenant's processing left, without what is random (nonces) or clock-dependent."""

    def opened(sealed: bytes | None) -> str | None:
        return ctx.vault.open(sealed, context=tenant.encode()).decode() if sealed else None

    async with unit_of_work(sessions) as session:

        async def rows(sql: str) -> list[Any]:
            return list((await session.execute(text(sql), {"t": tenant})).all())

        persons = await rows(
            "SELECT person_id, merged_into, erased_at FROM persons WHERE tenant = :t ORDER BY created_at, person_id"
        )
        idents = await rows(
            "SELECT kind, value_key, person_id, value_enc FROM identifiers WHERE tenant = :t ORDER BY kind, value_key"
        )
        leads = await rows(
            "SELECT l.lead_id, l.person_id, l.channel, l.kind, l.occurred_at, l.source, l.attributes, l.name_enc,"
            " l.partial_phone_enc, d.dedupe_key FROM leads l LEFT JOIN deliveries d ON d.id = l.delivery_id"
            " WHERE l.tenant = :t ORDER BY l.lead_id"
        )
        orders = await rows(
            "SELECT order_id, channel, order_no, person_id, paid, amount_fen, refunded_fen, refund_ids, completed,"
            " closed, held FROM orders WHERE tenant = :t ORDER BY order_id"
        )
        stored = await rows("SELECT dedupe_key, status, error FROM deliveries WHERE tenant = :t ORDER BY id")
        outbox = await rows("SELECT topic, key, event_type, payload FROM outbox WHERE tenant = :t ORDER BY id")
    events = []
    for topic, key, event_type, payload in outbox:
        event = orjson.loads(payload)
        event.pop("time")
        event["data"].pop("merged_at", None)
        events.append((topic, key, event_type, event))
    return {
        "persons": [tuple(p) for p in persons],
        "identifiers": [(k, v, p, opened(e)) for k, v, p, e in idents],
        "leads": [(*r[:7], opened(r[7]), opened(r[8]), r[9]) for r in leads],
        "orders": [tuple(r) for r in orders],
        "deliveries": [tuple(r) for r in stored],
        "events": events,
    }


async def _wipe(sessions: SessionFactory, tenant: str) -> None:
    async with unit_of_work(sessions) as session:
        for table in ("deliveries", "persons", "identifiers", "leads", "orders", "outbox", "channel_credentials"):
            await session.execute(text(f"DELETE FROM {table} WHERE tenant = :t"), {"t": tenant})


Apply = Callable[[Any, IngestContext, Sequence[Delivery]], Awaitable[None]]


async def _run(sessions: SessionFactory, ctx: IngestContext, tenant: str, apply: Apply) -> dict[str, Any]:
    await _store(sessions, ctx, tenant)
    async with unit_of_work(sessions) as session:
        mine = await deliveries.list_for(session, tenant=tenant, status="pending", channel=None, after_id=0, limit=1000)
        assert len(mine) == len(_deliveries())
        async with session.begin_nested():
            await apply(session, ctx, list(mine))
    return await _state(sessions, ctx, tenant)


async def test_batch_path_writes_and_emits_exactly_what_one_at_a_time_does(migrated: Stack) -> None:
    settings = service_spec("ingest", migrated).settings
    assert isinstance(settings, IngestSettings)
    ctx = IngestContext.build(settings)
    engine = create_engine(settings.database_url, schema="ingest", pool_size=2)
    sessions = session_factory(engine)
    tenant = f"eq{uuid4().hex[:8]}"
    try:
        one_by_one = await _run(sessions, ctx, tenant, apply_one_by_one)
        await _wipe(sessions, tenant)
        batch = await _run(sessions, ctx, tenant, apply_batch)
    finally:
        await _wipe(sessions, tenant)
        await engine.dispose()
    # the scenario is what it claims to be
    assert {status for _, status, _ in one_by_one["deliveries"]} == {"processed"}
    assert any(e[2] == "siyu.person.merged" for e in one_by_one["events"])
    assert sum(1 for p in one_by_one["persons"] if p[1] is not None) == 1
    for part in one_by_one:
        assert batch[part] == one_by_one[part], part
