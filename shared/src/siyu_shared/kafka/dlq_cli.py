"""``siyu-dlq replay --topic orders.v1``: move dead-lettered events back to their topic."""

from __future__ import annotations

import argparse
import asyncio
import os

from siyu_shared.kafka.dlq import replay_dlq


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="siyu-dlq", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    replay = sub.add_parser("replay", help="republish a topic's DLQ to the topic")
    replay.add_argument("--topic", required=True, help="physical topic name, e.g. orders.v1 (not the .dlq)")
    replay.add_argument("--group", help="only events this consumer group dead-lettered")
    replay.add_argument("--limit", type=int, help="replay at most this many")
    replay.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"))
    args = parser.parse_args(argv)
    if not args.bootstrap:
        parser.error("set --bootstrap or KAFKA_BOOTSTRAP_SERVERS")
    report = asyncio.run(
        replay_dlq(bootstrap_servers=args.bootstrap, topic=args.topic, consumer_group=args.group, limit=args.limit)
    )
    print(f"{report.dlq_topic}: replayed {report.replayed}, skipped {report.skipped}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
