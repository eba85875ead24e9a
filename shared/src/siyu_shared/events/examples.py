"""One realistic event of every type, built with the models: the examples of the published JSON Schemas and of
the AsyncAPI document.

They follow the seed story of a beauty brand's 小完子-style persona: a Xiaohongshu lead from a KOL note, a WeCom
friend, a greeting touch, tags moving D → C, a Tmall order claimed by the 1v1 staff, a partial refund and
its reversal, the month's statement. Deterministic (fixed ids and times), so the published files do not churn.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import cache
from typing import Any

import orjson

from siyu_shared.events.catalog import (
    CommissionAccrued,
    CommissionReversed,
    ContactAdded,
    ContactRemoved,
    GroupJoined,
    GroupLeft,
    LeadCaptured,
    OrderClosed,
    OrderCompleted,
    OrderLine,
    OrderPaid,
    OrderRefunded,
    PersonErased,
    PersonMerged,
    SourceRef,
    StatementClosed,
    TagChange,
    TagsChanged,
    TouchFailed,
    TouchSent,
    TouchSkipped,
)
from siyu_shared.events.envelope import CloudEvent, deterministic_event_id
from siyu_shared.events.registry import EventData, all_specs, envelope

TENANT = "glowlab"
PERSON = "9a1f3c52-7e4b-5d0a-8c61-2b7f0e9d4a13"
MERGED = "4c8e2a90-1b6d-5f37-a0e4-7d93c5b1f862"
STAFF = "xwz_01"
ORDER_ID = "tmall:3318872651409876"
ORDER_NO = "3318872651409876"
SHANGHAI = timezone(timedelta(hours=8))
T0 = datetime(2026, 5, 18, 20, 15, tzinfo=SHANGHAI)

_KOL_NOTE = SourceRef(
    channel="xiaohongshu",
    account_id="xhs-kol-9",
    account_kind="kol",
    note_id="6648a1f2000000001e03b7c4",
    partner_id="xhs-kol-9",
    wecom_state="xhs_kol9_note",
)
_TOUCH = {"person_id": PERSON, "journey_id": "welcome", "journey_version": 3, "persona": "小完子"}
_MOVEMENT = {
    "order_id": ORDER_ID,
    "payee_id": STAFF,
    "payee_role": "staff_1v1",
    "plan_id": "default",
    "plan_version": 2,
    "attribution_id": "7f0c2d4e-93a1-5b68-b2e5-0a4d81c6f3b9",
    "period": "2026-05",
    "account": f"held:{STAFF}",
}
_D_TO_C = TagChange(tag="C", family="dcba", rule_id="dcba.c_friend", rule_version=4)


def _at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def example_payloads() -> list[tuple[EventData, str, str]]:
    """(payload, Kafka key, CloudEvents source) of one event per type."""
    return [
        (
            LeadCaptured(
                lead_id="xhs:lead:88410273",
                person_id=PERSON,
                kind="form",
                occurred_at=_at(0),
                source=_KOL_NOTE,
                attributes={"skin_type": "combination", "age_band": "25-29", "city": "杭州", "interests": ["精华"]},
                has_phone=True,
            ),
            PERSON,
            "/siyu/ingest",
        ),
        (
            ContactAdded(
                person_id=PERSON,
                external_userid="wmFq1sEAAAb3xK9Jd2Y0cHn4pQvT7lZg",
                staff_id=STAFF,
                occurred_at=_at(6),
                source=_KOL_NOTE.model_copy(update={"channel": "wecom"}),
                welcome_code_present=True,
            ),
            PERSON,
            "/siyu/ingest",
        ),
        (
            ContactRemoved(
                person_id=PERSON,
                external_userid="wmFq1sEAAAb3xK9Jd2Y0cHn4pQvT7lZg",
                staff_id="xwz_03",
                removed_by="transfer",
                occurred_at=_at(60 * 24 * 40),
            ),
            PERSON,
            "/siyu/ingest",
        ),
        (
            GroupJoined(person_id=PERSON, chat_id="wrDemoGroupLily", join_scene=3, occurred_at=_at(45)),
            PERSON,
            "/siyu/ingest",
        ),
        (
            GroupLeft(person_id=PERSON, chat_id="wrDemoGroupLily", quit_scene=0, occurred_at=_at(60 * 24 * 30)),
            PERSON,
            "/siyu/ingest",
        ),
        (
            OrderPaid(
                order_id=ORDER_ID,
                order_no=ORDER_NO,
                channel="tmall",
                person_id=PERSON,
                amount_fen=45800,
                paid_at=_at(60 * 24 * 2),
                lines=[
                    OrderLine(line_id="3318872651409877", sku="SERUM-30ML", category="精华", amount_fen=29900),
                    OrderLine(line_id="3318872651409878", sku="MASK-5P", category="面膜", amount_fen=15900),
                ],
                shop_id="glowlab旗舰店",
            ),
            PERSON,
            "/siyu/ingest",
        ),
        (
            OrderCompleted(order_id=ORDER_ID, order_no=ORDER_NO, person_id=PERSON, completed_at=_at(60 * 24 * 5)),
            PERSON,
            "/siyu/ingest",
        ),
        (
            OrderRefunded(
                order_id=ORDER_ID,
                order_no=ORDER_NO,
                refund_id="147258369012345",
                person_id=PERSON,
                amount_fen=15900,
                full=False,
                refunded_at=_at(60 * 24 * 6),
                line_id="3318872651409878",
            ),
            PERSON,
            "/siyu/ingest",
        ),
        (
            OrderClosed(
                order_id="tmall:3318872651409990",
                order_no="3318872651409990",
                person_id=PERSON,
                closed_at=_at(60 * 24 * 3),
                reason="TRADE_CLOSED_BY_TAOBAO",
            ),
            PERSON,
            "/siyu/ingest",
        ),
        (
            PersonMerged(survivor_id=PERSON, merged_ids=[MERGED], reason="phone", merged_at=_at(6)),
            PERSON,
            "/siyu/ingest",
        ),
        (PersonErased(person_id=PERSON, requested_at=_at(60 * 24 * 90)), PERSON, "/siyu/ingest"),
        (
            TagsChanged(
                person_id=PERSON,
                added=[_D_TO_C],
                removed=[TagChange(tag="D", family="dcba", rule_id="dcba.d_lead", rule_version=4)],
                tags=["C", "skin:combination", "source:kol"],
                facts={"is_friend": True, "orders_paid": 0, "lead_channel": "xiaohongshu"},
                evaluated_at=_at(6.1),
                cause="event:" + deterministic_event_id("example", "siyu.contact.added"),
            ),
            PERSON,
            "/siyu/segmentation",
        ),
        (
            TouchSent(
                touch_id="b5e07a3c-2d19-5c84-9f6e-1a3b7d0c5e28",
                channel="wecom_1v1",
                step_id="greeting",
                staff_id=STAFF,
                occurred_at=_at(6.2),
                **_TOUCH,
            ),
            PERSON,
            "/siyu/journey",
        ),
        (
            TouchFailed(
                touch_id="0d4f6b81-7a2e-5e93-8c1d-3f5a9b2e7c60",
                channel="sms",
                step_id="day3_reminder",
                occurred_at=_at(60 * 24 * 3),
                reason="provider rejected: unsubscribed number",
                **_TOUCH,
            ),
            PERSON,
            "/siyu/journey",
        ),
        (
            TouchSkipped(
                touch_id="e27c1a95-4b3d-5f06-a8e2-6c0d4f9b1a37",
                channel="wecom_1v1",
                step_id="day1_tips",
                staff_id=STAFF,
                occurred_at=_at(60 * 24),
                reason="cap_daily",
                **_TOUCH,
            ),
            PERSON,
            "/siyu/journey",
        ),
        (
            CommissionAccrued(
                entry_id="3a9d5e17-c2f4-5b80-9e6a-d1b7f3c08a42",
                amount_fen=2290,
                occurred_at=_at(60 * 24 * 2 + 1),
                rule="first_claim/claim:5b1e9c7d-0a3f-5d26-b8e4-2c7f1a6d9e03",
                **_MOVEMENT,
            ),
            PERSON,
            "/siyu/attribution",
        ),
        (
            CommissionReversed(
                entry_id="c86f0b2a-5e1d-5a97-b3c4-9e2d7a1f6b85",
                amount_fen=795,
                occurred_at=_at(60 * 24 * 6 + 1),
                rule="refund:147258369012345",
                reason="partial refund of line 3318872651409878",
                **_MOVEMENT,
            ),
            PERSON,
            "/siyu/attribution",
        ),
        (
            StatementClosed(
                statement_id="8e2b4d6f-1c3a-5e70-9b8d-4f6a2c0e1b39",
                payee_id=STAFF,
                period="2026-05",
                total_fen=1495,
                entry_count=2,
                closed_at=datetime(2026, 6, 1, 2, 0, tzinfo=SHANGHAI),
            ),
            STAFF,
            "/siyu/attribution",
        ),
    ]


@cache
def example_events() -> dict[str, CloudEvent]:
    """Event type → one example envelope of it (every registered type has one)."""
    out: dict[str, CloudEvent] = {}
    for data, key, source in example_payloads():
        name = data.event_type
        time = max((v for v in data.model_dump().values() if isinstance(v, datetime)), default=T0)
        out[name] = envelope(
            data,
            tenant=TENANT,
            subject=key,
            source=source,
            event_id=deterministic_event_id("example", name),
            time=time,
        )
    missing = {s.type_name for s in all_specs()} - set(out)
    if missing:
        raise LookupError(f"no example event for {', '.join(sorted(missing))}")
    return out


def example_json(type_name: str) -> dict[str, Any]:
    """The example of ``type_name`` as it travels on Kafka (the JSON value)."""
    document: dict[str, Any] = orjson.loads(example_events()[type_name].to_json())
    return document
