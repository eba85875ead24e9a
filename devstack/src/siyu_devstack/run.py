"""``siyu-stack run`` (``make run``): the local stack, all four services, and a development API key.

Starts Postgres and Kafka, migrates and starts each service as its own process, issues one admin key for the
development tenant into every service, prints the URLs, and stays up until Ctrl-C / SIGTERM, then stops the
services gracefully (SIGTERM: finish the batch, commit, close) and the stack.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

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
        with shutdown_signals() as stop:
            processes = service_processes(stack.env(), stack.log_dir)
            start_all(processes)
            api_key = asyncio.run(issue_everywhere(stack, tenant=args.tenant))
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
