"""Rules compiled once per rule-set version into plain Python closures: the service's one Python evaluator of the
rule language (batches, merges; no I/O). The set-based twin is ``adapters/rule_sql.py`` (backfills, the sweep).

A ``CompiledRules`` does the per-rule work once, when a tenant's rule set is loaded: the fast paths below only cover
values whose comparison is exact in plain Python (ints, Fractions, datetimes, strings, bools), everything else falls
back to the leaf definitions of ``evaluate.py``. An exclusive family keeps only its true rule of highest priority
(ties to the smaller rule id). ``tests/unit/test_compiled.py`` holds it to the language's semantics (the shared
cases, and a plain AST walk of the leaf definitions in ``tests/reference.py`` on random profiles).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any

from siyu_segmentation.domain.evaluate import (
    _compare_number,
    _fact_test,
    _fraction,
    fact_value,
)
from siyu_segmentation.domain.facts import ATTRIBUTE_PREFIX, Profile
from siyu_segmentation.domain.rules import Aggregate, AllOf, AnyOf, Condition, FactTest, Not, walk
from siyu_segmentation.domain.tagging import ActiveRule, Decision, aggregate_label, jsonable

_ORDERED = ("lt", "lte", "gt", "gte", "between")


_UNSET: Any = object()
_EXACT = frozenset({int, Fraction})
_PY_OPS = {"lt": "<", "lte": "<=", "gt": ">", "gte": ">="}


def _count_orders(orders: Sequence[Any], cutoff: datetime | None) -> int:
    n = 0
    for o in orders:
        if not o.voided and (cutoff is None or o.paid_at >= cutoff):
            n += 1
    return n


def _count_touches(touches: Sequence[Any], cutoff: datetime | None, channel: str | None) -> int:
    n = 0
    for t in touches:
        if (
            t.status == "sent"
            and (cutoff is None or t.occurred_at >= cutoff)
            and (channel is None or t.channel == channel)
        ):
            n += 1
    return n


def _order_aggregate(
    orders: Sequence[Any], cutoff: datetime | None, category: str | None, field: str, fn: str
) -> int | Fraction | None:
    """An orders aggregate whose window starts at ``cutoff`` (computed once per person): ``count`` and ``sum`` of
    nothing are 0, ``avg`` / ``min`` / ``max`` of nothing are missing; ``net_fen`` is paid less refunded."""
    kept = [
        o
        for o in orders
        if not o.voided and (cutoff is None or o.paid_at >= cutoff) and (category is None or category in o.categories)
    ]
    if fn == "count":
        return len(kept)
    values: list[int] = [int(o.amount_fen - o.refunded_fen if field == "net_fen" else getattr(o, field)) for o in kept]
    if fn == "sum":
        return sum(values)
    if not values:
        return None
    if fn == "avg":
        return Fraction(sum(values), len(values))
    return min(values) if fn == "min" else max(values)


def aggregate_function(agg: Aggregate) -> Callable[[Profile, datetime], int | Fraction | None]:
    """The aggregate's value on a person as a closure with its fields read once."""
    within = agg.within
    if agg.source == "touches":
        channel = agg.channel
        return lambda p, now: _count_touches(p.touches, None if within is None else now - within, channel)
    category, field, fn = agg.category, agg.field or "amount_fen", agg.fn
    return lambda p, now: _order_aggregate(p.orders, None if within is None else now - within, category, field, fn)


class _Source:
    """Python source of one ``decide(p, now)`` function for a rule set, with its constants in a namespace."""

    def __init__(self) -> None:
        self.namespace: dict[str, Any] = {
            "_UNSET": _UNSET,
            "_EXACT": _EXACT,
            "_cn": _compare_number,
            "_count_orders": _count_orders,
            "_count_touches": _count_touches,
            "_order_aggregate": _order_aggregate,
        }
        self.prelude: list[str] = []
        self._cutoffs: dict[timedelta, str] = {}
        self._aggregates: dict[tuple[Any, ...], str] = {}

    def const(self, value: Any) -> str:
        name = f"k{len(self.namespace)}"
        self.namespace[name] = value
        return name

    def cutoff(self, delta: timedelta) -> str:
        if delta not in self._cutoffs:
            name = self._cutoffs[delta] = f"c{len(self._cutoffs)}"
            self.prelude.append(f"{name} = now - {self.const(delta)}")
        return self._cutoffs[delta]

    def aggregate(self, agg: Aggregate) -> str:
        """A lazily computed local holding the aggregate's value (computed once per person, whatever the number of
        rules that test it)."""
        key = (agg.source, agg.fn, agg.field, agg.within, agg.category, agg.channel)
        if key not in self._aggregates:
            name = self._aggregates[key] = f"a{len(self._aggregates)}"
            self.prelude.append(f"{name} = _UNSET")
            cutoff = self.cutoff(agg.within) if agg.within is not None else "None"
            if agg.source == "touches":
                compute = f"_count_touches(p.touches, {cutoff}, {self.const(agg.channel)})"
            elif agg.fn == "count" and agg.category is None:
                compute = f"_count_orders(p.orders, {cutoff})"
            else:
                scope = ", ".join(self.const(x) for x in (agg.category, agg.field or "amount_fen", agg.fn))
                compute = f"_order_aggregate(p.orders, {cutoff}, {scope})"
            self._aggregates[key] = f"({name} if {name} is not _UNSET else ({name} := {compute}))"
        return self._aggregates[key]

    def number(self, value: str, op: str, operand: Any) -> str:
        """``_compare_number(op, value, operand)`` on a value that is not None, inline for exact numbers."""
        fallback = f"_cn({op!r}, _x, {self.const(operand)})"
        if op not in _ORDERED:
            return f"(_x := {value}) is not None and {fallback}"
        exact = _fraction(operand)  # as _compare_number makes it; an int when whole (int comparisons are faster)
        if op == "between":
            low, high = (self.const(_whole(x)) for x in exact)
            test = f"{low} <= _x <= {high}"
        else:
            test = f"_x {_PY_OPS[op]} {self.const(_whole(exact))}"
        return f"(_x := {value}) is not None and ({test} if type(_x) in _EXACT else {fallback})"

    def condition(self, condition: Condition) -> str:
        if isinstance(condition, AllOf):
            return "(" + " and ".join(self.condition(item) for item in condition.items) + ")"
        if isinstance(condition, AnyOf):
            return "(" + " or ".join(self.condition(item) for item in condition.items) + ")"
        if isinstance(condition, Not):
            return f"(not {self.condition(condition.item)})"
        if isinstance(condition, Aggregate):
            return f"({self.number(self.aggregate(condition), condition.op, condition.value)})"
        return f"({self.fact(condition)})"

    def fact(self, test: FactTest) -> str:
        fact, op, operand, kind = test.fact, test.op, test.value, test.kind
        value = f"V.get({fact!r})"
        if kind == "time" and op in ("within", "older_than"):
            compare = ">=" if op == "within" else "<"
            return f"(_x := {value}) is not None and _x {compare} {self.cutoff(operand)}"
        if kind == "number" and op != "exists":
            return self.number(value, op, operand)
        if kind in ("text", "bool") and op in ("eq", "ne") and type(operand) in (str, bool):
            # _same on a str or bool operand: the same type and equal (a missing fact is false either way).
            same = f"type(_x) is {type(operand).__name__} and _x == {self.const(operand)}"
            if op == "eq":
                return f"(_x := {value}) is not None and {same}"
            return f"(_x := {value}) is not None and not ({same})"
        if kind == "set" and op == "exists":
            return f"bool({value}) is {operand!r}"
        return f"{self.const(lambda p, now, test=test: _fact_test(test, p, now))}(p, now)"


def _whole(value: Any) -> Any:
    if isinstance(value, Fraction) and value.denominator == 1:
        return int(value)
    return value


def _compile_decide(
    rules: Sequence[ActiveRule], exclusive: Mapping[str, bool]
) -> Callable[[Profile, datetime], dict[str, Decision]]:
    """One Python function deciding every rule of the set: each leaf inline, each aggregate computed once, an
    exclusive family tested by priority (ties to the smaller rule id) until its first true rule."""
    source = _Source()
    body: list[str] = []

    def hold(rule: ActiveRule) -> str:
        decision = source.const(Decision(rule.tag, rule.family, rule.rule_id, rule.version))
        return f"held[{rule.tag!r}] = {decision}"

    families: dict[str, list[ActiveRule]] = {}
    for rule in rules:
        if rule.family is not None and exclusive.get(rule.family, False):
            families.setdefault(rule.family, []).append(rule)
        else:
            body += [f"if {source.condition(rule.condition)}:", f"    {hold(rule)}"]
    for members in families.values():
        for i, rule in enumerate(sorted(members, key=lambda r: (-r.priority, r.rule_id))):
            body += [f"{'if' if i == 0 else 'elif'} {source.condition(rule.condition)}:", f"    {hold(rule)}"]
    lines = ["def decide(p, now):", "    V = p.values", "    held = {}"]
    lines += [f"    {line}" for line in (*source.prelude, *body)]
    lines.append("    return held")
    namespace = source.namespace
    exec(compile("\n".join(lines), "<rules>", "exec"), namespace)  # our own generated source, from a validated AST
    decide: Callable[[Profile, datetime], dict[str, Decision]] = namespace["decide"]
    return decide


class CompiledRules:
    """A tenant's rules compiled once (cache it with the rule-set version): ``decide`` gives the tags a person
    should hold now, each with the rule version that puts it there; ``deciding_facts`` the facts the rules of some
    tags looked at, as JSON-ready values (for `tags.changed`)."""

    def __init__(self, rules: Sequence[ActiveRule], exclusive: Mapping[str, bool]) -> None:
        self.decide = _compile_decide(rules, exclusive)
        self._leaves: dict[str, list[tuple[str, Callable[[Profile, datetime], Any]]]] = {}
        facts: set[str] = set()
        self.reads_attributes = False
        """Whether a rule reads a form answer (``attr.*``)."""
        for r in rules:
            leaves = self._leaves.setdefault(r.tag, [])
            for leaf in walk(r.condition):
                if isinstance(leaf, FactTest):
                    leaves.append((leaf.fact, _fact_reader(leaf)))
                    if leaf.fact.startswith(ATTRIBUTE_PREFIX):
                        self.reads_attributes = True
                    else:
                        facts.add(leaf.fact)
                else:
                    leaves.append((aggregate_label(leaf), _aggregate_reader(leaf)))
        self._order = [r.tag for r in rules]
        self.facts: frozenset[str] = frozenset(facts)
        """The profile facts the rules read (a profile needs no others to be decided)."""

    def deciding_facts(self, tags: Iterable[str], profile: Profile, now: datetime) -> dict[str, Any]:
        wanted = set(tags)
        out: dict[str, Any] = {}
        for tag in self._order:
            if tag in wanted:
                for label, read in self._leaves[tag]:
                    # A label names its value (the fact, or the aggregate with its window and scope): once read,
                    # reading it again for another leaf or tag would write the same value in the same place.
                    if label not in out:
                        out[label] = read(profile, now)
        return out


def _fact_reader(leaf: FactTest) -> Callable[[Profile, datetime], Any]:
    return lambda p, now: jsonable(fact_value(leaf, p))


def _aggregate_reader(leaf: Aggregate) -> Callable[[Profile, datetime], Any]:
    value = aggregate_function(leaf)
    return lambda p, now: jsonable(value(p, now))
