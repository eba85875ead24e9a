"""The rule language's semantics written plainly, for tests only: an AST walk over the leaf definitions of
``domain/evaluate.py``, the aggregates by their definition, and an exclusive family's winner (highest priority, ties
to the smaller rule id). The service has one Python evaluator, the compiled rules; the tests hold it to this."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from fractions import Fraction
from typing import Any

from siyu_segmentation.domain.evaluate import _compare_number, _fact_test, fact_value
from siyu_segmentation.domain.facts import Profile
from siyu_segmentation.domain.rules import Aggregate, AllOf, AnyOf, Condition, FactTest, Not, walk
from siyu_segmentation.domain.tagging import ActiveRule, Decision, aggregate_label, jsonable


def evaluate(condition: Condition, profile: Profile, now: datetime) -> bool:
    if isinstance(condition, AllOf):
        return all(evaluate(item, profile, now) for item in condition.items)
    if isinstance(condition, AnyOf):
        return any(evaluate(item, profile, now) for item in condition.items)
    if isinstance(condition, Not):
        return not evaluate(condition.item, profile, now)
    if isinstance(condition, Aggregate):
        return _compare_number(condition.op, aggregate_value(condition, profile, now), condition.value)
    return _fact_test(condition, profile, now)


def aggregate_value(agg: Aggregate, profile: Profile, now: datetime) -> int | Fraction | None:
    cutoff = now - agg.within if agg.within is not None else None
    if agg.source == "touches":
        return sum(
            1
            for t in profile.touches
            if t.status == "sent"
            and (cutoff is None or t.occurred_at >= cutoff)
            and (agg.channel is None or t.channel == agg.channel)
        )
    orders = [
        o
        for o in profile.orders
        if not o.voided
        and (cutoff is None or o.paid_at >= cutoff)
        and (agg.category is None or agg.category in o.categories)
    ]
    if agg.fn == "count":
        return len(orders)
    values = [int(getattr(o, agg.field or "amount_fen")) for o in orders]
    if agg.fn == "sum":
        return sum(values)
    if not values:
        return None
    if agg.fn == "avg":
        return Fraction(sum(values), len(values))
    return min(values) if agg.fn == "min" else max(values)


def decide(
    rules: Sequence[ActiveRule], exclusive: Mapping[str, bool], profile: Profile, now: datetime
) -> dict[str, Decision]:
    winners: dict[str, ActiveRule] = {}
    held: dict[str, Decision] = {}
    for rule in rules:
        if not evaluate(rule.condition, profile, now):
            continue
        if rule.family is not None and exclusive.get(rule.family, False):
            best = winners.get(rule.family)
            if best is None or (rule.priority, best.rule_id) > (best.priority, rule.rule_id):
                winners[rule.family] = rule
        else:
            held[rule.tag] = Decision(rule.tag, rule.family, rule.rule_id, rule.version)
    for rule in winners.values():
        held[rule.tag] = Decision(rule.tag, rule.family, rule.rule_id, rule.version)
    return held


def deciding_facts(rules: Iterable[ActiveRule], tags: Iterable[str], profile: Profile, now: datetime) -> dict[str, Any]:
    wanted = set(tags)
    out: dict[str, Any] = {}
    for rule in rules:
        if rule.tag not in wanted:
            continue
        for leaf in walk(rule.condition):
            if isinstance(leaf, FactTest):
                out[leaf.fact] = jsonable(fact_value(leaf, profile))
            elif isinstance(leaf, Aggregate):
                out[aggregate_label(leaf)] = jsonable(aggregate_value(leaf, profile, now))
    return out
