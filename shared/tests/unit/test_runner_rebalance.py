"""A revoke pauses the fetch loop, so the batches in flight drain even while messages keep coming."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from siyu_shared.kafka.runner import ConsumerRunner, RunnerConfig, _FinishBatchOnRevoke, _InFlight, _PartitionSlice


class _NoFetching:
    def getmany(self, *_: Any, **__: Any) -> Any:
        raise AssertionError("fetched while partitions were being revoked")


def _slice(partition: int) -> _PartitionSlice:
    return _PartitionSlice(partition=partition, records=[], first_offsets={}, next_offsets={})


async def test_a_revoke_pauses_fetching_until_the_batches_in_flight_are_done_then_assignment_resumes() -> None:
    in_flight = _InFlight()
    listener = _FinishBatchOnRevoke(in_flight)
    runner = ConsumerRunner(
        config=RunnerConfig(group_id="g", topics=("t",)),
        consumer=cast(Any, _NoFetching()),
        producer=cast(Any, None),
        sessions=cast(Any, None),
        handlers={},
    )
    runner._in_flight = in_flight
    release = asyncio.Event()
    in_flight.start(_slice(0), release.wait())
    revoking = asyncio.create_task(listener.on_partitions_revoked([]))
    await asyncio.sleep(0.01)
    assert in_flight.paused and not revoking.done()
    assert await runner._fetch(asyncio.Event()) == {}  # no new batch can start while the revoke waits
    release.set()
    await asyncio.wait_for(revoking, 1)
    assert not in_flight.partitions()
    await listener.on_partitions_assigned([])
    assert not in_flight.paused
