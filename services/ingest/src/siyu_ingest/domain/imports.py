"""Bulk import of history (a Tmall order export, a lead sheet): each row normalised into a canonical record.

A record is what gets stored as an ``import`` delivery; the worker turns it into the same facts a webhook would
give, so history goes through the same identity and lifecycle path. Rows are normalised at upload time, so a
bad row is reported with its line number straight away and never stored.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

import orjson

from siyu_ingest.domain.errors import Malformed
from siyu_ingest.domain.models import Fact, Identifier, Lead, OrderChange, OrderLineFact
from siyu_ingest.domain.normalise import clean_name, normalise_phone, shanghai_time_iso, yuan_to_fen
from siyu_shared.events.catalog.common import SourceRef
from siyu_shared.values import unstorable

ImportKind = Literal["orders", "leads"]
_DIGITS = bytes(0x30 if 0x30 <= i <= 0x39 else 0x20 for i in range(256))
_DIGIT_RUN = b"0" * 19


# Tmall/Taobao 订单导出 headers next to plain English ones.
ORDER_COLUMNS = {
    "order_no": ("order_no", "tid", "订单编号"),
    "buyer_open_uid": ("buyer_open_uid", "ouid"),
    "buyer_nick": ("buyer_nick", "买家会员名"),
    "payment": ("payment", "amount_yuan", "买家实际支付金额", "实付金额"),
    "paid_at": ("paid_at", "pay_time", "订单付款时间", "付款时间"),
    "created_at": ("created_at", "订单创建时间"),
    "status": ("status", "订单状态"),
    "refund": ("refund", "refund_yuan", "退款金额"),
    "phone": ("phone", "receiver_mobile", "联系手机", "收货人手机号"),
    "channel": ("channel",),
    "shop_id": ("shop_id", "店铺ID"),
}
LEAD_COLUMNS = {
    "lead_id": ("lead_id", "线索ID"),
    "channel": ("channel", "渠道"),
    "phone": ("phone", "手机号", "电话"),
    "name": ("name", "姓名"),
    "occurred_at": ("occurred_at", "提交时间"),
    "account_id": ("account_id", "账号ID"),
    "account_kind": ("account_kind",),
    "campaign_id": ("campaign_id", "计划ID"),
    "open_id": ("open_id", "douyin_open_id"),
    "xhs_user_id": ("xhs_user_id",),
    "city": ("city", "城市"),
}
FINISHED = {"TRADE_FINISHED", "交易成功"}
CLOSED = {"TRADE_CLOSED", "TRADE_CLOSED_BY_TAOBAO", "交易关闭"}


def _pick(row: Mapping[str, Any], names: tuple[str, ...]) -> str | None:
    for name in names:
        value = row.get(name)
        if value is not None and value != "":
            return str(value).strip()
    return None


def _time(raw: str | None) -> str | None:
    return shanghai_time_iso(raw) if raw else None


def column_positions(header: Sequence[str], spec: Mapping[str, tuple[str, ...]]) -> dict[str, int | None]:
    """Where each field is in a CSV row (the first accepted name the header has), once per file."""
    where = {name: i for i, name in enumerate(header)}
    return {key: next((where[n] for n in names if n in where), None) for key, names in spec.items()}


def from_fields(fields: Sequence[str], positions: Mapping[str, int | None]) -> dict[str, str | None]:
    """A CSV row's fields by name, blank as None (the fast path: no per-row header dictionary)."""
    return {key: (fields[i].strip() or None) if i is not None else None for key, i in positions.items()}


def order_record(row: Mapping[str, Any], columns: Mapping[str, tuple[str, ...]] | None = None) -> dict[str, Any]:
    """A canonical order record from one export row (Malformed with the reason when it cannot be)."""
    return order_from_columns({key: _pick(row, names) for key, names in (columns or ORDER_COLUMNS).items()})


def order_from_columns(col: Mapping[str, str | None]) -> dict[str, Any]:
    order_no = col["order_no"]
    if not order_no:
        raise Malformed("no order number (订单编号 / order_no)")
    identifiers: list[list[str]] = []
    if col["buyer_open_uid"]:
        identifiers.append(["taobao_ouid", col["buyer_open_uid"]])
    phone = normalise_phone(col["phone"])
    if phone and phone.e164:
        identifiers.append(["phone", phone.e164])
    nick = col["buyer_nick"]
    if nick and "*" not in nick:
        identifiers.append(["taobao_nick", nick])
    if not identifiers:
        raise Malformed("no buyer identifier (buyer_open_uid, a Chinese mobile number or buyer nick)")
    paid_at = _time(col["paid_at"])
    return {
        "type": "order",
        "channel": col["channel"] or "tmall",
        "order_no": order_no.lstrip("'"),  # spreadsheets prefix long numbers with '
        "identifiers": identifiers,
        "amount_fen": yuan_to_fen(col["payment"]),
        "paid_at": paid_at,
        "created_at": _time(col["created_at"]) or paid_at,
        "refund_fen": yuan_to_fen(col["refund"]),
        "status": col["status"] or "",
        "shop_id": col["shop_id"],
    }


def lead_record(row: Mapping[str, Any], columns: Mapping[str, tuple[str, ...]] | None = None) -> dict[str, Any]:
    return lead_from_columns({key: _pick(row, names) for key, names in (columns or LEAD_COLUMNS).items()})


def lead_from_columns(col: Mapping[str, str | None]) -> dict[str, Any]:
    lead_id = col["lead_id"]
    if not lead_id:
        raise Malformed("no lead id (lead_id / 线索ID)")
    occurred_at = _time(col["occurred_at"])
    if not occurred_at:
        raise Malformed("no time (occurred_at / 提交时间)")
    channel = col["channel"] or "import"
    SourceRef.model_validate({"channel": channel})  # validates the channel name early
    identifiers: list[list[str]] = []
    phone = normalise_phone(col["phone"])
    if phone and phone.e164:
        identifiers.append(["phone", phone.e164])
    if col["open_id"]:
        identifiers.append(["douyin_open_id", col["open_id"]])
    if col["xhs_user_id"]:
        identifiers.append(["xhs_user_id", col["xhs_user_id"]])
    if not identifiers:
        raise Malformed("no identifier (a Chinese mobile number, open_id or xhs_user_id)")
    return {
        "type": "lead",
        "lead_id": f"import:{channel}:{lead_id}",
        "channel": channel,
        "occurred_at": occurred_at,
        "identifiers": identifiers,
        "name": clean_name(col["name"]),
        "partial_phone": phone.partial if phone else None,
        "account_id": col["account_id"],
        "account_kind": col["account_kind"] or "unknown",
        "campaign_id": col["campaign_id"],
        "city": col["city"],
    }


def encoded(record: Mapping[str, Any]) -> tuple[str, bytes]:
    """The record's stored body (JSON, keys sorted) and its dedupe key, a digest of that body: the same row
    uploaded again is a duplicate; a later export of the same order with a new status or refund is not (its record
    differs), and the order lifecycle applies only what is new. Malformed when a value cannot be stored."""
    try:
        body = orjson.dumps(record, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError as exc:  # e.g. an amount beyond 64 bits
        raise Malformed(f"a value cannot be stored: {exc}") from exc
    # orjson writes a NUL as \u0000 and an integer beyond int64 has 19 digits or more: only then is the record
    # walked (two scans in C, about a microsecond, where the walk would take several per row).
    if b"\\u0000" in body or _DIGIT_RUN in body.translate(_DIGITS):
        reason = unstorable(record)
        if reason:
            raise Malformed(f"a value cannot be stored: {reason}")
    digest = hashlib.sha256(body).hexdigest()[:16]
    if record["type"] == "order":
        return f"order:{record['channel']}:{str(record['order_no'])[:150]}:{digest}", body
    return f"lead:{str(record['lead_id'])[:150]}:{digest}", body


def facts_of(record: Mapping[str, Any]) -> list[Fact]:
    """The facts an import record states (the same models a webhook produces)."""
    identifiers = tuple(Identifier(kind, value) for kind, value in record["identifiers"])
    if record["type"] == "lead":
        source = SourceRef(
            channel=record["channel"],
            account_id=record.get("account_id"),
            account_kind=record.get("account_kind") or "unknown",
            campaign_id=record.get("campaign_id"),
        )
        return [
            Lead(
                lead_id=record["lead_id"],
                kind="form",
                occurred_at=datetime.fromisoformat(record["occurred_at"]),
                source=source,
                identifiers=identifiers,
                attributes={"city": record["city"]} if record.get("city") else {},
                has_phone=any(i.kind == "phone" for i in identifiers),
                partial_phone=record.get("partial_phone"),
                name=record.get("name"),
            )
        ]
    if record["type"] != "order":
        raise Malformed(f"unknown import record type {record['type']!r}")
    channel, order_no = record["channel"], record["order_no"]
    facts: list[Fact] = []
    when = datetime.fromisoformat(record["paid_at"] or record["created_at"]) if record.get("created_at") else None
    if record.get("paid_at"):
        paid_at = datetime.fromisoformat(record["paid_at"])
        facts.append(
            OrderChange(
                kind="paid",
                channel=channel,
                order_no=order_no,
                occurred_at=paid_at,
                identifiers=identifiers,
                amount_fen=record["amount_fen"],
                lines=(OrderLineFact(line_id=order_no, amount_fen=record["amount_fen"]),),
                shop_id=record.get("shop_id"),
                source=SourceRef(channel=channel, account_id=record.get("shop_id"), account_kind="shop"),
            )
        )
    if when is None:
        return facts
    if record.get("refund_fen"):
        facts.append(
            OrderChange(
                kind="refunded",
                channel=channel,
                order_no=order_no,
                occurred_at=when,
                identifiers=identifiers,
                amount_fen=record["refund_fen"],
                refund_id=f"import:{order_no}",
            )
        )
    status = record.get("status") or ""
    if status in FINISHED:
        facts.append(OrderChange(kind="completed", channel=channel, order_no=order_no, occurred_at=when))
    elif status in CLOSED:
        facts.append(OrderChange(kind="closed", channel=channel, order_no=order_no, occurred_at=when, reason=status))
    return facts
