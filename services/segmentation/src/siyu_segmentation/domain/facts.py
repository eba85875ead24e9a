"""The facts a rule can test: their names and types, and a person's facts as plain data."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

FactType = Literal["number", "time", "text", "set", "bool"]

FACTS: dict[str, FactType] = {
    # seen
    "first_seen_at": "time",
    "last_seen_at": "time",
    "first_channel": "text",
    "channels": "set",
    "account_kinds": "set",
    "partner_ids": "set",
    "campaign_ids": "set",
    "lead_kinds": "set",
    "lead_count": "number",
    "incentive": "bool",
    "has_phone": "bool",
    # WeCom relationship
    "wecom_status": "text",  # none | friend | removed
    "wecom_added_at": "time",
    "wecom_staff": "set",
    "groups": "set",
    # orders (over orders that were not fully refunded or closed, except the money totals)
    "order_count": "number",
    "paid_fen": "number",
    "refunded_fen": "number",
    "net_fen": "number",
    "first_order_at": "time",
    "last_order_at": "time",
    "avg_order_fen": "number",
    "mean_interval_days": "number",
    "categories": "set",
    # touches
    "touches_received": "number",
    "last_touch_at": "time",
    # RFM scores (1..5, recomputed over the tenant on a schedule)
    "rfm_r": "number",
    "rfm_f": "number",
    "rfm_m": "number",
}
ATTRIBUTE_PREFIX = "attr."
"""`attr.skin_type`, `attr.age_band`…: typed form answers, whatever the lead forms carry."""


@dataclass(frozen=True, slots=True)
class OrderFact:
    order_id: str
    paid_at: datetime
    amount_fen: int
    refunded_fen: int = 0
    voided: bool = False
    categories: tuple[str, ...] = ()

    @property
    def net_fen(self) -> int:
        return self.amount_fen - self.refunded_fen


@dataclass(frozen=True, slots=True)
class TouchFact:
    touch_id: str
    occurred_at: datetime
    channel: str
    status: Literal["sent", "failed", "skipped"] = "sent"


@dataclass(frozen=True, slots=True)
class Profile:
    """One person's facts as a rule sees them (`values` keyed by the names in FACTS)."""

    person_id: str
    values: dict[str, Any] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)
    orders: tuple[OrderFact, ...] = ()
    touches: tuple[TouchFact, ...] = ()
