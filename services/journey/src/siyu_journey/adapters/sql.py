"""SQL helpers shared by the repositories."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ARRAY, BigInteger, ColumnElement, String, and_, any_, bindparam, or_


def any_text(values: Iterable[str]) -> Any:
    """``= ANY(:array)``: one bound array instead of an IN list of hundreds of parameters to render and plan."""
    return any_(bindparam(None, list(values), type_=ARRAY(String)))


def any_int(values: Iterable[int]) -> Any:
    return any_(bindparam(None, list(values), type_=ARRAY(BigInteger)))


def persons_in(tenant_col: Any, person_col: Any, keys: Iterable[tuple[str, str]]) -> ColumnElement[bool]:
    """(tenant, person) pairs, grouped by tenant (a worker's batch usually holds one or a few tenants)."""
    by_tenant: dict[str, list[str]] = {}
    for tenant, person_id in keys:
        by_tenant.setdefault(tenant, []).append(person_id)
    return or_(*(and_(tenant_col == t, person_col == any_text(ids)) for t, ids in by_tenant.items()))
