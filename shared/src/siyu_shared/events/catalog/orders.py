"""orders.v1: the order lifecycle, money in integer fen."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from siyu_shared.events.catalog.common import Channel, Fen, PersonId, SourceRef, Timestamp
from siyu_shared.events.registry import EventData, event_type
from siyu_shared.events.topics import Topic


class OrderLine(BaseModel):
    """One line (sub-order, e.g. Tmall `oid`) of an order."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    line_id: str
    sku: str | None = None
    category: str | None = None
    quantity: int = Field(default=1, ge=0)
    amount_fen: int = Fen


@event_type("siyu.order.paid", topic=Topic.ORDERS)
class OrderPaid(EventData):
    """An order was paid. `order_id` is Siyu's id (channel-scoped); `order_no` is the platform's (Tmall `tid`)."""

    order_id: str = Field(max_length=200)
    order_no: str = Field(max_length=128)
    channel: Channel
    person_id: str = PersonId
    amount_fen: int = Fen
    paid_at: Timestamp
    lines: list[OrderLine] = Field(default_factory=list)
    shop_id: str | None = None
    source: SourceRef | None = None


@event_type("siyu.order.completed", topic=Topic.ORDERS)
class OrderCompleted(EventData):
    """The buyer confirmed receipt (or the platform completed the trade): the return window starts."""

    order_id: str = Field(max_length=200)
    order_no: str = Field(max_length=128)
    person_id: str = PersonId
    completed_at: Timestamp


@event_type("siyu.order.refunded", topic=Topic.ORDERS)
class OrderRefunded(EventData):
    """Money went back to the buyer, in full or in part. Amounts are of this refund, not cumulative."""

    order_id: str = Field(max_length=200)
    order_no: str = Field(max_length=128)
    refund_id: str
    person_id: str = PersonId
    amount_fen: int = Fen
    full: bool
    refunded_at: Timestamp
    line_id: str | None = None


@event_type("siyu.order.closed", topic=Topic.ORDERS)
class OrderClosed(EventData):
    """The order was closed without completing (cancelled, closed by the platform, closed after refund)."""

    order_id: str = Field(max_length=200)
    order_no: str = Field(max_length=128)
    person_id: str = PersonId
    closed_at: Timestamp
    reason: str | None = None
