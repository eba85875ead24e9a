"""The demo's story on plain data: deterministic, signed as each channel signs, inside one reporting period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from siyu_devstack import run
from siyu_devstack.demo import dataset, summary
from siyu_devstack.demo.replay import outbox_backlog
from siyu_ingest.adapters.channels import ADAPTERS
from siyu_ingest.adapters.channels.base import WebhookRequest
from siyu_ingest.domain.models import ContactChange, GroupChange, Lead, OrderChange
from siyu_ingest.samples import CREDENTIALS

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def _as_request(delivery: dataset.Delivery) -> WebhookRequest:
    return WebhookRequest(
        body=delivery.body,
        headers={k.lower(): v for k, v in delivery.headers.items()},
        query=delivery.query,
        received_at=NOW,
    )


def _meaning(story: dataset.Dataset) -> list[object]:
    """What each step says (WeCom bodies are encrypted with a fresh IV each time, so compare their facts)."""
    out: list[object] = []
    for phase in story.phases:
        for step in phase.steps:
            if isinstance(step, dataset.Delivery) and step.channel == "wecom":
                out.append(ADAPTERS["wecom"].parse(_as_request(step), CREDENTIALS["wecom"]))
            else:
                out.append(step)
    return out


def test_the_same_seed_and_clock_build_the_same_story() -> None:
    one = dataset.build(now=NOW, persons=40)
    assert _meaning(one) == _meaning(dataset.build(now=NOW, persons=40))
    assert _meaning(one) != _meaning(dataset.build(now=NOW, persons=40, seed=8))


def _creds() -> dict[str, dict[str, object]]:
    return {**CREDENTIALS, "xiaohongshu": {**CREDENTIALS["xiaohongshu"], "accounts": dataset.XHS_ACCOUNTS}}


def test_every_delivery_passes_its_channels_signature_check_and_parses() -> None:
    story = dataset.build(now=NOW, persons=60)
    start, _ = dataset.story_window(NOW)
    creds = _creds()
    facts: dict[type, int] = {}
    for phase in story.phases:
        for step in phase.steps:
            if not isinstance(step, dataset.Delivery):
                continue
            adapter, request = ADAPTERS[step.channel], _as_request(step)
            adapter.verify(request, creds[step.channel])
            for fact in adapter.parse(request, creds[step.channel]):
                facts[type(fact)] = facts.get(type(fact), 0) + 1
                if isinstance(fact, Lead):  # the platforms' own clocks are inside the story's window
                    assert start <= fact.occurred_at <= NOW, (step.channel, fact.occurred_at)
    assert facts[Lead] >= 60  # every person arrives as a lead (Douyin people twice: a question, then a phone)
    assert facts[ContactChange] and facts[GroupChange] and facts[OrderChange]


def test_story_times_stay_in_the_current_month_in_shanghai() -> None:
    early = datetime(2026, 11, 30, 17, 30, tzinfo=UTC)  # Dec 1st 01:30 in Shanghai
    start, end = dataset.story_window(early)
    assert start >= datetime(2026, 11, 30, 16, 0, tzinfo=UTC) and end == early
    start, _ = dataset.story_window(NOW)
    assert start == NOW - timedelta(days=3)


def test_in_a_months_first_hour_the_story_is_told_in_the_month_before() -> None:
    just_after_midnight = datetime(2026, 11, 30, 16, 3, tzinfo=UTC)  # Dec 1st 00:03 in Shanghai
    start, end = dataset.story_window(just_after_midnight)
    assert end == datetime(2026, 11, 30, 15, 59, tzinfo=UTC) and start == end - timedelta(days=3)
    story = dataset.build(now=just_after_midnight, persons=20)
    assert story.period == "2026-11"
    times = [
        fact.occurred_at
        for phase in story.phases
        for step in phase.steps
        if isinstance(step, dataset.Delivery) and step.channel != "wecom"
        for fact in ADAPTERS[step.channel].parse(_as_request(step), _creds()[step.channel])
        if isinstance(fact, Lead)
    ]
    assert times and all(start <= t <= end for t in times)
    assert dataset.build(now=NOW, persons=5).period == "2026-11"


def test_claims_only_name_orders_of_the_story_and_activators_claim_through_groups() -> None:
    story = dataset.build(now=NOW)
    claims = [s for p in story.phases for s in p.steps if isinstance(s, dataset.Claim)]
    assert claims and {c.order_no for c in claims} <= set(story.order_amounts_fen)
    assert {(c.role, c.via) for c in claims if c.staff_id in dataset.ACTIVATORS} == {("group_activator", "group")}
    assert {c.staff_id for c in claims if c.role == "staff_1v1"} <= set(dataset.STAFF)


def test_expected_persons_counts_the_people_identity_cannot_join() -> None:
    story = dataset.build(now=NOW)
    unlinked = [h for h in story.humans if h.friend_of and not h.remark_mobile_known]
    masked = [h for h in story.humans if h.orders and h.index % 9 == 0]
    assert story.expected_persons == len(story.humans) + len(unlinked) + len(masked)
    assert unlinked and masked


def test_summary_counts_persons_after_merges_and_touch_outcomes() -> None:
    events = [
        {"type": "siyu.lead.captured", "data": {"person_id": "p1", "source": {"channel": "xiaohongshu"}}},
        {"type": "siyu.contact.added", "data": {"person_id": "p2"}},
        {"type": "siyu.person.merged", "data": {"survivor_id": "p1", "merged_ids": ["p2"]}},
        {"type": "siyu.touch.sent", "data": {"person_id": "p1", "journey_id": "greeting"}},
        {"type": "siyu.touch.skipped", "data": {"person_id": "p1", "journey_id": "greeting", "reason": "cap"}},
        {"type": "siyu.order.paid", "data": {"person_id": "p3"}},
    ]
    seen = summary.from_events(events)
    assert (seen.persons_seen, seen.merges, seen.persons) == (3, 1, 2)
    assert seen.leads == {"xiaohongshu": 1} and seen.lead_sources == {"xiaohongshu/unknown": 1}
    assert seen.touches == {"sent": 1, "skipped": 1} and seen.skipped == {"cap": 1}
    assert seen.touches_by_journey["greeting"] == {"sent": 1, "skipped": 1}


def test_outbox_backlog_reads_the_gauge_from_the_exposition() -> None:
    text = '# HELP siyu_outbox_backlog x\nsiyu_outbox_backlog{service="ingest"} 3.0\nsiyu_other 9\n'
    assert outbox_backlog(text) == 3
    assert outbox_backlog("") == 0


def test_the_summary_says_when_touches_wait_instead_of_printing_nothing() -> None:
    quiet = summary.Summary()
    quiet.touches_pending.update({"greeting": 90, "group_invite": 37})
    lines = summary.render(quiet, humans=120, expected_persons=143)
    assert "  touches:                sent 0, skipped 0 (none gone out yet)" in lines
    (due,) = [line for line in lines if "due later" in line]
    assert "127 queued (greeting 90, group_invite 37)" in due
    day = summary.Summary()
    day.touches.update({"sent": 127})
    lines = summary.render(day, humans=120, expected_persons=143)
    assert "  touches:                sent 127, skipped 0" in lines and not any("due later" in line for line in lines)


def test_the_summary_says_how_many_orders_were_attributed_and_to_whom() -> None:
    seen = summary.Summary()
    seen.attribution = [
        {"credited_to": "staff_1v1", "orders": 40, "gmv_fen": 1_000_000, "order_share": 0.5},
        {"credited_to": "none", "orders": 30, "gmv_fen": 600_000, "order_share": 0.375},
        {"credited_to": "activity_only", "orders": 4, "gmv_fen": 40_000, "order_share": 0.05},
        {"credited_to": "kol+staff_1v1", "orders": 6, "gmv_fen": 300_000, "order_share": 0.075},
    ]
    (line,) = [line for line in summary.render(seen, humans=1, expected_persons=1) if "orders attributed" in line]
    assert "46 of 80 paid this period (¥13,000.00 of ¥19,400.00 net)" in line
    assert line.endswith("staff_1v1 40, none 30, activity_only 4, kol+staff_1v1 6")


def test_demo_env_values_that_skip_the_demo() -> None:
    assert run.demo_wanted(None) and run.demo_wanted("1") and run.demo_wanted("yes")
    assert not any(run.demo_wanted(v) for v in ("0", "false", "No", " off "))
