"""commissions.v1: ledger movements and closed statements, for payroll and BI tools."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from siyu_shared.events.catalog.common import Fen, Timestamp
from siyu_shared.events.registry import EventData, event_type
from siyu_shared.events.topics import Topic
from siyu_shared.values import Period

PayeeRole = Literal["staff_1v1", "group_activator", "kol", "koc", "persona_team"]


class _Movement(EventData):
    entry_id: str
    order_id: str
    payee_id: str
    payee_role: PayeeRole
    amount_fen: int = Fen
    plan_id: str
    plan_version: int = Field(ge=1)
    attribution_id: str
    period: Period = Field(description="Statement period the entry falls in (YYYY-MM).")
    occurred_at: Timestamp
    rule: str | None = Field(
        default=None, description="What decided the movement, e.g. `first_claim/claim:<id>` or `refund:<refund_id>`."
    )
    account: str | None = Field(
        default=None, description="The payee-side ledger account: `held:<payee>` (holding period) or `payable:<payee>`."
    )


MOVEMENT_KEY = (
    "The id of the person who placed the order (not in the payload, which names the payee); also the CloudEvents "
    "`subject`. One order's movements stay in order with the person's other events."
)
STATEMENT_KEY = (
    "The payee id (`data.payee_id`): a statement is about a payee, not a person; also the CloudEvents `subject`."
)


@event_type("siyu.commission.accrued", topic=Topic.COMMISSIONS, key=MOVEMENT_KEY)
class CommissionAccrued(_Movement):
    """Commission was credited to a payee for an attributed order."""


@event_type("siyu.commission.reversed", topic=Topic.COMMISSIONS, key=MOVEMENT_KEY)
class CommissionReversed(_Movement):
    """Commission was clawed back (refund, re-attribution); `amount_fen` is the positive amount reversed."""

    reason: str


@event_type("siyu.statement.closed", topic=Topic.COMMISSIONS, key=STATEMENT_KEY)
class StatementClosed(EventData):
    """A payee's statement for a period was closed; it never changes afterwards."""

    statement_id: str
    payee_id: str
    period: Period
    total_fen: int
    entry_count: int = Field(ge=0)
    closed_at: Timestamp
