"""What ``make run`` does after the services are up: configure a tenant, replay the demo, summarise. The summary
must agree with the story's ground truth."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import pytest

from siyu_devstack.demo import dataset, play
from siyu_devstack.run import issue_everywhere

from .conftest import NO_QUIET_HOURS, Platform, know_contacts

pytestmark = pytest.mark.e2e


async def test_the_demo_replays_and_its_summary_matches_the_story(platform: Platform) -> None:
    tenant = f"demo{secrets.token_hex(3)}"
    key = await issue_everywhere(platform.stack, tenant=tenant)
    story = dataset.build(now=datetime.now(UTC), persons=30, seed=3)
    know_contacts(platform, story.contacts)
    result = await play.play(
        platform.stack,
        {name: proc.url for name, proc in platform.processes.items()},
        tenant_id=tenant,
        api_key=key,
        wecom_api=platform.wecom_api,
        data=story,
        guardrails=NO_QUIET_HOURS,
    )
    seen = result.summary
    assert result.report.deliveries == story.deliveries and result.report.claims == story.claims
    assert seen.persons == story.expected_persons
    assert sum(seen.leads.values()) == sum(2 if h.origin == "douyin_dm" else 1 for h in story.humans)
    assert seen.contacts["added"] == len(story.contacts)
    assert seen.touches_by_journey["greeting"]["sent"] == len(story.contacts)
    assert seen.orders["paid"] == len(story.order_amounts_fen)
    assert seen.tag_counts["dcba"] and sum(seen.tag_counts["dcba"].values()) == seen.persons
    assert {row["payee_id"] for row in seen.payees} >= {
        c.staff_id for p in story.phases for c in p.steps if isinstance(c, dataset.Claim) and c.role == "staff_1v1"
    }
    assert seen.funnel["leads"] == len(story.humans)  # every lead of the story falls in this month
    text = "\n".join(result.lines())
    held = sum(n for tags in seen.tag_counts.values() for n in tags.values())
    assert f"tags held now:          {held} (" in text  # the total is the sum of its own lines
    assert held <= seen.tags_added - seen.tags_removed  # what is held was added and not removed
    assert "leads per channel" in text and "commissions per payee" in text and "funnel" in text
