"""Guardrails: a touch about to go out is sent, deferred to the next allowed time, or skipped, with a reason.

Checked at send time (not when the touch is planned), so caps see every touch that went out meanwhile.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from siyu_journey.domain.definition import HHMM
from siyu_journey.domain.localtime import (
    days_in_month,
    in_window,
    next_local_time,
    parse_hhmm,
    start_of_day,
    start_of_month,
    start_of_week,
)
from siyu_shared.values import Count, Text

# Channels WeCom counts as mass sends (群发) against the customer's monthly allowance.
WECOM_MASS_CHANNELS = frozenset({"wecom_1v1", "wecom_moments", "wecom_group"})
# A coupon lands silently in the wallet: quiet hours do not apply to it.
SILENT_CHANNELS = frozenset({"coupon"})
CONSENT_CHANNELS = frozenset({"sms"})
# Reach one person only through a WeCom friendship (external contact): a 1v1 message, or moments they can see.
WECOM_CONTACT_CHANNELS = frozenset({"wecom_1v1", "wecom_moments"})


Caps = Annotated[dict[Annotated[Text, Field(min_length=1, max_length=32)], Count], Field(max_length=50)]
"""Channel (as ``touches.channel`` holds it) → at most this many touches."""


class GuardrailPolicy(BaseModel):
    """A tenant's guardrails (Asia/Shanghai local time)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    daily_cap: Caps = Field(default_factory=lambda: {"wecom_1v1": 3, "sms": 1})
    weekly_cap: Caps = Field(default_factory=lambda: {"wecom_1v1": 10, "sms": 3})
    quiet_start: Text = Field(default="21:30", pattern=HHMM)
    quiet_end: Text = Field(default="08:30", pattern=HHMM)
    wecom_monthly_cap: bool = Field(default=True, description="At most as many mass sends a month as it has days.")


@dataclass(frozen=True, slots=True)
class PastTouch:
    """A touch already sent (or going out) to the person."""

    channel: str
    at: datetime
    priority: int = 0
    campaign_id: str | None = None


@dataclass(frozen=True, slots=True)
class PersonStatus:
    opted_out: bool = False
    consents: frozenset[str] = field(default_factory=frozenset)
    wecom_contact: bool = False
    """A WeCom friend of the brand now: the person has a friendship, an owner staff account and an
    ``external_userid`` (``domain/people.py``). Both are set by the first staff account to add the person while
    they have no friendship (a later add by another account keeps the owner's), both cleared when the owner
    removes them (another account's removal changes nothing), and a merge keeps the survivor's pair, else the
    merged person's."""


@dataclass(frozen=True, slots=True)
class Send:
    kind: Literal["send"] = "send"


@dataclass(frozen=True, slots=True)
class Defer:
    until: datetime
    reason: str
    kind: Literal["defer"] = "defer"


@dataclass(frozen=True, slots=True)
class Skip:
    reason: str
    kind: Literal["skip"] = "skip"


Decision = Send | Defer | Skip


def decide(
    *,
    channel: str,
    priority: int,
    person: PersonStatus,
    history: Sequence[PastTouch],
    policy: GuardrailPolicy,
    now: datetime,
) -> Decision:
    if person.opted_out:
        return Skip("opted_out")
    if channel in CONSENT_CHANNELS and channel not in person.consents:
        return Skip("no_consent")
    if channel in WECOM_CONTACT_CHANNELS and not person.wecom_contact:
        return Skip("no_wecom_contact")
    quiet_start, quiet_end = parse_hhmm(policy.quiet_start), parse_hhmm(policy.quiet_end)
    if channel not in SILENT_CHANNELS and in_window(now, quiet_start, quiet_end):
        return Defer(next_local_time(now, quiet_end), "quiet_hours")
    today = start_of_day(now)
    same_channel_today = [t for t in history if t.channel == channel and t.at >= today]
    stronger = [t for t in same_channel_today if t.priority > priority]
    if stronger:
        return Skip(f"overridden_by_campaign:{stronger[0].campaign_id or 'priority'}")
    if _over(policy.daily_cap, channel, len(same_channel_today)):
        return Skip("cap_daily")
    week = start_of_week(now)
    if _over(policy.weekly_cap, channel, sum(1 for t in history if t.channel == channel and t.at >= week)):
        return Skip("cap_weekly")
    if policy.wecom_monthly_cap and channel in WECOM_MASS_CHANNELS:
        month = start_of_month(now)
        mass = sum(1 for t in history if t.channel in WECOM_MASS_CHANNELS and t.at >= month)
        if mass >= days_in_month(now):
            return Skip("cap_wecom_monthly")
    return Send()


def _over(caps: Mapping[str, int], channel: str, count: int) -> bool:
    cap = caps.get(channel)
    return cap is not None and count >= cap
