"""The double-entry commission ledger: append-only postings in integer fen, every transaction summing to zero.

Sign convention: debits positive, credits negative. Accounts:

- ``expense:commission``: the brand's commission expense (debited when commission accrues);
- ``held:<payee>``: earned but not yet payable (the order is inside its holding period);
- ``payable:<payee>``: payable on the payee's statement for the entry's period.

An accrual debits expense and credits held (or payable, once the order is settled); a reversal does the
opposite; settlement moves an order's held balance to payable. Nothing is ever edited: a change of mind is a new
transaction, and ``reconcile`` posts only the difference between what an order owes each payee and what it should.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, NamedTuple

from siyu_attribution.domain.commission import PayeeKey
from siyu_shared.events.catalog.commissions import PayeeRole
from siyu_shared.ids import NameIds

EXPENSE = "expense:commission"
EntryKind = Literal["accrual", "reversal", "settlement"]
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "siyu:attribution:ledger")
_IDS = NameIds(_NAMESPACE)
_new_entry = tuple.__new__


_SETTLED = "holding_period_over"


HELD = "held:"
PAYABLE = "payable:"


def held(payee_id: str) -> str:
    return HELD + payee_id


def payable(payee_id: str) -> str:
    return PAYABLE + payee_id


class Entry(NamedTuple):
    """One leg of a transaction. A tuple, in the column order of ``ledger_entries``: a replay writes entries as they
    come out of the book, and an order makes several of them (a tuple costs a fraction of a frozen dataclass)."""

    tenant: str
    entry_id: str
    txn_id: str
    kind: EntryKind
    account: str
    amount_fen: int
    order_id: str
    payee_id: str
    payee_role: PayeeRole
    rule: str
    plan_id: str
    plan_version: int
    attribution_id: str
    posted_at: datetime
    period: str


class Posting(NamedTuple):
    """Where the entries of one unit of work come from (same for every transaction it posts)."""

    tenant: str
    order_id: str
    cause: str
    plan_id: str
    plan_version: int
    attribution_id: str
    posted_at: datetime
    period: str


def stable_id(*parts: str) -> str:
    """Ids derived from the cause: replaying the same events yields the very same ledger, id for id.

    A name-based UUID (version 5 in this service's namespace), built cheaply: this runs several times for every
    order replayed.
    """
    return _IDS("/".join(parts))


def owed(entries: Iterable[Entry]) -> dict[PayeeKey, int]:
    """What the order currently owes each payee (held and payable together)."""
    out: dict[PayeeKey, int] = {}
    for entry in entries:
        if entry.account != EXPENSE:
            key = (entry.payee_id, entry.payee_role)
            out[key] = out.get(key, 0) - entry.amount_fen
    return out


def held_balances(entries: Iterable[Entry]) -> dict[PayeeKey, int]:
    out: dict[PayeeKey, int] = {}
    for entry in entries:
        if entry.account.startswith(HELD):
            key = (entry.payee_id, entry.payee_role)
            out[key] = out.get(key, 0) - entry.amount_fen
    return {k: v for k, v in out.items() if v}


def _transaction(
    posting: Posting, key: PayeeKey, debit: str, credit: str, amount: int, kind: EntryKind, rule: str
) -> tuple[Entry, Entry]:
    tenant, order_id, cause, plan_id, plan_version, attribution_id, posted_at, period = posting
    payee_id, role = key
    txn_id = stable_id(tenant, order_id, cause, kind, payee_id, role)
    # tuple.__new__ straight: Entry(...) goes through a Python-level __new__, most of an entry's cost.
    rest = (order_id, payee_id, role, rule, plan_id, plan_version, attribution_id, posted_at, period)
    return (
        _new_entry(Entry, (tenant, f"{txn_id}:d", txn_id, kind, debit, amount, *rest)),
        _new_entry(Entry, (tenant, f"{txn_id}:c", txn_id, kind, credit, -amount, *rest)),
    )


def reconcile(
    posting: Posting,
    *,
    existing: Iterable[Entry],
    wanted: Mapping[PayeeKey, int],
    settled: bool,
    rules: Mapping[PayeeKey, str],
) -> list[Entry]:
    """Transactions that bring what the order owes each payee to ``wanted`` (accruals and reversals).

    Before settlement the movement goes through ``held``; after it, straight to ``payable`` (an adjustment on the
    payee's next open statement). Payees absent from ``wanted`` are brought to zero.
    """
    current = owed(existing) if existing else None
    out: list[Entry] = []
    cause = posting.cause
    keys = sorted(wanted.keys() | current.keys()) if current else sorted(wanted) if len(wanted) > 1 else wanted
    for key in keys:
        diff = wanted.get(key, 0) - current.get(key, 0) if current else wanted[key]
        if diff == 0:
            continue
        account = payable(key[0]) if settled else held(key[0])
        # The cause (paid, claim, refund…) and the attribution rule that sets the payee's share.
        rule = f"{cause}; {rules[key]}" if key in rules else cause
        if diff > 0:
            out += _transaction(posting, key, EXPENSE, account, diff, "accrual", rule)
        else:
            out += _transaction(posting, key, account, EXPENSE, -diff, "reversal", rule)
    return out


def settle(posting: Posting, *, existing: Iterable[Entry]) -> list[Entry]:
    """Move everything the order holds for its payees to their payable accounts (the holding period is over)."""
    out: list[Entry] = []
    for key, amount in sorted(held_balances(existing).items()):
        if amount > 0:
            out += _transaction(posting, key, held(key[0]), payable(key[0]), amount, "settlement", _SETTLED)
        else:
            out += _transaction(posting, key, payable(key[0]), held(key[0]), -amount, "settlement", _SETTLED)
    return out


def transaction_sums(entries: Iterable[Entry]) -> dict[str, int]:
    sums: dict[str, int] = defaultdict(int)
    for entry in entries:
        sums[entry.txn_id] += entry.amount_fen
    return dict(sums)


@dataclass(frozen=True, slots=True)
class StatementLine:
    statement_id: str
    payee_id: str
    period: str
    total_fen: int
    entry_count: int


def statements(tenant: str, period: str, entries: Iterable[Entry]) -> list[StatementLine]:
    """Per payee: what became payable in ``period`` (payable entries of that period, credits as positive pay)."""
    totals: dict[str, int] = defaultdict(int)
    counts: dict[str, int] = defaultdict(int)
    for entry in entries:
        if entry.period == period and entry.account.startswith(PAYABLE):
            totals[entry.payee_id] -= entry.amount_fen
            counts[entry.payee_id] += 1
    return [
        StatementLine(stable_id(tenant, "statement", payee, period), payee, period, totals[payee], counts[payee])
        for payee in sorted(totals)
    ]
