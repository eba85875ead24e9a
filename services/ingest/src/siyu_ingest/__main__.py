"""`siyu-ingest serve|migrate|keys|reprocess` (also `python -m siyu_ingest`).

``reprocess`` puts failed deliveries back in the queue after a fix; the worker applies them again, and their
events keep their deterministic ids, so nothing already published goes out twice:

    siyu-ingest reprocess --tenant glowlab            # every failed delivery of the tenant
    siyu-ingest reprocess --tenant glowlab --id 42 43 # just these
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from siyu_ingest.adapters import deliveries
from siyu_ingest.bootstrap import build_spec
from siyu_shared.cli import service_main
from siyu_shared.db.engine import create_engine, session_factory, unit_of_work


async def _reprocess(tenant: str, ids: list[int] | None) -> int:
    spec = build_spec()
    engine = create_engine(spec.settings.database_url, schema=spec.schema, pool_size=1)
    try:
        async with unit_of_work(session_factory(engine)) as session:
            return await deliveries.requeue(session, tenant=tenant, delivery_ids=ids)
    finally:
        await engine.dispose()


def reprocess_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="siyu-ingest reprocess", description="re-queue failed deliveries")
    parser.add_argument("--tenant", required=True)
    parser.add_argument("--id", type=int, nargs="*", dest="ids", help="delivery ids (default: every failed one)")
    args = parser.parse_args(argv)
    count = asyncio.run(_reprocess(args.tenant, args.ids or None))
    print(f"requeued {count} failed deliveries")
    return 0


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "reprocess":
        raise SystemExit(reprocess_main(args[1:]))
    raise SystemExit(service_main(build_spec, args))


if __name__ == "__main__":
    main()
