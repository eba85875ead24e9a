"""Faults mid-stream: a service killed (SIGKILL) and restarted, Kafka killed (SIGKILL) and restarted, Postgres
restarted; and Postgres stopped for several seconds under sustained webhook load.

The demo story (smaller) is posted phase by phase; in the middle of each phase something fails. Channels and tools
retry as the platforms do. Journey sends 1v1 WeCom touches through its real WeCom sender (no idempotency key) to the
WeCom simulator, which records every message it is asked to send. Afterwards, against the story's ground truth
(``story_truth``): every event the webhooks mean is there once (no event lost or duplicated), every order-number
claim held by attribution, persons after merges and each person's DCBA stage as the story determines, nothing in a
dead-letter topic, no WeCom message sent twice (counted by WeCom, not by us) and each greeting and group invitation
sent once, or, for a touch a crash caught between WeCom's answer and its commit, recorded ``failed: outcome_unknown``
as journey's README promises; the ledger balanced and every payee's commission exactly what the story earns, to the
fen.

Under load (``test_a_postgres_stop_under_load_...``): a few thousand signed Xiaohongshu leads, each a new person,
posted at a few hundred a second over loopback by many concurrent senders that retry 503s as the platforms do;
a quarter of the way in, while the consumers have events to handle, Postgres stops for several seconds and starts
again. Every answer is 200 or a 503 with
Retry-After (never a 500), each delivery is stored once and processed, each lead is on ``leads.v1`` once and has
its effect in attribution, journey and segmentation, and no dead-letter topic holds anything.

Postgres is restarted with a fast shutdown, not killed: the test stack runs it with ``synchronous_commit=off``
(``Stack(fast=True)``), under which a SIGKILL may drop commits already acknowledged, a loss no service could see.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any

import asyncpg
import orjson
import pytest

from siyu_devstack.demo import dataset
from siyu_devstack.demo.replay import ReplayReport, consumer_lag, send_phase
from siyu_devstack.demo.summary import from_events, read_streams
from siyu_devstack.kafka import LocalKafka
from siyu_devstack.services import ServiceProcess
from siyu_devstack.testing import eventually, read_topic
from siyu_ingest import samples
from siyu_shared.events.topics import Topic

from . import story_truth
from .conftest import SENDING_LEASE_S, Brand, Platform, know_contacts
from .loopback import Poster

pytestmark = pytest.mark.e2e

STAFF_BPS = 500
PARTNERS = {"xhs_kol": ("xhs-kol-9", 1_000), "xhs_koc": ("xhs-koc-3", 500)}

LOAD_DELIVERIES = 2_400
LOAD_RATE = 400  # deliveries/s offered: the senders keep this pace (and catch up after the outage)
LOAD_SENDERS = 48
DOWNTIME_S = 5.0
"""How long Postgres stays stopped under load: several seconds, past any retry budget counted in attempts."""


def crash_and_restart(proc: ServiceProcess) -> Callable[[], None]:
    def fault() -> None:
        proc.kill()
        proc.start()
        proc.wait_ready(timeout_s=120)

    return fault


def kill_and_restart(kafka: LocalKafka) -> Callable[[], None]:
    def fault() -> None:
        kafka.kill()
        kafka.start()

    return fault


async def test_kills_and_restarts_lose_nothing_and_count_nothing_twice(platform: Platform, brand: Brand) -> None:
    story = dataset.build(now=datetime.now(UTC), persons=40, seed=5)
    know_contacts(platform, story.contacts)
    before = len(platform.wecom.sent)  # the simulator serves the whole session: this test's messages come after
    stack, procs = platform.stack, platform.processes
    assert stack.kafka is not None and stack.postgres is not None
    faults: list[tuple[str, Callable[[], object]]] = [
        ("ingest killed", crash_and_restart(procs["ingest"])),
        ("journey killed", crash_and_restart(procs["journey"])),
        ("Kafka killed", kill_and_restart(stack.kafka)),
        ("Postgres restarted", stack.postgres.restart),
        ("attribution killed", crash_and_restart(procs["attribution"])),
        ("segmentation killed", crash_and_restart(procs["segmentation"])),
    ]
    report = ReplayReport()
    for phase, (name, fault) in zip(story.phases, faults, strict=True):
        halfway = asyncio.Event()
        half = max(1, len(phase.steps) // 2)
        sending = asyncio.create_task(
            send_phase(
                platform.http,
                brand.urls,
                phase,
                tenant=brand.tenant,
                api_key=brand.api_key,
                report=report,
                concurrency=4,
                retry_s=180,
                sent=lambda n, half=half, halfway=halfway: halfway.set() if n >= half else None,
            )
        )
        await asyncio.wait([sending, asyncio.ensure_future(halfway.wait())], return_when=asyncio.FIRST_COMPLETED)
        await asyncio.to_thread(fault)
        print(f"{phase.name}: {name} after {report.deliveries + report.claims} steps")
        await sending
        await brand.settle(timeout_s=240)

    # Ingest holds each webhook of the story once (a platform's retry after ingest died is absorbed by its dedupe
    # key, not stored twice; none acknowledged and then lost), plus the WeCom contact detail it fetched for each new
    # friend (stored as a delivery of its own, keyed ``detail:``), every one processed.
    stored = await brand.get("ingest", f"/v1/tenants/{brand.tenant}/deliveries", limit=500)
    details = [d for d in stored if d["dedupe_key"].startswith("detail:")]
    assert (len(stored) - len(details), len(details)) == (story.deliveries, len(story.contacts)) and len(stored) < 500
    assert {d["status"] for d in stored} == {"processed"}
    await _every_claim_recorded(brand, story)
    events = await _no_event_lost(brand, story)
    await _nothing_dead_lettered(brand)
    await _dcba_as_the_story_says(brand, story, events)
    await _each_message_sent_once(brand, story, before)
    await _commissions_exact(brand, story)


@dataclass
class Load:
    """What the senders saw: every answer (retries included) by status, and how many 503s had no Retry-After."""

    answers: Counter[int] = field(default_factory=Counter)
    transport_errors: int = 0
    without_retry_after: int = 0
    final: Counter[int] = field(default_factory=Counter)
    acked: int = 0
    quarter_s: float = 0.0
    """When a quarter of the deliveries had been acknowledged (seconds after the first was sent)."""


async def _deliver(poster: Poster, path: str, delivery: dataset.Delivery, load: Load, *, retry_s: float) -> None:
    """Post until answered other than 503 (or a connection error), retrying with backoff as a platform does."""
    deadline = time.monotonic() + retry_s
    pause = 0.1
    while True:
        try:
            status, headers = await poster.post(path, delivery.body, delivery.headers, delivery.query)
            load.answers[status] += 1
            if status != 503:
                load.final[status] += 1
                load.acked += 1
                return
            load.without_retry_after += "retry-after" not in headers
        except ConnectionError:
            load.transport_errors += 1
        assert time.monotonic() < deadline, f"a delivery was not accepted within {retry_s}s"
        await asyncio.sleep(pause)
        pause = min(pause * 2, 1.0)


async def test_a_postgres_stop_under_load_answers_503_and_loses_nothing(platform: Platform, brand: Brand) -> None:
    stack, postgres = platform.stack, platform.stack.postgres
    assert postgres is not None
    leads = [
        dataset.delivery(
            "xiaohongshu",
            samples.xiaohongshu(
                samples.xiaohongshu_lead(leads_id=f"XHS-LOAD-{i:05d}", phone=f"139{i:08d}", name=f" 负载{i} ")
            ),
        )
        for i in range(LOAD_DELIVERIES)
    ]
    path = f"/v1/webhooks/{brand.tenant}/xiaohongshu"
    load = Load()
    quarter = asyncio.Event()
    queue = iter(enumerate(leads))
    loop = asyncio.get_running_loop()
    started = loop.time()

    async def sender() -> None:
        poster = Poster(brand.urls.ingest)
        try:
            for i, delivery in queue:
                wait = started + i / LOAD_RATE - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)  # the pace of the load, not a wait for a condition
                await _deliver(poster, path, delivery, load, retry_s=120)
                if load.acked >= LOAD_DELIVERIES // 4 and not quarter.is_set():
                    load.quarter_s = loop.time() - started
                    quarter.set()
        finally:
            poster.close()

    async def consumers_busy() -> bool:
        return await consumer_lag(stack.bootstrap_servers, platform.groups) > 0

    async def outage() -> tuple[float, float]:
        await quarter.wait()
        await eventually(consumers_busy, timeout_s=60)  # stopped under the consumers' feet, not between batches
        stopping = loop.time()
        await asyncio.to_thread(postgres.stop)
        await asyncio.sleep(DOWNTIME_S)  # the outage itself: the database stays down this long
        await asyncio.to_thread(postgres.start)
        return stopping - started, loop.time() - started

    senders = asyncio.gather(*(sender() for _ in range(LOAD_SENDERS)))
    (down_at, up_at), _ = await asyncio.gather(outage(), senders)
    sent_s = loop.time() - started
    before_rate = (LOAD_DELIVERIES // 4) / load.quarter_s
    print(
        f"load: {LOAD_DELIVERIES} deliveries in {sent_s:.1f}s ({before_rate:.0f}/s acknowledged before the stop), "
        f"Postgres down {down_at:.1f}-{up_at:.1f}s; answers {dict(load.answers)}, "
        f"{load.transport_errors} connection errors"
    )
    await brand.settle(timeout_s=300)
    print(f"load: settled {loop.time() - started:.1f}s after the first delivery")

    assert before_rate >= 200, before_rate  # the outage happened under load (hundreds of deliveries/s), not a trickle
    assert dict(load.final) == {200: LOAD_DELIVERIES}
    assert set(load.answers) <= {200, 503} and load.answers[503] > 0, "the stop was met by 503s, never a 500"
    assert load.without_retry_after == 0
    conn = await asyncpg.connect(stack.admin_dsn)
    try:
        stored = await conn.fetchrow(
            "SELECT count(*) AS n, count(DISTINCT dedupe_key) AS keys,"
            " count(*) FILTER (WHERE status = 'processed') AS processed FROM ingest.deliveries WHERE tenant = $1",
            brand.tenant,
        )
        effects = {
            table: await conn.fetchval(f"SELECT count(*) FROM {table} WHERE tenant = $1", brand.tenant)
            for table in ("attribution.leads", "journey.people", "segmentation.profiles")
        }
    finally:
        await conn.close()
    assert (stored["n"], stored["keys"], stored["processed"]) == (LOAD_DELIVERIES,) * 3
    captured = [e for e in await brand.events(Topic.LEADS) if e["type"] == "siyu.lead.captured"]
    assert len({e["id"] for e in captured}) == len({e["data"]["lead_id"] for e in captured}) == LOAD_DELIVERIES
    assert effects == dict.fromkeys(effects, LOAD_DELIVERIES)
    await _nothing_dead_lettered(brand)


async def _no_event_lost(brand: Brand, story: dataset.Dataset) -> list[dict[str, Any]]:
    """Each event type the webhooks mean, counted once per event id against the story; persons after merges as
    the story has them. Returns the tenant's events, one per id."""
    stack = brand.platform.stack
    events = list(
        {e["id"]: e for e in await read_streams(stack.bootstrap_servers, stack.topics, brand.tenant)}.values()
    )
    seen = Counter(e["type"] for e in events)
    expected = story_truth.sent_events(story)
    assert {t: seen[t] for t in expected} == dict(expected)
    assert (
        len({e["data"]["lead_id"] for e in events if e["type"] == "siyu.lead.captured"})
        == expected["siyu.lead.captured"]
    )
    assert from_events(events).persons == story.expected_persons
    return events


async def _every_claim_recorded(brand: Brand, story: dataset.Dataset) -> None:
    """Attribution holds every claim the story posts (order, staff, role), its phase posted around attribution's
    crash. A claim carries no idempotency key: a post retried after a crash that had already committed it is held
    twice, which the first-claim rule makes harmless, so claims are compared as a set."""
    posted = {(s.order_no, s.staff_id, s.role) for p in story.phases for s in p.steps if isinstance(s, dataset.Claim)}
    conn = await asyncpg.connect(brand.platform.stack.admin_dsn)
    try:
        rows = await conn.fetch(
            "SELECT order_no, staff_id, role FROM attribution.claims WHERE tenant = $1", brand.tenant
        )
    finally:
        await conn.close()
    assert len(posted) == story.claims > 0
    assert {(r["order_no"], r["staff_id"], r["role"]) for r in rows} == posted


async def _nothing_dead_lettered(brand: Brand) -> None:
    stack = brand.platform.stack
    for topic in Topic:
        messages = await read_topic(stack.bootstrap_servers, stack.topics.dlq(topic), idle_s=0.3)
        mine = [m for m in messages if orjson.loads(m[1]).get("tenant") == brand.tenant]
        assert not mine, f"{len(mine)} events of {topic} went to the dead-letter topic"


async def _dcba_as_the_story_says(brand: Brand, story: dataset.Dataset, events: list[dict[str, Any]]) -> None:
    """Each person the story can point at (by WeCom id or order number) in the stage the story puts them in, and
    the stage counts of all persons (those known by a lead only included) as the story's."""
    survivor: dict[str, str] = {}
    for e in events:
        if e["type"] == "siyu.person.merged":
            survivor |= dict.fromkeys(e["data"]["merged_ids"], e["data"]["survivor_id"])

    def current(person: str) -> str:
        while person in survivor:
            person = survivor[person]
        return person

    anchors: dict[str, str] = {}
    for e in events:
        if e["type"] == "siyu.contact.added":
            anchors[f"wecom:{e['data']['external_userid']}"] = current(e["data"]["person_id"])
        elif e["type"] == "siyu.order.paid":
            anchors[f"order:{e['data']['order_no']}"] = current(e["data"]["person_id"])
    expected = story_truth.expected_dcba(story)
    stages: dict[str, str] = {}
    for anchor in expected.by_anchor:
        person = await brand.get("segmentation", f"/v1/persons/{anchors[anchor]}")
        (stages[anchor],) = [t["tag"] for t in person["tags"] if t["tag"] in story_truth.DCBA]
    assert stages == expected.by_anchor
    counts = (await brand.get("segmentation", "/v1/tags/counts"))["now"]
    assert {t: counts.get(t, 0) for t in story_truth.DCBA} == {t: expected.counts[t] for t in story_truth.DCBA}


async def _each_message_sent_once(brand: Brand, story: dataset.Dataset, before: int) -> None:
    """From WeCom's own record: no (recipient, body) twice, every message to a friend of its sender, and each
    greeting and group invitation the story causes sent once, unless a crash caught it between WeCom's answer and
    its commit: then journey records it ``failed: outcome_unknown`` after its lease (the README's promise: never a
    second message; such a touch may or may not have reached the person)."""
    await eventually(lambda: _none_sending(brand), timeout_s=SENDING_LEASE_S + 60, interval_s=1.0)
    await brand.settle()  # the outcome a lease recovery just committed may still be in journey's outbox
    messages = brand.platform.wecom.messages(before)
    assert [m for m in messages if m.fail_list] == [], "a message to someone who is not the sender's friend"
    received = Counter((recipient, m.content) for m in messages for recipient in m.external_userids)
    assert [k for k, n in received.items() if n > 1] == [], "a WeCom message sent twice"
    outcomes = {e["id"]: e for e in await brand.events(Topic.TOUCHES) if e["type"] != "siyu.touch.skipped"}
    for journey, expected in story_truth.expected_messages(story).items():
        mine = [e for e in outcomes.values() if e["data"]["journey_id"] == journey]
        sent = sum(e["type"] == "siyu.touch.sent" for e in mine)
        unknown = sum(e["data"].get("reason") == "outcome_unknown" for e in mine)
        at_wecom = sum(n for k, n in received.items() if k in expected)
        print(f"{journey}: {expected.total()} expected, {at_wecom} at WeCom, {sent} recorded sent, {unknown} unknown")
        assert len({e["data"]["touch_id"] for e in mine}) == len(mine), f"{journey}: two outcomes for one touch"
        assert sent + unknown == len(mine) == expected.total(), f"{journey}: one outcome per touch"
        assert sent <= at_wecom <= sent + unknown, f"{journey}: WeCom got what journey recorded sent"
    assert set(received) <= {k for e in story_truth.expected_messages(story).values() for k in e}


async def _none_sending(brand: Brand) -> bool:
    """No touch of the tenant left in ``sending`` (a crash's leftovers are recovered after the lease)."""
    conn = await asyncpg.connect(brand.platform.stack.admin_dsn)
    try:
        left = await conn.fetchval(
            "SELECT count(*) FROM journey.touches WHERE tenant = $1 AND status = 'sending'", brand.tenant
        )
    finally:
        await conn.close()
    return bool(left == 0)


async def _commissions_exact(brand: Brand, story: dataset.Dataset) -> None:
    expected = _expected_owed(story)
    assert {"xhs-kol-9", "xhs-koc-3"} <= set(expected) and len(story.refunds_fen) >= 3  # partners, refunds
    ledger: list[dict[str, Any]] = await brand.get("attribution", "/v1/ledger", limit=10_000)
    per_txn: dict[str, int] = defaultdict(int)
    owed: dict[str, int] = defaultdict(int)
    for entry in ledger:
        per_txn[entry["txn_id"]] += entry["amount_fen"]
        if entry["account"] != "expense:commission":
            owed[entry["payee_id"]] -= entry["amount_fen"]
    assert set(per_txn.values()) <= {0}, "every transaction balances"
    assert {p: v for p, v in owed.items() if v} == {p: v for p, v in expected.items() if v}


def _expected_owed(story: dataset.Dataset) -> dict[str, int]:
    """What the story earns each payee under the default plan: the first 1v1 claim 5 %, the KOL 10 % / KOC 5 % whose
    note brought a buyer we could recognise. After a refund an order owes floor(total × kept / amount): each payee
    the floor of its own exact part gross × kept / amount, the fen those floors lose going one each to the largest
    remainders, ties in the order of the shares (claim first, then source)."""
    claimed = {
        s.order_no: s.staff_id
        for p in story.phases
        for s in p.steps
        if isinstance(s, dataset.Claim) and s.role == "staff_1v1"
    }
    owed: dict[str, int] = defaultdict(int)
    for human in story.humans:
        partner = PARTNERS.get(human.origin) if not dataset.masked_receiver(human) else None
        for order_no in human.orders:
            amount = story.order_amounts_fen[order_no]
            gross: list[tuple[str, int]] = []
            if order_no in claimed:
                gross.append((claimed[order_no], amount * STAFF_BPS // 10_000))
            if partner is not None:
                gross.append((partner[0], amount * partner[1] // 10_000))
            kept = amount - story.refunds_fen.get(order_no, 0)
            still_owed = _largest_remainder([Fraction(g * kept, amount) for _, g in gross])
            for (payee, _), part in zip(gross, still_owed, strict=True):
                owed[payee] += part
    return dict(owed)


def _largest_remainder(quotas: list[Fraction]) -> list[int]:
    """The exact ``quotas`` in whole fen summing to the floor of their total: each its floor, then one more to the
    largest remainders (ties to the earlier)."""
    parts = [int(q) for q in quotas]
    order = sorted(range(len(quotas)), key=lambda i: (-(quotas[i] - parts[i]), i))
    for i in order[: int(sum(quotas, Fraction(0))) - sum(parts)]:
        parts[i] += 1
    return parts
