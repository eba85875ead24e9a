"""Commission plans: which attribution model, rates by role and category, tiers, caps and the holding period.

Plans are versioned; an order is settled under the version in force when it was paid (``in_force``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, model_validator

from siyu_shared.events.catalog.commissions import PayeeRole
from siyu_shared.values import Count, Text

ModelName = Literal["first_claim", "first_touch", "last_touch", "linear", "time_decay", "position_based"]
TouchKindName = Literal["journey", "staff", "group"]
ANY_CATEGORY = "*"

# A plan is stored (jsonb) and read on every order: text without NUL, amounts a bigint holds, finite numbers,
# and as many categories and tiers as an operator writes by hand. Unknown keys are refused, not dropped: a
# misspelt term must not silently fall back to its default.
Category = Annotated[Text, Field(min_length=1, max_length=128)]
RatesBps = Annotated[dict[Category, int], Field(max_length=1000)]


class Tier(BaseModel):
    """From ``min_gmv_fen`` of the payee's monthly attributed GMV on, the role's rates are replaced by these."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_gmv_fen: Count
    rates_bps: RatesBps = Field(description="Category (or `*`) → basis points, for this tier.")


class RoleTerms(BaseModel):
    """How one payee role is paid."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rates_bps: RatesBps = Field(
        default_factory=lambda: {ANY_CATEGORY: 0},
        description="Category (or `*` for any other) → basis points of the attributed amount.",
    )
    tiers: list[Tier] = Field(default_factory=list, max_length=100)
    cap_per_order_fen: Count | None = None
    cap_per_month_fen: Count | None = None

    def rate_bps(self, category: str | None, month_gmv_fen: int) -> int:
        return compile_terms(self).rate_bps(category, month_gmv_fen)


class Rates(NamedTuple):
    """One role's terms compiled once: a rate is ``table.get(category, default)`` for the table of the payee's tier
    (``at``): a category without a rate of its own, or none, takes the default."""

    table: dict[str | None, int]  # category → basis points before any tier
    default: int  # the `*` rate (any other category, or none)
    # Per tier, highest threshold first: (min_gmv_fen, table, default) with the rates of every tier up to it merged
    # over the role's own, in threshold order.
    tiers: tuple[tuple[int, dict[str | None, int], int], ...]
    cap_per_order_fen: int | None
    cap_per_month_fen: int | None

    def at(self, month_gmv_fen: int) -> tuple[dict[str | None, int], int]:
        """The rate table (and its default) for a payee with this month-to-date attributed GMV."""
        for min_gmv, table, default in self.tiers:
            if month_gmv_fen >= min_gmv:
                return table, default
        return self.table, self.default

    def rate_bps(self, category: str | None, month_gmv_fen: int) -> int:
        table, default = self.at(month_gmv_fen) if self.tiers else (self.table, self.default)
        return table.get(category, default)  # no category (None) is never a key: the default


def compile_terms(terms: RoleTerms) -> Rates:
    """Tiers replace the role's rates from their threshold on, each over the ones below it (category by category);
    a category without a rate of its own takes `*`, and no `*` is zero."""
    own: dict[str | None, int] = {}
    own.update(terms.rates_bps.items())
    rates = own
    merged: list[tuple[int, dict[str | None, int], int]] = []
    for tier in sorted(terms.tiers, key=lambda t: t.min_gmv_fen):
        rates = {**rates}
        rates.update(tier.rates_bps.items())
        merged.append((tier.min_gmv_fen, rates, rates.get(ANY_CATEGORY, 0)))
    return Rates(
        own,
        own.get(ANY_CATEGORY, 0),
        tuple(reversed(merged)),
        terms.cap_per_order_fen,
        terms.cap_per_month_fen,
    )


_UNPAID = RoleTerms()


def _default_touch_kinds() -> list[TouchKindName]:
    return ["journey", "staff"]


def _default_roles() -> dict[PayeeRole, RoleTerms]:
    # Group activators earn activity credit, never commission (seed 004 §14): their rate stays at zero.
    return {
        "staff_1v1": RoleTerms(rates_bps={ANY_CATEGORY: 500}),
        "persona_team": RoleTerms(rates_bps={ANY_CATEGORY: 200}),
        "kol": RoleTerms(rates_bps={ANY_CATEGORY: 1000}),
        "koc": RoleTerms(rates_bps={ANY_CATEGORY: 500}),
        "group_activator": RoleTerms(),
    }


class PlanBody(BaseModel):
    """The terms of one plan version (what `POST /v1/plans` takes)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: ModelName = "first_claim"
    fallback_model: ModelName = Field(
        default="last_touch", description="Used while an order has no valid claim (first_claim model only)."
    )
    lookback_days: int = Field(default=30, ge=0, le=365)
    claim_window_days: int = Field(default=30, ge=0, le=365, description="Claims later than this after payment fail.")
    touch_kinds: list[TouchKindName] = Field(default_factory=_default_touch_kinds, max_length=10)
    half_life_hours: float = Field(default=72.0, gt=0, allow_inf_nan=False)
    position_weights: tuple[Count, Count, Count] = (40, 20, 40)
    return_window_days: int = Field(default=7, ge=0, le=90, description="Held after completion for this long.")
    roles: dict[PayeeRole, RoleTerms] = Field(default_factory=_default_roles)

    @model_validator(mode="after")
    def _sane(self) -> PlanBody:
        for role, terms in self.roles.items():
            for rate in [*terms.rates_bps.values(), *(r for t in terms.tiers for r in t.rates_bps.values())]:
                if not 0 <= rate <= 10_000:
                    raise ValueError(f"rate of {role} must be 0..10000 basis points")
        if sum(self.position_weights) <= 0 or min(self.position_weights) < 0:
            raise ValueError("position_weights must be non-negative and not all zero")
        return self

    @property
    def lookback(self) -> timedelta:
        return timedelta(days=self.lookback_days)

    def terms(self, role: PayeeRole) -> RoleTerms:
        return self.roles.get(role, _UNPAID)


class CompiledPlan(NamedTuple):
    """What pricing and attribution read of a plan body on every order, built once per body (``compiled``)."""

    rates: dict[str, Rates]  # by role; a role the plan does not name is unpaid (``unpaid``)
    unpaid: Rates
    lookback: timedelta
    claim_window: timedelta


_COMPILED: dict[int, tuple[PlanBody, CompiledPlan]] = {}
_COMPILED_MAX = 256


def compiled(body: PlanBody) -> CompiledPlan:
    """The body's rates, caps and windows as plain structures, remembered per body (bodies are immutable; the
    entry keeps its body alive, so its id is not reused while remembered)."""
    hit = _COMPILED.get(id(body))
    if hit is not None and hit[0] is body:
        return hit[1]
    plan = CompiledPlan(
        {role: compile_terms(terms) for role, terms in body.roles.items()},
        compile_terms(_UNPAID),
        timedelta(days=body.lookback_days),
        timedelta(days=body.claim_window_days),
    )
    if len(_COMPILED) >= _COMPILED_MAX:
        _COMPILED.clear()
    _COMPILED[id(body)] = (body, plan)
    return plan


class PlanVersion(BaseModel):
    model_config = ConfigDict(frozen=True)

    plan_id: str
    version: int = Field(ge=1)
    effective_from: datetime
    body: PlanBody


DEFAULT_PLAN = PlanVersion(
    plan_id="default", version=1, effective_from=datetime(2000, 1, 1, tzinfo=UTC), body=PlanBody()
)


def in_force(plans: Sequence[PlanVersion], at: datetime) -> PlanVersion:
    """The plan version in force at ``at``: the latest ``effective_from`` not after it (the default if none)."""
    eligible = [p for p in plans if p.effective_from <= at]
    if not eligible:
        return DEFAULT_PLAN
    return max(eligible, key=lambda p: (p.effective_from, p.version))
