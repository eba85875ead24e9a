"""One order driven through the pure book the way the service drives it over Postgres: facts arrive, the book
decides, its entries are appended; shared by the ledger property tests and the book's invariants."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime

from siyu_attribution.domain import book, ledger
from siyu_attribution.domain.commission import PayeeKey
from siyu_attribution.domain.facts import ClaimFact, Evidence, OrderFacts, OverrideFact, TouchFact
from siyu_attribution.domain.ledger import Entry
from siyu_attribution.domain.periods import period_of
from siyu_attribution.domain.plans import PlanVersion


@dataclass
class BookRun:
    order: OrderFacts
    evidence: Evidence
    plan: PlanVersion
    entries: list[Entry] = field(default_factory=list)
    current: book.AttributionRecord | None = None
    settled: bool = False
    last_closed: str | None = None

    def owed(self) -> dict[PayeeKey, int]:
        """What the order owes each payee now (payees owed nothing left out)."""
        return {k: v for k, v in ledger.owed(self.entries).items() if v}

    def decide(self, cause: str, at: datetime) -> book.Outcome:
        """What ``book.reattribute`` would do now, without recording it."""
        return book.reattribute(
            tenant="t",
            order=self.order,
            evidence=self.evidence,
            plan=self.plan,
            existing=self.entries,
            current=self.current,
            settled=self.settled,
            cause=cause,
            at=at,
            last_closed=self.last_closed,
        )

    def reattribute(self, cause: str, at: datetime) -> book.Outcome:
        outcome = self.decide(cause, at)
        self.current = outcome.attribution or self.current
        self.entries += outcome.entries
        return outcome

    def rescale(self, cause: str, at: datetime) -> None:
        assert self.current is not None
        self.entries += book.rescale(
            tenant="t",
            order=self.order,
            current=self.current,
            existing=self.entries,
            settled=self.settled,
            cause=cause,
            at=at,
            last_closed=self.last_closed,
        ).entries

    def claim(self, claim: ClaimFact) -> None:
        self.evidence = dataclasses.replace(self.evidence, claims=(*self.evidence.claims, claim))

    def override(self, decided: OverrideFact) -> None:
        self.evidence = dataclasses.replace(self.evidence, overrides=(*self.evidence.overrides, decided))

    def touch(self, touch: TouchFact) -> None:
        self.evidence = dataclasses.replace(self.evidence, touches=(*self.evidence.touches, touch))

    def refund(self, amount_fen: int, cause: str, at: datetime) -> None:
        """A refund of at most what is left of the order, and the book's rescale for it."""
        amount = min(amount_fen, self.order.remaining_fen)
        self.order = dataclasses.replace(self.order, refunded_fen=self.order.refunded_fen + amount)
        self.rescale(cause, at)

    def close_order(self, cause: str, at: datetime) -> None:
        self.order = dataclasses.replace(self.order, closed_at=at)
        self.rescale(cause, at)

    def settle(self, at: datetime) -> None:
        assert self.current is not None
        self.entries += book.release(
            tenant="t",
            order=self.order,
            current=self.current,
            existing=self.entries,
            at=at,
            last_closed=self.last_closed,
        )
        self.settled = True

    def close_period(self, at: datetime) -> None:
        self.last_closed = period_of(at)
