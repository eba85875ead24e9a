"""``siyu-stack``: start, list and clean local stacks from a shell.

Subcommands are entries of :data:`COMMANDS` (name, help, a function adding its options, a handler returning the exit
code), so adding one, such as ``run`` that also starts the services, is one :class:`Command` and one line here.
Helpers other commands reuse: :func:`add_stack_options` / :func:`stack_from_args` (same flags everywhere),
:func:`print_env` (the ``export`` lines) and :func:`serve_until_signal` (block until Ctrl-C or SIGTERM, noticing a
server that dies meanwhile).

stdout carries only the environment (``export K=V`` lines and ``#`` comments), logs go to stderr, so
``siyu-stack up > .state/env.sh`` and ``source .state/env.sh`` from another shell work.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import shlex
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import FrameType

from siyu_devstack.stack import Stack, clean_stale_stacks, list_stacks

log = logging.getLogger("siyu_devstack.cli")


@dataclass(frozen=True)
class Command:
    """One subcommand: ``configure`` adds its arguments, ``handler`` runs it and returns the exit code."""

    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    handler: Callable[[argparse.Namespace], int]


# -- helpers shared by subcommands --------------------------------------------------------------------------------


def add_stack_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fast", action="store_true", help="Postgres without durability (fsync off): for tests")
    parser.add_argument("--partitions", type=int, default=None, help="partitions per topic (SIYU_KAFKA_PARTITIONS, 6)")
    parser.add_argument("--topic-prefix", default=None, help="prefix before every topic name (KAFKA_TOPIC_PREFIX)")
    parser.add_argument("--keep", action="store_true", help="keep the stack directory (data, logs) after stopping")
    parser.add_argument("--id", dest="stack_id", default=None, help="stack id (default: time, pid and a random part)")


def stack_from_args(args: argparse.Namespace) -> Stack:
    return Stack(
        stack_id=args.stack_id,
        fast=args.fast,
        partitions=args.partitions,
        topic_prefix=args.topic_prefix,
        keep=args.keep or None,
    )


def print_env(stack: Stack, out: Callable[[str], None] = print) -> None:
    """The stack's environment as ``export`` lines, then its URLs and directories as comments."""
    for key, value in stack.env().items():
        out(f"export {key}={shlex.quote(value)}")
    timings = ", ".join(f"{k} {v:.1f}s" for k, v in stack.timings.items())
    out(f"# stack {stack.id} is up ({timings})")
    out(f"# postgres (admin, {stack.database}): {stack.admin_dsn}")
    out(f"# kafka bootstrap:    {stack.bootstrap_servers}")
    out(f"# state and logs:     {stack.dir}  ({stack.log_dir})")
    reuse = f"DATABASE_URL={stack.server_admin_dsn} KAFKA_BOOTSTRAP_SERVERS={stack.bootstrap_servers}"
    out(f"# reuse from tests:   {reuse}")


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def start_interruptibly(stack: Stack) -> None:
    """Start the stack; SIGTERM during the start behaves like Ctrl-C (what started is stopped again)."""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        stack.start()
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def shutdown_signals() -> Iterator[threading.Event]:
    """While active, SIGINT and SIGTERM set the yielded event instead of interrupting the program."""
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def block_shutdown_signals() -> None:
    """From now on SIGINT/SIGTERM wait: a second Ctrl-C (or a supervisor's repeat) must not cut a teardown short.

    Called at the start of a teardown; the process exits when it is done, so they are never unblocked.
    """
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})


def serve_until_signal(
    stack: Stack,
    *,
    stop: threading.Event | None = None,
    poll_s: float = 1.0,
    extra_check: Callable[[], str | None] | None = None,
) -> int:
    """Block until SIGINT/SIGTERM (exit code 0), or until a server dies or ``extra_check`` reports a problem (1).

    Pass the event of an enclosing :func:`shutdown_signals` when a signal may arrive before this is called.
    """
    if stop is None:
        with shutdown_signals() as own:
            return serve_until_signal(stack, stop=own, poll_s=poll_s, extra_check=extra_check)
    while not stop.wait(poll_s):
        problem = _dead_server(stack) or (extra_check() if extra_check else None)
        if problem:
            log.error("%s; stopping the stack (logs in %s)", problem, stack.log_dir)
            return 1
    return 0


def _dead_server(stack: Stack) -> str | None:
    if stack.postgres is not None and not stack.postgres.running:
        return "Postgres exited unexpectedly"
    if stack.kafka is not None and not stack.kafka.running:
        return "Kafka exited unexpectedly"
    return None


# -- subcommands -------------------------------------------------------------------------------------------------


def _up(args: argparse.Namespace) -> int:
    stack = stack_from_args(args)
    try:
        start_interruptibly(stack)
    except KeyboardInterrupt:
        return 130
    try:
        with shutdown_signals() as stop:
            print_env(stack)
            sys.stdout.flush()
            return serve_until_signal(stack, stop=stop)
    finally:
        block_shutdown_signals()
        stack.stop()


def _clean(args: argparse.Namespace) -> int:
    removed = clean_stale_stacks()
    print("\n".join(f"removed {stack_id}" for stack_id in removed) if removed else "no stale stacks")
    return 0


def _configure_status(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print stack.json of every stack as one JSON list")


def _status(args: argparse.Namespace) -> int:
    stacks = list_stacks()
    if args.json:
        print(json.dumps([{**s.state, "owner_alive": s.owner_alive} for s in stacks], indent=2))
        return 0
    if not stacks:
        print("no stacks")
        return 0
    print(f"{'ID':<30} {'STATUS':<9} {'OWNER':<14} {'POSTGRES':<9} {'KAFKA':<9} DIR")
    for s in stacks:
        owner = f"{s.owner_pid} {'alive' if s.owner_alive else 'DEAD'}"
        pg = s.state.get("postgres", {}).get("port") or ("ext" if s.state.get("postgres", {}).get("external") else "-")
        kafka = s.state.get("kafka", {}).get("port") or ("ext" if s.state.get("kafka", {}).get("external") else "-")
        print(f"{s.id:<30} {s.status:<9} {owner:<14} {pg!s:<9} {kafka!s:<9} {s.dir}")
    return 0


def _run_configure(parser: argparse.ArgumentParser) -> None:
    from siyu_devstack import run

    run.configure(parser)


def _run_handle(args: argparse.Namespace) -> int:
    from siyu_devstack import run

    return run.handle(args)


COMMANDS: list[Command] = [
    Command("up", "start a stack, print its environment, stop it on Ctrl-C / SIGTERM", add_stack_options, _up),
    Command(
        "run",
        "start the stack and all four services, print their URLs, stop everything on Ctrl-C / SIGTERM",
        _run_configure,
        _run_handle,
    ),
    Command("clean", "stop and remove stacks left behind by killed runs", lambda parser: None, _clean),
    Command("status", "list the stacks of this checkout", _configure_status, _status),
]


def build_parser(commands: Sequence[Command] = COMMANDS) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="siyu-stack", description="Local Postgres + Kafka stacks for Siyu.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv: debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in commands:
        sub = subparsers.add_parser(command.name, help=command.help, description=command.help)
        command.configure(sub)
        sub.set_defaults(handler=command.handler)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.WARNING if args.quiet else logging.DEBUG if args.verbose > 1 else logging.INFO
    logging.basicConfig(level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.verbose < 2:
        logging.getLogger("aiokafka").setLevel(logging.WARNING)
        logging.getLogger("httpx").setLevel(logging.WARNING)
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
