"""Commission plans: which attribution model, rates by role and category, tiers, caps and the holding period.

Plans are versioned; an order is settled under the version in force when it was paid (``in_force``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from siyu_shared.events.catalog.commissions import PayeeRole

ModelName = Literal["first_claim", "first_touch", "last_touch", "linear", "time_decay", "position_based"]
TouchKindName = Literal["journey", "staff", "group"]
ANY_CATEGORY = "*"


class Tier(BaseModel):
    """From ``min_gmv_fen`` of the payee's monthly attributed GMV on, the role's rates are replaced by these."""

    model_config = ConfigDict(frozen=True)

    min_gmv_fen: int = Field(ge=0)
    rates_bps: dict[str, int] = Field(description="Category (or `*`) → basis points, for this tier.")


class RoleTerms(BaseModel):
    """How one payee role is paid."""

    model_config = ConfigDict(frozen=True)

    rates_bps: dict[str, int] = Field(
        default_factory=lambda: {ANY_CATEGORY: 0},
        description="Category (or `*` for any other) → basis points of the attributed amount.",
    )
    tiers: list[Tier] = Field(default_factory=list)
    cap_per_order_fen: int | None = Field(default=None, ge=0)
    cap_per_month_fen: int | None = Field(default=None, ge=0)

    def rate_bps(self, category: str | None, month_gmv_fen: int) -> int:
        rates = self.rates_bps
        if not self.tiers:
            return (
                rates.get(category, rates.get(ANY_CATEGORY, 0)) if category is not None else rates.get(ANY_CATEGORY, 0)
            )
        for tier in sorted(self.tiers, key=lambda t: t.min_gmv_fen):
            if month_gmv_fen >= tier.min_gmv_fen:
                rates = {**rates, **tier.rates_bps}
        if category is not None and category in rates:
            return rates[category]
        return rates.get(ANY_CATEGORY, 0)


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

    model_config = ConfigDict(frozen=True)

    model: ModelName = "first_claim"
    fallback_model: ModelName = Field(
        default="last_touch", description="Used while an order has no valid claim (first_claim model only)."
    )
    lookback_days: int = Field(default=30, ge=0, le=365)
    claim_window_days: int = Field(default=30, ge=0, le=365, description="Claims later than this after payment fail.")
    touch_kinds: list[TouchKindName] = Field(default_factory=_default_touch_kinds)
    half_life_hours: float = Field(default=72.0, gt=0)
    position_weights: tuple[int, int, int] = (40, 20, 40)
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
