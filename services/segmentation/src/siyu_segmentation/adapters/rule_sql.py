"""The SQL compiler: the rule AST that ``domain/compiled.py`` compiles to Python (leaf meanings in
``domain/evaluate.py``), as a boolean over a ``profiles`` row.

Used for everything set-based: backfills, the recency sweep, dry runs and member queries. Every leaf is wrapped
in ``coalesce(…, false)`` so SQL's NULL logic cannot leak: a test on a missing fact is false and ``not`` of it is
true, exactly as in Python. The evaluation time is a bound parameter, never ``now()``, so a sweep can run "as of"
any instant (and tests control the clock).
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    FromClause,
    Numeric,
    and_,
    case,
    cast,
    false,
    func,
    literal,
    not_,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.types import Text

from siyu_segmentation.adapters.tables import order_facts, touch_facts
from siyu_segmentation.domain.facts import ATTRIBUTE_PREFIX
from siyu_segmentation.domain.rules import Aggregate, AllOf, AnyOf, Condition, FactTest, Not


def compile_condition(condition: Condition, profile: FromClause, now: datetime) -> ColumnElement[bool]:
    if isinstance(condition, AllOf):
        return and_(*(compile_condition(item, profile, now) for item in condition.items))
    if isinstance(condition, AnyOf):
        return or_(*(compile_condition(item, profile, now) for item in condition.items))
    if isinstance(condition, Not):
        return not_(compile_condition(condition.item, profile, now))
    if isinstance(condition, Aggregate):
        leaf = _number_test(condition.op, aggregate_expr(condition, profile, now), condition.value)
    elif condition.fact.startswith(ATTRIBUTE_PREFIX):
        leaf = _attribute_test(condition, profile)
    else:
        leaf = _fact_test(condition, profile, now)
    return func.coalesce(leaf, false(), type_=Boolean)


def aggregate_expr(agg: Aggregate, profile: FromClause, now: datetime) -> ColumnElement[Any]:
    """A correlated scalar subquery: the aggregate over this profile's orders or touches."""
    if agg.source == "touches":
        t = touch_facts
        where = [t.c.tenant == profile.c.tenant, t.c.person_id == profile.c.person_id, t.c.status == "sent"]
        if agg.within is not None:
            where.append(t.c.occurred_at >= now - agg.within)
        if agg.channel is not None:
            where.append(t.c.channel == agg.channel)
        return select(func.count()).select_from(t).where(*where).scalar_subquery()
    o = order_facts
    where = [o.c.tenant == profile.c.tenant, o.c.person_id == profile.c.person_id, not_(o.c.voided)]
    if agg.within is not None:
        where.append(o.c.paid_at >= now - agg.within)
    if agg.category is not None:
        where.append(literal(agg.category) == func.any(o.c.categories))
    if agg.fn == "count":
        return select(func.count()).select_from(o).where(*where).scalar_subquery()
    field: ColumnElement[Any] = (
        o.c.amount_fen - o.c.refunded_fen if agg.field == "net_fen" else o.c[agg.field or "amount_fen"]
    )
    value: ColumnElement[Any]
    if agg.fn == "sum":
        value = func.coalesce(func.sum(field), 0)
    elif agg.fn == "avg":
        value = func.avg(field)
    else:
        value = func.min(field) if agg.fn == "min" else func.max(field)
    return select(value).select_from(o).where(*where).scalar_subquery()


def _num(value: Any) -> ColumnElement[Any]:
    # Decimal semantics on both sides: Python compares Fraction(str(x)), SQL numeric of the same text.
    return cast(literal(str(value)), Numeric)


def _number_test(op: str, expr: ColumnElement[Any], operand: Any) -> Any:
    if op == "eq":
        return expr == _num(operand)
    if op == "ne":
        return expr != _num(operand)
    if op == "lt":
        return expr < _num(operand)
    if op == "lte":
        return expr <= _num(operand)
    if op == "gt":
        return expr > _num(operand)
    if op == "gte":
        return expr >= _num(operand)
    if op == "between":
        return and_(expr >= _num(operand[0]), expr <= _num(operand[1]))
    if op == "in":
        return or_(*(expr == _num(v) for v in operand))
    if op == "not_in":
        return and_(expr.is_not(None), *(expr != _num(v) for v in operand))
    raise ValueError(op)


def _ordered_test(op: str, expr: ColumnElement[Any], operand: Any) -> Any:
    if op == "lt":
        return expr < operand
    if op == "lte":
        return expr <= operand
    if op == "gt":
        return expr > operand
    if op == "gte":
        return expr >= operand
    if op == "between":
        return and_(expr >= operand[0], expr <= operand[1])
    raise ValueError(op)


def _fact_test(test: FactTest, profile: FromClause, now: datetime) -> Any:
    col: ColumnElement[Any] = profile.c[test.fact]
    kind, op, operand = test.kind, test.op, test.value
    if kind == "set":
        if op == "exists":
            return (func.cardinality(col) > 0) if operand else (func.cardinality(col) == 0)
        if op == "contains":
            return literal(operand) == func.any(col)
        overlap = col.op("&&", is_comparison=True)(cast(list(operand), ARRAY(Text)))
        return overlap if op == "in" else not_(overlap)
    if op == "exists":
        return col.is_not(None) if operand else col.is_(None)
    if kind == "time":
        if op == "within":
            return col >= now - operand
        if op == "older_than":
            return col < now - operand
        return _ordered_test(op, col, operand)
    if kind == "number":
        return _number_test(op, col, operand)
    if op == "contains":
        return func.strpos(col, operand) > 0
    if op == "starts_with":
        return func.starts_with(col, operand)
    if op == "eq":
        return col == operand
    if op == "ne":
        return col != operand
    if op == "in":
        return col.in_(list(operand))
    if op == "not_in":
        return and_(col.is_not(None), col.not_in(list(operand)))
    raise ValueError(op)


def _attribute_test(test: FactTest, profile: FromClause) -> Any:
    name = test.fact.removeprefix(ATTRIBUTE_PREFIX)
    attrs = profile.c.attributes
    value = attrs[name]
    text_value = attrs[name].astext
    kind = func.jsonb_typeof(value)
    op, operand = test.op, test.value
    if op == "exists":
        present = attrs.has_key(name)
        return present if operand else not_(present)
    if op == "contains":
        return case(
            (kind == "array", value.has_key(operand)),
            (kind == "string", func.strpos(text_value, operand) > 0),
            else_=false(),
        )
    if op == "starts_with":
        return and_(kind == "string", func.starts_with(text_value, operand))
    if op in ("lt", "lte", "gt", "gte", "between"):
        number = case((kind == "number", cast(text_value, Numeric)))
        return _number_test(op, number, operand)
    scalar = and_(value.is_not(None), kind != "array")
    if op == "eq":
        return and_(scalar, value == _json(operand))
    if op == "ne":
        return and_(scalar, value != _json(operand))
    if op == "in":
        return and_(scalar, or_(*(value == _json(v) for v in operand)))
    if op == "not_in":
        return and_(scalar, *(value != _json(v) for v in operand))
    raise ValueError(op)


def _json(value: Any) -> ColumnElement[Any]:
    if isinstance(value, Decimal):
        value = str(value)
    return cast(literal(json.dumps(value)), JSONB)
