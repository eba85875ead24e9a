"""Canonical models every channel is normalised into (the facts a delivery states)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from siyu_shared.events.catalog.common import Channel, SourceRef
from siyu_shared.events.catalog.leads import AttributeValue

IdentifierKind = Literal[
    "phone",
    "wecom_external_userid",
    "unionid",
    "douyin_open_id",
    "xhs_user_id",
    "taobao_ouid",
    "taobao_nick",
    "doudian_order",
]
LeadKind = Literal["form", "private_message", "follow", "group_join", "consult", "other"]
OrderChangeKind = Literal["paid", "completed", "refunded", "closed"]


@dataclass(frozen=True, slots=True)
class Identifier:
    """One identifier of a person as a channel names it (phones already in E.164)."""

    kind: IdentifierKind
    value: str


@dataclass(frozen=True, slots=True)
class Lead:
    lead_id: str
    kind: LeadKind
    occurred_at: datetime
    source: SourceRef
    identifiers: tuple[Identifier, ...]
    attributes: dict[str, AttributeValue] = field(default_factory=dict)
    has_phone: bool = False
    partial_phone: str | None = None
    name: str | None = None
    incentive: bool = False


@dataclass(frozen=True, slots=True)
class ContactChange:
    """A WeCom friendship began or ended."""

    added: bool
    external_userid: str
    staff_id: str
    occurred_at: datetime
    source: SourceRef
    removed_by: Literal["staff", "customer", "transfer"] = "customer"
    welcome_code_present: bool = False

    @property
    def identifiers(self) -> tuple[Identifier, ...]:
        return (Identifier("wecom_external_userid", self.external_userid),)


@dataclass(frozen=True, slots=True)
class GroupChange:
    """One external member joined or left a WeCom customer group."""

    joined: bool
    chat_id: str
    external_userid: str
    scene: int
    occurred_at: datetime

    @property
    def identifiers(self) -> tuple[Identifier, ...]:
        return (Identifier("wecom_external_userid", self.external_userid),)


@dataclass(frozen=True, slots=True)
class OrderLineFact:
    line_id: str
    amount_fen: int
    quantity: int = 1
    sku: str | None = None


@dataclass(frozen=True, slots=True)
class OrderChange:
    """One step of an order's life as a channel reported it (may arrive out of order)."""

    kind: OrderChangeKind
    channel: Channel
    order_no: str
    occurred_at: datetime
    identifiers: tuple[Identifier, ...] = ()
    amount_fen: int = 0
    lines: tuple[OrderLineFact, ...] = ()
    shop_id: str | None = None
    refund_id: str | None = None
    line_id: str | None = None
    reason: str | None = None
    source: SourceRef | None = None

    @property
    def order_id(self) -> str:
        return f"{self.channel}:{self.order_no}"


@dataclass(frozen=True, slots=True)
class IdentityObservation:
    """Identifiers seen together (a WeCom contact's detail: external_userid, unionid, remark mobiles)."""

    identifiers: tuple[Identifier, ...]


Fact = Lead | ContactChange | GroupChange | OrderChange | IdentityObservation
