"""Bulk import, failed deliveries fixed and reprocessed, erasure, credentials admin and tenant isolation."""

from __future__ import annotations

from uuid import uuid4

import pytest

from siyu_devstack.testing import eventually
from siyu_ingest import samples
from siyu_shared.events.topics import Topic

from .conftest import Ingest

pytestmark = pytest.mark.integration

TMALL_EXPORT = """订单编号,买家会员名,buyer_open_uid,买家实际支付金额,订单状态,\
订单创建时间,订单付款时间,退款金额,联系手机
'3000000000101,t**1,AAHimp1,199.00,交易成功,2024-03-01 10:00:00,2024-03-01 10:01:00,0.00,138****0000
'3000000000102,t**2,AAHimp2,59.90,交易关闭,2024-03-02 10:00:00,2024-03-02 10:00:30,59.90,
,t**3,AAHimp3,10.00,交易成功,2024-03-03 10:00:00,2024-03-03 10:00:30,0.00,
'3000000000104,t**4,,abc,交易成功,2024-03-04 10:00:00,2024-03-04 10:00:30,0.00,13800138000
'3000000000105,t**5,AAHimp5,1e30,交易成功,2024-03-05 10:00:00,2024-03-05 10:00:30,0.00,
"""


async def test_tmall_export_import_reports_bad_rows_and_emits_like_webhooks(ingest: Ingest) -> None:
    url = f"/v1/tenants/{ingest.tenant}/imports"
    made = await ingest.http.post(url, params={"kind": "orders"}, content=TMALL_EXPORT.encode(), headers=ingest.auth)
    assert made.status_code == 201, made.text
    job = made.json()
    assert (job["rows_read"], job["accepted"], job["rejected"], job["status"]) == (5, 2, 3, "finished")
    assert [e["line"] for e in job["errors"]] == [4, 5, 6]
    assert "order number" in job["errors"][0]["error"] and "abc" in job["errors"][1]["error"]
    assert "beyond any real order" in job["errors"][2]["error"]
    again = await ingest.http.post(url, params={"kind": "orders"}, content=TMALL_EXPORT.encode(), headers=ingest.auth)
    assert (again.json()["accepted"], again.json()["duplicates"]) == (0, 2)
    progress = await ingest.http.get(f"{url}/{job['import_id']}", headers=ingest.auth)
    assert progress.json()["accepted"] == 2
    events = await eventually(lambda: _at_least(ingest, Topic.ORDERS, 5))
    by_order: dict[str, list[str]] = {}
    for event in events:
        by_order.setdefault(event["data"]["order_no"], []).append(event["type"])
    assert by_order == {
        "3000000000101": ["siyu.order.paid", "siyu.order.completed"],
        "3000000000102": ["siyu.order.paid", "siyu.order.refunded", "siyu.order.closed"],
    }
    # A later export of the same orders: only what changed is new, and only the new step is emitted.
    later = TMALL_EXPORT.replace(
        "交易成功,2024-03-01 10:00:00,2024-03-01 10:01:00,0.00",
        "交易成功,2024-03-01 10:00:00,2024-03-01 10:01:00,50.00",
    )
    updated = await ingest.http.post(url, params={"kind": "orders"}, content=later.encode(), headers=ingest.auth)
    assert (updated.json()["accepted"], updated.json()["duplicates"]) == (1, 1)
    events = await eventually(lambda: _at_least(ingest, Topic.ORDERS, 6))
    refunds = [
        e["data"] for e in events if e["type"] == "siyu.order.refunded" and e["data"]["order_no"] == "3000000000101"
    ]
    assert len(events) == 6 and [(r["amount_fen"], r["full"]) for r in refunds] == [(5000, False)]
    gbk = "lead_id,channel,手机号,姓名,提交时间\nA1,xiaohongshu,13900139000,王五,2024-05-01 08:00:00\n".encode("gbk")
    leads = await ingest.http.post(url, params={"kind": "leads", "encoding": "gbk"}, content=gbk, headers=ingest.auth)
    assert leads.json()["accepted"] == 1, leads.text
    captured = await eventually(lambda: ingest.events(Topic.LEADS))
    assert captured[0]["data"]["lead_id"] == "import:xiaohongshu:A1" and captured[0]["data"]["has_phone"]


async def test_a_delivery_failing_on_bad_configuration_is_reprocessed_after_the_fix(ingest: Ingest) -> None:
    channel_url = f"/v1/tenants/{ingest.tenant}/channels/xiaohongshu"
    secrets = {"token": samples.CREDENTIALS["xiaohongshu"]["token"]}
    bad = await ingest.http.put(
        channel_url, json={"secrets": secrets, "options": {"accounts": {"acc-x": "influencer"}}}, headers=ingest.auth
    )
    assert bad.status_code == 200
    lead = samples.xiaohongshu_lead(leads_id="FIX-1", phone="13700137000", account_id="acc-x")
    assert (await ingest.post("xiaohongshu", samples.xiaohongshu(lead))).status_code == 200
    (failed,) = await eventually(lambda: ingest.deliveries("failed"))
    assert "account_kind" in failed["error"]
    fixed = await ingest.http.put(
        channel_url, json={"secrets": secrets, "options": {"accounts": {"acc-x": "koc"}}}, headers=ingest.auth
    )
    assert fixed.status_code == 200
    requeued = await ingest.http.post(f"/v1/tenants/{ingest.tenant}/deliveries/reprocess", headers=ingest.auth)
    assert requeued.json() == {"requeued": 1}
    captured = await eventually(lambda: ingest.events(Topic.LEADS))
    assert captured[0]["data"]["source"]["account_kind"] == "koc"
    done = await ingest.http.get(f"/v1/tenants/{ingest.tenant}/deliveries/{failed['id']}", headers=ingest.auth)
    assert done.json()["status"] == "processed" and done.json()["error"] is None
    conflict = await ingest.http.post(
        f"/v1/tenants/{ingest.tenant}/deliveries/{failed['id']}/reprocess", headers=ingest.auth
    )
    assert conflict.status_code == 409


async def test_erasure_wipes_personal_data_and_tells_every_service(ingest: Ingest) -> None:
    lead = samples.xiaohongshu_lead(leads_id="ER-1", phone="13600136000")
    assert (await ingest.post("xiaohongshu", samples.xiaohongshu(lead))).status_code == 200
    person = (await eventually(lambda: ingest.events(Topic.LEADS)))[0]["data"]["person_id"]
    erased = await ingest.http.post(f"/v1/tenants/{ingest.tenant}/persons/{person}/erasure", headers=ingest.auth)
    assert erased.status_code == 202
    events = await eventually(lambda: ingest.events(Topic.PERSONS))
    assert [(e["type"], e["data"]["person_id"]) for e in events] == [("siyu.person.erased", person)]
    shown = await ingest.http.get(f"/v1/tenants/{ingest.tenant}/persons/{person}", headers=ingest.auth)
    assert shown.json()["erased_at"] is not None
    (delivery,) = await ingest.deliveries()
    assert delivery["body_bytes"] == 0  # the raw delivery held the phone in clear: wiped too


async def test_credentials_admin_is_tenant_scoped_and_write_only(ingest: Ingest) -> None:
    listed = await ingest.http.get(f"/v1/tenants/{ingest.tenant}/channels", headers=ingest.auth)
    assert {c["channel"] for c in listed.json()} == set(samples.CREDENTIALS)
    assert "dy-client-secret" not in listed.text
    other = f"t{uuid4().hex[:8]}"
    assert (await ingest.http.get(f"/v1/tenants/{other}/channels", headers=ingest.auth)).status_code == 403
    missing = await ingest.http.put(
        f"/v1/tenants/{ingest.tenant}/channels/wecom", json={"secrets": {"token": "t"}}, headers=ingest.auth
    )
    assert missing.status_code == 400 and "encoding_aes_key" in missing.json()["detail"]
    # Another tenant has no credentials: its webhook URL is unknown, whatever the signature.
    lead = samples.xiaohongshu(samples.xiaohongshu_lead(leads_id="X", phone="13800138000"))
    assert (await ingest.post("xiaohongshu", lead, tenant=other)).status_code == 404
    assert (
        await ingest.http.get(f"/v1/tenants/{ingest.tenant}/deliveries/999999999", headers=ingest.auth)
    ).status_code == 404
    removed = await ingest.http.delete(f"/v1/tenants/{ingest.tenant}/channels/douyin", headers=ingest.auth)
    assert removed.status_code == 204


async def _at_least(ingest: Ingest, topic: Topic, n: int) -> list[dict[str, object]] | None:
    events = await ingest.events(topic)
    return events if len(events) >= n else None
