"""What each leaf of the rule language means on one person's facts: fact tests and number comparisons (no I/O).

The compiled rules (``compiled.py``, the service's only Python evaluator) inline the common cases and call these
for the rest; ``adapters/rule_sql.py`` is the set-based twin. Both run the same cases in the tests so they cannot
disagree. Semantics: a test on a missing fact is false (``exists: false`` aside); ``count`` and ``sum`` of nothing
are 0, ``avg``/``min``/``max`` of nothing are missing.
"""

from __future__ import annotations

from datetime import datetime
from fractions import Fraction
from typing import Any

from siyu_segmentation.domain.facts import ATTRIBUTE_PREFIX, Profile
from siyu_segmentation.domain.rules import FactTest


def fact_value(test: FactTest, profile: Profile) -> Any:
    if test.fact.startswith(ATTRIBUTE_PREFIX):
        return profile.attributes.get(test.fact.removeprefix(ATTRIBUTE_PREFIX))
    return profile.values.get(test.fact)


def _fact_test(test: FactTest, profile: Profile, now: datetime) -> bool:
    value = fact_value(test, profile)
    kind = test.kind
    if kind == "set":
        members = set(value or ())
        if test.op == "exists":
            return bool(members) is test.value
        if test.op == "contains":
            return bool(test.value in members)
        overlap = bool(members & set(test.value))
        return overlap if test.op == "in" else not overlap
    if test.op == "exists":
        return bool((value is not None) == test.value)
    if value is None:
        return False
    if kind == "time":
        assert isinstance(value, datetime)
        if test.op == "within":
            return bool(value >= now - test.value)
        if test.op == "older_than":
            return bool(value < now - test.value)
        return _compare_ordered(test.op, value, test.value)
    if kind == "attr":
        return _attribute_test(test.op, value, test.value)
    if test.op == "contains":
        return isinstance(value, str) and test.value in value
    if test.op == "starts_with":
        return isinstance(value, str) and value.startswith(test.value)
    if kind == "number":
        return _compare_number(test.op, value, test.value)
    return _compare_scalar(test.op, value, test.value)


def _same(a: object, b: object) -> bool:
    # JSON equality: true is not 1, 1 is 1.0.
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) and _is_number(b):
        return _as_fraction(a) == _as_fraction(b)
    return type(a) is type(b) and a == b


def _as_fraction(value: Any) -> Fraction:
    # Floats as written (0.1 is one tenth), the way Postgres reads a numeric literal.
    if isinstance(value, float):
        return Fraction(repr(value))
    return value if isinstance(value, Fraction) else Fraction(value)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float | Fraction) and not isinstance(value, bool)


def _compare_scalar(op: str, value: object, operand: Any) -> bool:
    if op == "eq":
        return _same(value, operand)
    if op == "ne":
        return not _same(value, operand)
    if op == "in":
        return any(_same(value, o) for o in operand)
    if op == "not_in":
        return not any(_same(value, o) for o in operand)
    return False


def _compare_number(op: str, value: object, operand: Any) -> bool:
    if not _is_number(value):
        return False
    if op in ("eq", "ne", "in", "not_in"):
        return _compare_scalar(op, value, operand)
    return _compare_ordered(op, _as_fraction(value), _fraction(operand))


def _fraction(operand: Any) -> Any:
    if isinstance(operand, tuple):
        return tuple(Fraction(o) for o in operand)
    return Fraction(operand)


def _compare_ordered(op: str, value: Any, operand: Any) -> bool:
    if op == "lt":
        return bool(value < operand)
    if op == "lte":
        return bool(value <= operand)
    if op == "gt":
        return bool(value > operand)
    if op == "gte":
        return bool(value >= operand)
    if op == "between":
        low, high = operand
        return bool(low <= value <= high)
    return False


def _attribute_test(op: str, value: object, operand: Any) -> bool:
    if op == "contains":
        if isinstance(value, list):
            return operand in value
        return isinstance(value, str) and operand in value
    if op == "starts_with":
        return isinstance(value, str) and value.startswith(operand)
    if op in ("lt", "lte", "gt", "gte", "between"):
        return _compare_number(op, value, operand)
    if isinstance(value, list):
        return False  # a list answer only answers contains / exists
    return _compare_scalar(op, value, operand)
