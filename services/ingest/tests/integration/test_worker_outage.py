"""A delivery whose processing meets an outage stays pending and is processed once the outage is over: an outage
is never the delivery's fault, so it is never marked failed for it."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest

from siyu_devstack.testing import eventually
from siyu_ingest import processing, samples, worker

from .conftest import Ingest

pytestmark = pytest.mark.integration


async def test_an_outage_while_processing_leaves_the_delivery_pending_not_failed(
    ingest: Ingest, monkeypatch: pytest.MonkeyPatch
) -> None:
    cuts = 3
    original = processing.process_delivery

    async def batch_fails(*_: Any, **__: Any) -> None:
        raise RuntimeError("a bad delivery in the batch: replay one by one")

    async def cut_then_work(*args: Any, **kwargs: Any) -> Any:
        nonlocal cuts
        if cuts:
            cuts -= 1
            raise ConnectionResetError("connection to the database was cut")  # an outage by its class
        return await original(*args, **kwargs)

    monkeypatch.setattr(worker, "apply_batch", batch_fails)
    monkeypatch.setattr(worker, "process_delivery", cut_then_work)
    lead = samples.xiaohongshu_lead(leads_id=f"L-{uuid4().hex[:8]}", phone="13800138000")
    assert (await ingest.post("xiaohongshu", samples.xiaohongshu(lead))).status_code == 200

    async def processed() -> bool:
        return cuts == 0 and [d["status"] for d in await ingest.deliveries()] == ["processed"]

    await eventually(processed, timeout_s=30)
    assert not await ingest.deliveries("failed")
