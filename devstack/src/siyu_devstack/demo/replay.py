"""Post the demo through the real endpoints, and tell when the whole pipeline has settled.

Settled means: ingest has no pending delivery, no service has an unpublished outbox row, and every consumer group
of the deployment has committed up to the end of every partition it reads. Checked three times a second apart,
since a consumer that just committed may be about to write the next outbox row, and a background loop (journey's
delivery loop idles up to a second) may be about to send what is due.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import GroupCoordinatorNotAvailableError

from siyu_devstack.demo.dataset import Claim, Dataset, Delivery, Phase, Step
from siyu_devstack.demo.tenant import Endpoints
from siyu_devstack.stack import Stack
from siyu_devstack.testing import service_spec
from siyu_shared.events.topics import TopicNames, consumer_group_id
from siyu_shared.services import SERVICES

Progress = Callable[[str], None]


class ReplayError(RuntimeError):
    pass


@dataclass
class ReplayReport:
    deliveries: int = 0
    claims: int = 0
    rejected: list[str] = field(default_factory=list)
    seconds: float = 0.0


async def post_delivery(http: httpx.AsyncClient, ingest: str, tenant: str, delivery: Delivery) -> httpx.Response:
    return await http.post(
        f"{ingest}/v1/webhooks/{tenant}/{delivery.channel}",
        content=delivery.body,
        headers=delivery.headers,
        params=delivery.query,
    )


async def post_claim(http: httpx.AsyncClient, attribution: str, api_key: str, claim: Claim) -> httpx.Response:
    body = {"order_no": claim.order_no, "staff_id": claim.staff_id, "role": claim.role, "via": claim.via}
    return await http.post(f"{attribution}/v1/claims", json=body, headers={"Authorization": f"Bearer {api_key}"})


async def replay(
    http: httpx.AsyncClient,
    urls: Endpoints,
    dataset: Dataset,
    *,
    tenant: str,
    api_key: str,
    groups: Mapping[str, tuple[str, ...]],
    bootstrap: str,
    progress: Progress = lambda _: None,
    concurrency: int = 8,
    settle_timeout_s: float = 180.0,
) -> ReplayReport:
    """Each phase's requests concurrently, then wait for the pipeline to settle before the next phase."""
    report = ReplayReport()
    started = time.monotonic()
    for phase in dataset.phases:
        await send_phase(http, urls, phase, tenant=tenant, api_key=api_key, report=report, concurrency=concurrency)
        progress(f"{phase.name}: {len(phase.steps)} sent")
        await settle(
            http, urls, tenant=tenant, api_key=api_key, bootstrap=bootstrap, groups=groups, timeout_s=settle_timeout_s
        )
    report.seconds = time.monotonic() - started
    return report


async def send_step(
    http: httpx.AsyncClient, urls: Endpoints, step: Step, *, tenant: str, api_key: str, retry_s: float = 60.0
) -> httpx.Response:
    """Post one step; like the platforms (and a well-behaved internal tool), retry on 5xx, 429 and connection
    errors with backoff for up to ``retry_s``. A 4xx other than 429 is returned at once."""
    deadline = time.monotonic() + retry_s
    pause = 0.2
    while True:
        try:
            if isinstance(step, Delivery):
                reply = await post_delivery(http, urls.ingest, tenant, step)
            else:
                reply = await post_claim(http, urls.attribution, api_key, step)
            if reply.status_code < 500 and reply.status_code != 429:
                return reply
            failure = f"{reply.status_code} {reply.text[:200]}"
        except httpx.TransportError as exc:
            failure = repr(exc)
        if time.monotonic() + pause > deadline:
            raise ReplayError(f"gave up after {retry_s:.0f}s: {failure}")
        await asyncio.sleep(pause)
        pause = min(pause * 2, 2.0)


async def send_phase(
    http: httpx.AsyncClient,
    urls: Endpoints,
    phase: Phase,
    *,
    tenant: str,
    api_key: str,
    report: ReplayReport,
    concurrency: int = 8,
    retry_s: float = 60.0,
    sent: Callable[[int], None] = lambda _: None,
) -> None:
    """Every step of the phase, ``concurrency`` at a time; ``sent`` hears the running count."""
    steps = iter(phase.steps)
    count = 0

    async def worker() -> None:
        nonlocal count
        for step in steps:
            reply = await send_step(http, urls, step, tenant=tenant, api_key=api_key, retry_s=retry_s)
            if isinstance(step, Delivery):
                report.deliveries += 1
                what = f"{step.channel} webhook"
            else:
                report.claims += 1
                what = f"claim of {step.order_no} by {step.staff_id}"
            if reply.status_code >= 300:
                report.rejected.append(f"{what}: {reply.status_code} {reply.text[:200]}")
            count += 1
            sent(count)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    if report.rejected:
        raise ReplayError("the platform refused part of the demo:\n  " + "\n  ".join(report.rejected[:10]))


async def settle(
    http: httpx.AsyncClient,
    urls: Endpoints,
    *,
    tenant: str,
    api_key: str,
    bootstrap: str,
    groups: Mapping[str, tuple[str, ...]],
    timeout_s: float = 180.0,
) -> None:
    """Return once the pipeline is quiet (see the module doc); raise ReplayError after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    quiet_in_a_row = 0
    reason: str | None = "not checked"
    while time.monotonic() < deadline:
        try:
            reason = await _busy(http, urls, tenant=tenant, api_key=api_key, bootstrap=bootstrap, groups=groups)
        except httpx.TransportError as exc:  # a service restarting, or a kept-alive connection closed under us
            reason = f"a service did not answer: {exc!r}"
        quiet_in_a_row = quiet_in_a_row + 1 if reason is None else 0
        if quiet_in_a_row >= 3:
            return
        await asyncio.sleep(1.0)
    raise ReplayError(f"the pipeline did not settle in {timeout_s:.0f}s: {reason}")


async def _busy(
    http: httpx.AsyncClient,
    urls: Endpoints,
    *,
    tenant: str,
    api_key: str,
    bootstrap: str,
    groups: Mapping[str, tuple[str, ...]],
) -> str | None:
    """Why the pipeline is not quiet yet, or None."""
    pending = await http.get(
        f"{urls.ingest}/v1/tenants/{tenant}/deliveries",
        params={"status": "pending", "limit": 1},
        headers={"Authorization": f"Bearer {api_key}"},
    )
    if pending.status_code != 200:
        return f"ingest deliveries: {pending.status_code}"
    if pending.json():
        return "ingest has pending deliveries"
    for name, url in (
        ("ingest", urls.ingest),
        ("segmentation", urls.segmentation),
        ("journey", urls.journey),
        ("attribution", urls.attribution),
    ):
        backlog = outbox_backlog((await http.get(f"{url}/metrics")).text)
        if backlog:
            return f"{name} outbox holds {backlog} unpublished events"
    lag = await consumer_lag(bootstrap, groups)
    if lag:
        return f"consumers behind by {lag} messages"
    return None


def outbox_backlog(metrics: str) -> int:
    """The ``siyu_outbox_backlog`` gauge(s) in a Prometheus text exposition."""
    total = 0.0
    for line in metrics.splitlines():
        if line.startswith("siyu_outbox_backlog{"):
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


def subscriptions(stack: Stack) -> dict[str, tuple[str, ...]]:
    """Consumer group → topic names, as the four services declare them (``ServiceSpec.consumers``)."""
    out: dict[str, tuple[str, ...]] = {}
    names = TopicNames(stack.topic_prefix)
    for service in SERVICES:
        spec = service_spec(service, stack)
        for consumer in spec.consumers:
            group = consumer_group_id(stack.topic_prefix, service, consumer.name)
            out[group] = tuple(names.name(topic) for topic in consumer.topics)
    return out


async def consumer_lag(bootstrap: str, groups: Mapping[str, tuple[str, ...]]) -> int:
    """Messages the groups have not committed yet, over every partition of the topics they read."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await admin.start()
    await consumer.start()
    try:
        topics = sorted({t for names in groups.values() for t in names})
        described = await admin.describe_topics(topics)
        partitions = {
            d["topic"]: [TopicPartition(d["topic"], p["partition"]) for p in d["partitions"]]
            for d in described
            if not d.get("error_code")
        }
        ends = await consumer.end_offsets([tp for tps in partitions.values() for tp in tps])
        lag = 0
        for group, names in groups.items():
            try:
                committed = await admin.list_consumer_group_offsets(group)
            except GroupCoordinatorNotAvailableError:  # no group has committed anything on this cluster yet
                committed = {}
            for tp in (tp for name in names for tp in partitions.get(name, ())):
                meta = committed.get(tp)
                lag += max(0, ends[tp] - (meta.offset if meta is not None and meta.offset >= 0 else 0))
        return lag
    finally:
        await asyncio.sleep(0)  # aiokafka: stopping before its start-up task ran raises CancelledError
        await consumer.stop()
        await admin.close()
