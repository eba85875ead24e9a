"""What the platform made of the demo, read back the way its users read it: the event streams and the APIs.

Leads per channel, persons after identity merges, touches sent or skipped (from the topics); tag counts per family
(segmentation API); touches still queued (journey API); orders attributed, commissions per payee and the funnel
(attribution reports).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from siyu_devstack.demo.tenant import Endpoints
from siyu_devstack.testing import read_topics
from siyu_shared.events.topics import Topic, TopicNames

STREAMS = (Topic.LEADS, Topic.CONTACTS, Topic.PERSONS, Topic.ORDERS, Topic.TOUCHES, Topic.TAGS)


@dataclass
class Summary:
    leads: Counter[str] = field(default_factory=Counter)
    lead_sources: Counter[str] = field(default_factory=Counter)
    persons_seen: int = 0
    merges: int = 0
    persons: int = 0
    contacts: Counter[str] = field(default_factory=Counter)
    tags_changed: int = 0
    """``siyu.tags.changed`` events: each adds and removes any number of tags for one person."""
    tags_added: int = 0
    tags_removed: int = 0
    tag_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    touches: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    touches_by_journey: dict[str, Counter[str]] = field(default_factory=dict)
    touches_pending: Counter[str] = field(default_factory=Counter)
    """Per journey: touches queued but not gone out yet (due later: deferred by quiet hours, or a wait)."""
    orders: Counter[str] = field(default_factory=Counter)
    payees: list[dict[str, Any]] = field(default_factory=list)
    funnel: dict[str, Any] = field(default_factory=dict)
    channels: list[dict[str, Any]] = field(default_factory=list)
    attribution: list[dict[str, Any]] = field(default_factory=list)
    """Attribution's report of the period: per outcome (roles credited, ``activity_only``, ``none``) orders and GMV."""


async def read_streams(bootstrap: str, topics: TopicNames, tenant: str, *, idle_s: float = 1.0) -> list[dict[str, Any]]:
    """Every CloudEvent of ``tenant`` on the platform's topics, from the beginning."""
    messages = await read_topics(bootstrap, [topics.name(t) for t in STREAMS], idle_s=idle_s)
    events = (orjson.loads(value) for _, value, _ in messages if value is not None)
    return [e for e in events if e.get("tenant") == tenant]


def from_events(events: list[dict[str, Any]]) -> Summary:
    summary = Summary()
    persons: set[str] = set()
    merged: set[str] = set()
    for event in events:
        kind, data = event["type"], event["data"]
        if person := data.get("person_id"):
            persons.add(person)
        if kind == "siyu.lead.captured":
            source = data["source"]
            summary.leads[source["channel"]] += 1
            summary.lead_sources[f"{source['channel']}/{source.get('account_kind', 'unknown')}"] += 1
        elif kind == "siyu.person.merged":
            summary.merges += 1
            persons.add(data["survivor_id"])
            merged.update(data["merged_ids"])
        elif kind.startswith("siyu.contact."):
            summary.contacts[kind.removeprefix("siyu.contact.")] += 1
        elif kind.startswith("siyu.order."):
            summary.orders[kind.removeprefix("siyu.order.")] += 1
        elif kind.startswith("siyu.touch."):
            outcome = kind.removeprefix("siyu.touch.")
            summary.touches[outcome] += 1
            summary.touches_by_journey.setdefault(data.get("journey_id") or "-", Counter())[outcome] += 1
            if outcome == "skipped":
                summary.skipped[data.get("reason") or "-"] += 1
        elif kind == "siyu.tags.changed":
            summary.tags_changed += 1
            summary.tags_added += len(data.get("added", ()))
            summary.tags_removed += len(data.get("removed", ()))
    summary.persons_seen = len(persons)
    summary.persons = len(persons - merged)
    return summary


async def collect(
    http: httpx.AsyncClient,
    urls: Endpoints,
    *,
    tenant: str,
    api_key: str,
    bootstrap: str,
    topics: TopicNames,
    period: str,
) -> Summary:
    summary = from_events(await read_streams(bootstrap, topics, tenant))
    headers = {"Authorization": f"Bearer {api_key}"}
    rules = (await http.get(f"{urls.segmentation}/v1/rules", headers=headers)).json()
    family_of = {r["tag"]: r.get("family") or "(none)" for r in _rules(rules)}
    counts = (await http.get(f"{urls.segmentation}/v1/tags/counts", headers=headers)).json()["now"]
    families: dict[str, dict[str, int]] = defaultdict(dict)
    for tag, members in sorted(counts.items()):
        families[family_of.get(tag, "(none)")][tag] = members
    summary.tag_counts = dict(families)
    journeys = (await http.get(f"{urls.journey}/v1/journeys", headers=headers)).json()
    for journey_id in sorted({j["journey_id"] for j in journeys}):
        counts = (await http.get(f"{urls.journey}/v1/journeys/{journey_id}/counts", headers=headers)).json()
        pending = sum(step.get("pending", 0) for step in counts["steps"].values())
        if pending:
            summary.touches_pending[journey_id] = pending
    params = {"period": period}
    summary.payees = (await http.get(f"{urls.attribution}/v1/reports/payees", params=params, headers=headers)).json()
    funnel = (await http.get(f"{urls.attribution}/v1/reports/funnel", params=params, headers=headers)).json()
    summary.funnel = funnel[0] if funnel else {}
    summary.channels = (
        await http.get(f"{urls.attribution}/v1/reports/channels", params=params, headers=headers)
    ).json()
    summary.attribution = (
        await http.get(f"{urls.attribution}/v1/reports/attribution", params=params, headers=headers)
    ).json()
    return summary


def _rules(payload: Any) -> list[dict[str, Any]]:
    """The rule bodies of ``GET /v1/rules`` (each ``{"rule_id", "version", "body": {"tag", "family", ...}}``)."""
    return [r["body"] for r in payload if isinstance(r, dict) and isinstance(r.get("body"), dict)]


def _yuan(fen: int | float | None) -> str:
    return f"¥{(fen or 0) / 100:,.2f}"


def render(summary: Summary, *, humans: int, expected_persons: int) -> list[str]:
    lines = ["Demo: what the platform made of it"]
    lines.append("  leads per channel:      " + ", ".join(f"{c} {n}" for c, n in sorted(summary.leads.items())))
    lines.append("    by source account:    " + ", ".join(f"{s} {n}" for s, n in sorted(summary.lead_sources.items())))
    lines.append(
        f"  persons:                {summary.persons} after {summary.merges} identity merges "
        f"from {summary.persons_seen} first sightings (the story has {humans} people; {expected_persons} persons "
        "expected, as some never showed a usable phone)"
    )
    lines.append("  WeCom:                  " + ", ".join(f"{k} {n}" for k, n in sorted(summary.contacts.items())))
    lines.append(
        f"  tag changes emitted:    {summary.tags_changed} events, "
        f"{summary.tags_added} tags added and {summary.tags_removed} removed"
    )
    held = sum(n for tags in summary.tag_counts.values() for n in tags.values())
    net = summary.tags_added - summary.tags_removed
    why = (
        ""
        if held == net
        else f"; added − removed is {net}: {net - held} were held by persons since merged away or erased"
    )
    lines.append(f"  tags held now:          {held} (per family below{why})")
    for family, tags in sorted(summary.tag_counts.items()):
        lines.append(f"    {family:<20} " + ", ".join(f"{t} {n}" for t, n in tags.items()))
    outcomes = {"sent": 0, "skipped": 0, **summary.touches}
    gone_out = ", ".join(f"{k} {n}" for k, n in outcomes.items())
    quiet = "" if summary.touches.total() else " (none gone out yet)"
    lines.append(f"  touches:                {gone_out}{quiet}")
    if summary.touches_pending:
        lines.append(
            f"    due later:            {summary.touches_pending.total()} queued ("
            + ", ".join(f"{j} {n}" for j, n in sorted(summary.touches_pending.items()))
            + "): deferred by the guardrails (Shanghai quiet hours) or waiting; they go out when allowed"
        )
    if summary.skipped:
        lines.append("    skipped because:      " + ", ".join(f"{r} {n}" for r, n in summary.skipped.most_common()))
    for journey, outcomes in sorted(summary.touches_by_journey.items()):
        lines.append(f"    {journey:<20} " + ", ".join(f"{k} {n}" for k, n in sorted(outcomes.items())))
    lines.append("  orders:                 " + ", ".join(f"{k} {n}" for k, n in sorted(summary.orders.items())))
    for row in summary.channels:
        lines.append(
            f"    {row['channel']}/{row['source_kind']:<12} orders {row['orders']}, GMV {_yuan(row['gmv_fen'])} "
            f"(share {row['gmv_share']})"
        )
    if summary.attribution:
        orders = sum(r["orders"] for r in summary.attribution)
        credited = [r for r in summary.attribution if r["credited_to"] not in ("none", "activity_only")]
        lines.append(
            f"  orders attributed:      {sum(r['orders'] for r in credited)} of {orders} paid this period "
            f"({_yuan(sum(r['gmv_fen'] for r in credited))} of {_yuan(sum(r['gmv_fen'] for r in summary.attribution))}"
            " net): " + ", ".join(f"{r['credited_to']} {r['orders']}" for r in summary.attribution)
        )
    lines.append("  commissions per payee (orders credited, attributed sales, commission):")
    for row in sorted(summary.payees, key=lambda r: (r.get("payee_role", ""), r.get("payee_id", ""))):
        lines.append(
            f"    {row.get('payee_id', '?'):<12} {row.get('payee_role', '?'):<16} orders {row.get('orders', 0):>3}, "
            f"activity {row.get('activity_credits', 0):>2}, sales {_yuan(row.get('attributed_sales_fen')):>12}, "
            f"commission {_yuan(row.get('commission_fen')):>10}"
        )
    if summary.funnel:
        steps = [k for k in ("leads", "reached", "first_order", "repeat_order") if k in summary.funnel]
        lines.append("  funnel:                 " + " → ".join(f"{k} {summary.funnel[k]}" for k in steps))
    return lines
