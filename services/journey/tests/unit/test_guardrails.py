"""Guardrails on plain data with a fake clock (Asia/Shanghai local time)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from siyu_journey.domain.guardrails import Defer, GuardrailPolicy, PastTouch, PersonStatus, Send, Skip, decide

POLICY = GuardrailPolicy(
    daily_cap={"wecom_1v1": 2}, weekly_cap={"wecom_1v1": 5}, quiet_start="21:30", quiet_end="08:30"
)
FRIEND = PersonStatus(wecom_contact=True)
MONDAY_10 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # Monday 10:00 Shanghai


def check(
    *,
    now: datetime = MONDAY_10,
    history: list[PastTouch] | None = None,
    channel: str = "wecom_1v1",
    priority: int = 0,
    person: PersonStatus | None = None,
    policy: GuardrailPolicy = POLICY,
) -> object:
    return decide(
        channel=channel,
        priority=priority,
        person=person or FRIEND,
        history=history or [],
        policy=policy,
        now=now,
    )


def test_plain_touch_is_sent() -> None:
    assert check() == Send()


def test_opt_out_and_consent_skip() -> None:
    assert check(person=PersonStatus(opted_out=True, wecom_contact=True)) == Skip("opted_out")
    assert check(channel="sms") == Skip("no_consent")
    assert check(channel="sms", person=PersonStatus(consents=frozenset({"sms"}))) == Send()


def test_only_a_wecom_friend_is_reached_one_to_one_or_on_moments_at_any_hour() -> None:
    stranger = PersonStatus()
    night = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # 23:00 Shanghai: skipped now, not deferred to the morning
    for channel in ("wecom_1v1", "wecom_moments"):
        assert check(channel=channel, person=stranger) == Skip("no_wecom_contact")
        assert check(channel=channel, person=stranger, now=night) == Skip("no_wecom_contact")
    assert check(channel="coupon", person=stranger) == Send()
    assert check(channel="wecom_group", person=stranger) == Send()  # sent to the groups, not to the person


def test_quiet_hours_defer_to_the_next_allowed_time() -> None:
    night = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # 23:00 Shanghai
    assert check(now=night) == Defer(datetime(2026, 11, 24, 0, 30, tzinfo=UTC), "quiet_hours")  # 08:30 next day
    early = datetime(2026, 11, 23, 22, 0, tzinfo=UTC)  # 06:00 Shanghai on Tuesday
    assert check(now=early) == Defer(datetime(2026, 11, 24, 0, 30, tzinfo=UTC), "quiet_hours")
    assert check(now=night, channel="coupon") == Send()  # a coupon lands silently


def test_daily_and_weekly_caps_skip() -> None:
    two_today = [PastTouch("wecom_1v1", MONDAY_10 - timedelta(hours=1))] * 2
    assert check(history=two_today) == Skip("cap_daily")
    assert check(history=two_today, channel="sms", person=PersonStatus(consents=frozenset({"sms"}))) == Send()
    yesterday = [PastTouch("wecom_1v1", MONDAY_10 - timedelta(days=1))] * 5  # Sunday: last week
    assert check(history=yesterday) == Send()
    this_week = [PastTouch("wecom_1v1", MONDAY_10 + timedelta(days=d)) for d in range(5)]
    assert check(now=MONDAY_10 + timedelta(days=5), history=this_week) == Skip("cap_weekly")


def test_wecom_monthly_mass_send_cap_is_the_days_in_the_month() -> None:
    policy = GuardrailPolicy(daily_cap={}, weekly_cap={})
    november = [PastTouch("wecom_group", datetime(2026, 11, 1, 2, tzinfo=UTC) + timedelta(hours=i)) for i in range(29)]
    assert check(history=november, policy=policy) == Send()
    assert check(history=[*november, november[0]], policy=policy) == Skip("cap_wecom_monthly")


def test_a_promotion_overrides_routine_touches_that_day() -> None:
    promo = [PastTouch("wecom_1v1", MONDAY_10 - timedelta(hours=1), priority=10, campaign_id="double11")]
    assert check(history=promo, priority=0) == Skip("overridden_by_campaign:double11")
    assert check(history=promo, priority=10) == Send()
