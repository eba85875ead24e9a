"""Fuzz the webhook edge over HTTP: garbage, truncations and bit flips (signed, so they reach the parsers).

No answer is a 5xx, and every delivery that was accepted ends processed or failed with a reason: none is stuck.
"""

from __future__ import annotations

import random

import pytest

from siyu_devstack.testing import eventually
from siyu_ingest import samples

from .conftest import Ingest

pytestmark = pytest.mark.integration


def seeds() -> dict[str, list[bytes]]:
    return {
        "douyin": [samples.douyin(samples.douyin_dm(open_id="o", text="13800000000", message_id="@x"))[0]],
        "xiaohongshu": [samples.xiaohongshu(samples.xiaohongshu_lead(leads_id="f", phone="13800138000"))[0]],
        "oceanengine": [samples.oceanengine(samples.oceanengine_clue(message_id="m", clue_id="c", telephone="1"))[0]],
        "doudian": [samples.doudian([samples.doudian_message(tag="110", msg_id="d", p_id=1)])[0]],
        "tmall": [
            samples.tmall(
                samples.tmall_message(message_id="t", topic="taobao_trade_TradeBuyerPay", tid="1", buyer="b")
            )[0]
        ],
        "wecom": [samples.wecom_add_contact(external_userid="wmF")],
    }


def mutate(rng: random.Random, body: bytes) -> bytes:
    choice = rng.randrange(5)
    if choice == 0:
        return rng.randbytes(rng.randrange(0, 120))
    if choice == 1:
        return body[: rng.randrange(0, len(body))]
    data = bytearray(body)
    for _ in range(rng.randrange(1, 6)):
        at = rng.randrange(len(data))
        data[at] = rng.choice(b'{}[]",:0123456789 \x00\xff' + bytes([rng.randrange(256)]))
    if choice == 3:
        data += b'"' * rng.randrange(3)
    return bytes(data)


async def test_fuzzed_webhooks_never_get_a_5xx_and_never_get_stuck(ingest: Ingest) -> None:
    rng = random.Random(20261122)
    statuses: dict[int, int] = {}
    for channel, bodies in seeds().items():
        for _ in range(60):
            body = mutate(rng, rng.choice(bodies))
            signed = (
                samples.sign_raw(channel, body) if rng.random() < 0.85 else (body, {"x-douyin-signature": "00"}, {})
            )
            response = await ingest.post(channel, signed)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            assert response.status_code < 500, (channel, body, response.text)
    assert set(statuses) <= {200, 400, 401, 404, 413}
    assert statuses.get(200) and statuses.get(400) and statuses.get(401)

    async def none_pending() -> bool:
        return not await ingest.deliveries("pending")

    await eventually(none_pending)
    for delivery in await ingest.deliveries():
        assert delivery["status"] in ("processed", "failed")
        if delivery["status"] == "failed":
            assert delivery["error"]
