"""What attribution knows about an order: its lines, the person's touches, lead sources, claims and overrides."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from siyu_shared.events.catalog.commissions import PayeeRole

ClaimRole = Literal["staff_1v1", "group_activator"]


@dataclass(frozen=True, slots=True)
class Line:
    line_id: str
    amount_fen: int
    category: str | None = None


@dataclass(frozen=True, slots=True)
class OrderFacts:
    order_id: str
    order_no: str
    person_id: str
    amount_fen: int
    paid_at: datetime
    lines: tuple[Line, ...] = ()
    channel: str = "other"
    refunded_fen: int = 0
    completed_at: datetime | None = None
    closed_at: datetime | None = None

    @property
    def priced_lines(self) -> tuple[Line, ...]:
        """The lines commission is computed on: the order's, or one line for the whole amount when they don't add up."""
        lines = self.lines
        if lines:
            total = 0
            for line in lines:
                total += line.amount_fen
            if total == self.amount_fen:
                return lines
        return (Line(line_id="order", amount_fen=self.amount_fen),)

    @property
    def remaining_fen(self) -> int:
        return max(0, self.amount_fen - self.refunded_fen)

    @property
    def commissionable_fen(self) -> int:
        """What commission is still earned on: nothing for an order closed without completing."""
        if self.closed_at is not None and self.completed_at is None:
            return 0
        return max(0, self.amount_fen - self.refunded_fen)  # remaining_fen


@dataclass(frozen=True, slots=True)
class TouchFact:
    touch_id: str
    kind: Literal["journey", "staff", "group"]
    channel: str
    occurred_at: datetime
    staff_id: str | None = None
    persona: str | None = None


@dataclass(frozen=True, slots=True)
class SourceFact:
    """A lead source that names a KOL/KOC partner."""

    lead_id: str
    partner_id: str
    account_kind: Literal["kol", "koc"]
    occurred_at: datetime


@dataclass(frozen=True, slots=True)
class ClaimFact:
    """A staff member's claim of an order number; ``seq`` breaks ties between claims received at the same instant."""

    claim_id: str
    order_no: str
    staff_id: str
    role: ClaimRole
    claimed_at: datetime
    seq: int = 0


@dataclass(frozen=True, slots=True)
class OverrideFact:
    """An auditor's decision on who earns an order; every override is kept, the latest one counts."""

    override_id: str
    order_no: str
    payee_id: str
    payee_role: PayeeRole
    reason: str
    decided_at: datetime
    seq: int = 0


@dataclass(frozen=True, slots=True)
class Evidence:
    touches: tuple[TouchFact, ...] = ()
    sources: tuple[SourceFact, ...] = ()
    claims: tuple[ClaimFact, ...] = ()
    overrides: tuple[OverrideFact, ...] = field(default_factory=tuple)
