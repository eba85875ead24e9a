"""``siyu-stack run`` (``make run``): the local stack, all four services, and a development API key.

Starts Postgres and Kafka, migrates and starts each service as its own process, issues one admin key for the
development tenant into every service, replays the demo (``siyu_devstack.demo``; ``DEMO=0`` or ``--no-demo``
skips it) and prints what the platform made of it, prints the URLs, and stays up until Ctrl-C / SIGTERM, then
stops the services gracefully (SIGTERM: finish the batch, commit, close) and the stack. Postgres or Kafka dying
meanwhile stops nothing: the services ride out the outage and the supervisor (``cli.serve_until_signal``) starts
the server again if it stays down; only a service that exits ends the run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from datetime import UTC, datetime

from siyu_devstack.demo import dataset, play, wecom_sim
from siyu_devstack.services import ServiceProcess, service_processes, start_all, stop_all
from siyu_devstack.stack import Stack
from siyu_shared.auth.keys import new_key, store_key
from siyu_shared.db.engine import create_engine, session_factory, unit_of_work

log = logging.getLogger("siyu_devstack.run")

DEV_TENANT = "demo"


def configure(parser: argparse.ArgumentParser) -> None:
    from siyu_devstack.cli import add_stack_options

    add_stack_options(parser)
    parser.add_argument("--tenant", default=DEV_TENANT, help="tenant of the development API key")
    parser.add_argument(
        "--no-demo",
        dest="demo",
        action="store_false",
        default=demo_wanted(os.environ.get("DEMO")),
        help="do not replay the demo dataset (also DEMO=0, false, no or off)",
    )


def demo_wanted(value: str | None) -> bool:
    """``DEMO`` unset or anything but 0/false/no/off (any case) replays the demo."""
    return (value or "1").strip().lower() not in {"0", "false", "no", "off"}


def handle(args: argparse.Namespace) -> int:
    from siyu_devstack.cli import (
        block_shutdown_signals,
        print_env,
        serve_until_signal,
        shutdown_signals,
        stack_from_args,
        start_interruptibly,
    )

    stack = stack_from_args(args)
    try:
        start_interruptibly(stack)
    except KeyboardInterrupt:
        return 130
    processes: list[ServiceProcess] = []
    try:
        with shutdown_signals() as stop, contextlib.ExitStack() as resources:
            processes = service_processes(stack.env(), stack.log_dir)
            start_all(processes)
            api_key = asyncio.run(issue_everywhere(stack, tenant=args.tenant))
            if args.demo:
                data = dataset.build(now=datetime.now(UTC))
                _, wecom_api = resources.enter_context(wecom_sim.serving(data.contacts))
                _replay_demo(stack, processes, data, api_key=api_key, tenant=args.tenant, wecom_api=wecom_api)
            print_env(stack)
            _print_services(processes, api_key, args.tenant)
            sys.stdout.flush()
            return serve_until_signal(stack, stop=stop, extra_check=lambda: _dead_service(processes))
    finally:
        block_shutdown_signals()
        stop_all(processes)
        stack.stop()


async def issue_everywhere(stack: Stack, *, tenant: str) -> str:
    """One admin key for ``tenant``, stored (hashed) in every service so the same key works on all of them."""
    issued, secret_hash = new_key(tenant=tenant, scopes=("admin",))
    for service, dsn in stack.service_dsns.items():
        engine = create_engine(dsn, schema=service, pool_size=1)
        try:
            async with unit_of_work(session_factory(engine)) as session:
                await store_key(session, issued=issued, secret_hash=secret_hash, name="siyu-stack run")
        finally:
            await engine.dispose()
    return issued.plaintext


def _replay_demo(
    stack: Stack,
    processes: list[ServiceProcess],
    data: dataset.Dataset,
    *,
    api_key: str,
    tenant: str,
    wecom_api: str,
) -> None:
    """Replay the demo and print its summary; a failure is reported and leaves the services up to look into."""
    print(f"# Replaying the demo for tenant {tenant!r} ({data.deliveries} webhooks, {data.claims} claims)…")
    sys.stdout.flush()
    urls = {proc.name: proc.url for proc in processes}
    try:
        result = asyncio.run(
            play.play(
                stack,
                urls,
                tenant_id=tenant,
                api_key=api_key,
                wecom_api=wecom_api,
                data=data,
                progress=lambda line: print(f"#   {line}", flush=True),
            )
        )
    except Exception as exc:  # a demo failure must not take the stack down with it
        log.exception("demo failed")
        print(f"# The demo failed: {exc} (the services stay up; logs in {stack.log_dir})")
        return
    for line in result.lines():
        print(f"# {line}")


def _print_services(processes: list[ServiceProcess], api_key: str, tenant: str) -> None:
    print("#")
    print("# Siyu is up. Services (OpenAPI at <url>/docs, health at /healthz and /readyz, metrics at /metrics):")
    for proc in processes:
        print(f"#   {proc.name:<13} {proc.url}   logs: {proc.log_path}")
    print(f"# Admin API key for tenant {tenant!r} (valid on every service): {api_key}")
    print("# Press Ctrl-C to stop everything.")


def _dead_service(processes: list[ServiceProcess]) -> str | None:
    for proc in processes:
        if proc.process is not None and proc.process.poll() is not None:
            return f"service {proc.name} exited with {proc.process.returncode} (log: {proc.log_path})"
    return None
