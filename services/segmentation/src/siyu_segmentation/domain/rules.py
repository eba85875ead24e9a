"""The rule language: a JSON/YAML condition parsed into a small validated AST.

Grammar (every node is a mapping):

- ``{"all": [c, …]}``, ``{"any": [c, …]}``, ``{"not": c}``
- a fact test: ``{"fact": "order_count", "gte": 10}`` (one fact, exactly one operator)
- an aggregate over a window: ``{"count": "orders", "within": "365d", "gt": 10}``,
  ``{"sum": "orders.net_fen", "within": "90d", "gte": 30000}``, ``{"count": "touches", "channel": "wecom_1v1"}``

Operators: eq ne lt lte gt gte in not_in between exists contains starts_with, and on time facts
within / older_than (a duration such as ``90d``, ``12w``, ``36h``, relative to the evaluation time).
A test on a fact the person does not have is false (except ``exists: false``), both in Python and in SQL.

The grammar is parsed by hand rather than by Pydantic models so that every error names the exact path of the bad
part in the rule's own words (``when.all[2].gte: expected a number``).

A rule is stored (``jsonb``) and compiled to SQL, so it holds only what both take: text without NUL and of a
length an operator writes, integers within int64, finite numbers, times that every layer holds (``Timestamp``),
and a size an operator writes by hand (:data:`MAX_ITEMS` conditions or operands in a list, :data:`MAX_DEPTH`
levels of nesting).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, TypeAlias, TypeGuard

from siyu_segmentation.domain.facts import ATTRIBUTE_PREFIX, FACTS, FactType
from siyu_shared.values import check_datetime, text_unstorable, unstorable

Scalar: TypeAlias = str | int | float | bool

COMPARE = ("eq", "ne", "lt", "lte", "gt", "gte")
OPERATORS = (*COMPARE, "in", "not_in", "between", "exists", "contains", "starts_with", "within", "older_than")
_ALLOWED: dict[str, set[str]] = {
    "number": {*COMPARE, "in", "not_in", "between", "exists"},
    "time": {"lt", "lte", "gt", "gte", "between", "exists", "within", "older_than"},
    "text": {"eq", "ne", "in", "not_in", "exists", "contains", "starts_with"},
    "set": {"contains", "in", "not_in", "exists"},
    "bool": {"eq", "ne", "exists"},
    "attr": {*COMPARE, "in", "not_in", "between", "exists", "contains", "starts_with"},
}
AGGREGATE_FNS = ("count", "sum", "avg", "min", "max")
ORDER_FIELDS = ("amount_fen", "refunded_fen", "net_fen")
_DURATION = re.compile(r"([0-9]{1,5})([hdw])")
_ATTRIBUTE = re.compile(r"[A-Za-z0-9_\-]{1,64}")
MAX_ITEMS = 1000
MAX_DEPTH = 32
MAX_TEXT = 1000
_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


class RuleError(ValueError):
    """A rule that cannot be accepted, with the path of the bad part."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


@dataclass(frozen=True, slots=True)
class FactTest:
    fact: str  # a name in FACTS, or attr.<name>
    op: str
    value: Any  # normalised: number, bool, str, datetime, timedelta, tuple

    @property
    def kind(self) -> FactType | Literal["attr"]:
        return "attr" if self.fact.startswith(ATTRIBUTE_PREFIX) else FACTS[self.fact]


@dataclass(frozen=True, slots=True)
class Aggregate:
    source: Literal["orders", "touches"]
    fn: str
    field: str | None  # orders: amount_fen | refunded_fen | net_fen; None for count
    within: timedelta | None
    category: str | None
    channel: str | None
    op: str
    value: Any


@dataclass(frozen=True, slots=True)
class AllOf:
    items: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    items: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Condition


Condition: TypeAlias = FactTest | Aggregate | AllOf | AnyOf | Not


def parse_duration(raw: object, path: str) -> timedelta:
    match = _DURATION.fullmatch(raw) if isinstance(raw, str) else None
    if match is None:
        raise RuleError(path, "expected a duration such as 90d, 12w or 36h")
    return int(match.group(1)) * _UNITS[match.group(2)]


def parse_condition(raw: object, path: str = "when", *, depth: int = 0) -> Condition:
    if not isinstance(raw, Mapping):
        raise RuleError(path, "expected an object (all, any, not, a fact test or an aggregate)")
    if depth >= MAX_DEPTH:
        raise RuleError(path, f"conditions nest at most {MAX_DEPTH} deep")
    keys = set(raw)
    for combinator in ("all", "any"):
        if combinator in keys:
            if keys != {combinator}:
                raise RuleError(path, f"`{combinator}` stands alone (unexpected {sorted(keys - {combinator})})")
            items = raw[combinator]
            if not isinstance(items, list) or not items:
                raise RuleError(f"{path}.{combinator}", "expected a non-empty list of conditions")
            if len(items) > MAX_ITEMS:
                raise RuleError(f"{path}.{combinator}", f"at most {MAX_ITEMS} conditions")
            parsed = tuple(
                parse_condition(item, f"{path}.{combinator}[{i}]", depth=depth + 1) for i, item in enumerate(items)
            )
            return AllOf(parsed) if combinator == "all" else AnyOf(parsed)
    if "not" in keys:
        if keys != {"not"}:
            raise RuleError(path, "`not` stands alone")
        return Not(parse_condition(raw["not"], f"{path}.not", depth=depth + 1))
    if "fact" in keys:
        return _parse_fact_test(raw, path)
    fns = keys & set(AGGREGATE_FNS)
    if fns:
        return _parse_aggregate(raw, path, fns)
    raise RuleError(path, "expected one of all, any, not, fact, or an aggregate (count, sum, avg, min, max)")


def _single_operator(raw: Mapping[str, Any], path: str, allowed: set[str], extra: set[str]) -> tuple[str, Any]:
    unknown = set(raw) - extra - set(OPERATORS)
    if unknown:
        raise RuleError(path, f"unknown key(s) {sorted(_shown(str(k)) for k in unknown)}")
    ops = [k for k in raw if k in OPERATORS and k not in extra]
    if len(ops) != 1:
        raise RuleError(path, f"expected exactly one operator, found {len(ops)}")
    op = ops[0]
    if op not in allowed:
        raise RuleError(f"{path}.{op}", f"operator not allowed here (allowed: {', '.join(sorted(allowed))})")
    return op, raw[op]


def _parse_fact_test(raw: Mapping[str, Any], path: str) -> FactTest:
    fact = raw["fact"]
    if not isinstance(fact, str):
        raise RuleError(f"{path}.fact", "expected a fact name")
    if fact.startswith(ATTRIBUTE_PREFIX):
        if not _ATTRIBUTE.fullmatch(fact.removeprefix(ATTRIBUTE_PREFIX)):
            raise RuleError(f"{path}.fact", "attribute names are letters, digits, _ and -")
        kind: str = "attr"
    elif fact in FACTS:
        kind = FACTS[fact]
    else:
        raise RuleError(f"{path}.fact", f"unknown fact {_shown(fact)} (known: {', '.join(sorted(FACTS))}, attr.<name>)")
    op, value = _single_operator(raw, path, _ALLOWED[kind], {"fact"})
    return FactTest(fact=fact, op=op, value=_operand(kind, op, value, f"{path}.{op}"))


def _parse_aggregate(raw: Mapping[str, Any], path: str, fns: set[str]) -> Aggregate:
    if len(fns) != 1:
        raise RuleError(path, f"one aggregate per test, found {sorted(fns)}")
    fn = fns.pop()
    target = raw[fn]
    if not isinstance(target, str):
        raise RuleError(f"{path}.{fn}", "expected `orders`, `touches` or `orders.<field>`")
    source, _, fld = target.partition(".")
    if source not in ("orders", "touches"):
        raise RuleError(f"{path}.{fn}", "aggregates are over `orders` or `touches`")
    if fn == "count":
        if fld:
            raise RuleError(f"{path}.{fn}", "count takes `orders` or `touches`, no field")
    elif source == "touches":
        raise RuleError(f"{path}.{fn}", "touches can only be counted")
    elif fld not in ORDER_FIELDS:
        raise RuleError(f"{path}.{fn}", f"expected orders.<field> with field one of {', '.join(ORDER_FIELDS)}")
    within = parse_duration(raw["within"], f"{path}.within") if "within" in raw else None
    category = _opt_text(raw, "category", path)
    channel = _opt_text(raw, "channel", path)
    if category is not None and source != "orders":
        raise RuleError(f"{path}.category", "only orders have categories")
    if channel is not None and source != "touches":
        raise RuleError(f"{path}.channel", "only touches have a channel")
    allowed = {*COMPARE, "in", "not_in", "between"}
    op, value = _single_operator(raw, path, allowed, {fn, "within", "category", "channel"})
    return Aggregate(
        source=source,  # type: ignore[arg-type]
        fn=fn,
        field=fld or None,
        within=within,
        category=category,
        channel=channel,
        op=op,
        value=_operand("number", op, value, f"{path}.{op}"),
    )


def _opt_text(raw: Mapping[str, Any], key: str, path: str) -> str | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, str):
        raise RuleError(f"{path}.{key}", "expected a string")
    return None if value is None else _text(value, f"{path}.{key}", 64)


def _shown(name: str) -> str:
    """A name the caller wrote, as an error message shows it (shortened)."""
    return repr(name if len(name) <= 64 else f"{name[:64]}…")


def _text(value: str, path: str, longest: int = MAX_TEXT) -> str:
    """``value`` if it can be stored as text (``siyu_shared.values``) and has at most ``longest`` characters."""
    if reason := text_unstorable(value):
        raise RuleError(path, f"text {reason}")
    if len(value) > longest:
        raise RuleError(path, f"at most {longest} characters")
    return value


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(value: int | float, path: str) -> int | float:
    """A number both Python and SQL compare as written: an integer within int64, a float that is finite."""
    if reason := unstorable(value, where=path):
        raise RuleError(path, reason.removeprefix(f"{path} "))
    return value


def _operand(kind: str, op: str, value: object, path: str) -> Any:
    if op == "exists":
        if not isinstance(value, bool):
            raise RuleError(path, "expected true or false")
        return value
    if op in ("within", "older_than"):
        return parse_duration(value, path)
    if op in ("in", "not_in"):
        if not isinstance(value, list) or not value:
            raise RuleError(path, "expected a non-empty list")
        if len(value) > MAX_ITEMS:
            raise RuleError(path, f"at most {MAX_ITEMS} values")
        element = "text" if kind == "set" else kind
        return tuple(_scalar(element, v, f"{path}[{i}]") for i, v in enumerate(value))
    if op == "between":
        if not isinstance(value, list) or len(value) != 2:
            raise RuleError(path, "expected [low, high]")
        low, high = (_ordered(kind, v, f"{path}[{i}]") for i, v in enumerate(value))
        if low > high:
            raise RuleError(path, "low is above high")
        return (low, high)
    if op in ("contains", "starts_with"):
        if not isinstance(value, str):
            raise RuleError(path, "expected a string")
        return _text(value, path)
    if op in ("lt", "lte", "gt", "gte"):
        return _ordered(kind, value, path)
    return _scalar(kind, value, path)  # eq, ne


def _ordered(kind: str, value: object, path: str) -> Any:
    if kind == "time":
        return _timestamp(value, path)
    if not _is_number(value):
        raise RuleError(path, "expected a number")
    return _number(value, path)


def _scalar(kind: str, value: object, path: str) -> Scalar:
    if kind == "number" and not _is_number(value):
        raise RuleError(path, "expected a number")
    if kind == "text" and not isinstance(value, str):
        raise RuleError(path, "expected a string")
    if kind == "bool" and not isinstance(value, bool):
        raise RuleError(path, "expected true or false")
    if kind == "attr" and not isinstance(value, str | int | float | bool):
        raise RuleError(path, "expected a string, number or boolean")
    if isinstance(value, str):
        return _text(value, path)
    if _is_number(value):
        return _number(value, path)
    return value  # type: ignore[return-value]


def _timestamp(value: object, path: str) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise RuleError(path, "expected an ISO 8601 timestamp with a timezone") from None
    else:
        raise RuleError(path, "expected an ISO 8601 timestamp with a timezone")
    if parsed.tzinfo is None:
        raise RuleError(path, "the timestamp needs a timezone")
    try:
        return check_datetime(parsed)
    except ValueError as exc:
        raise RuleError(path, str(exc)) from None


def walk(condition: Condition) -> list[FactTest | Aggregate]:
    """Every leaf test of a condition."""
    if isinstance(condition, AllOf | AnyOf):
        return [leaf for item in condition.items for leaf in walk(item)]
    if isinstance(condition, Not):
        return walk(condition.item)
    return [condition]


def depends_on_time(condition: Condition) -> bool:
    """Whether the outcome can change with no event, only because time passed (recency sweep candidates)."""
    return any(
        (isinstance(leaf, FactTest) and leaf.op in ("within", "older_than"))
        or (isinstance(leaf, Aggregate) and leaf.within is not None)
        for leaf in walk(condition)
    )


def needs_schedule(condition: Condition) -> bool:
    """Whether the recency sweep must re-decide it: time windows, or RFM scores recomputed on the schedule."""
    return depends_on_time(condition) or any(f.startswith("rfm_") for f in referenced_facts(condition))


def referenced_facts(condition: Condition) -> list[str]:
    return sorted({leaf.fact for leaf in walk(condition) if isinstance(leaf, FactTest)})
