"""``siyu-stack``: start, list and clean local stacks from a shell.

Subcommands are entries of :data:`COMMANDS` (name, help, a function adding its options, a handler returning the exit
code), so adding one, such as ``run`` that also starts the services, is one :class:`Command` and one line here.
Helpers other commands reuse: :func:`add_stack_options` / :func:`stack_from_args` (same flags everywhere),
:func:`print_env` (the ``export`` lines) and :func:`serve_until_signal` (block until Ctrl-C or SIGTERM, restarting
a server that dies meanwhile: the services ride out the outage, nothing else is stopped).

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
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Protocol

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
    grace_s: float = 3.0,
    extra_check: Callable[[], str | None] | None = None,
) -> int:
    """Block until SIGINT/SIGTERM (exit code 0), or until ``extra_check`` reports a problem (1).

    A server of the stack (Postgres, Kafka) that dies meanwhile is not a reason to stop: whatever runs on the stack
    rides out its outage. If it is still down after ``grace_s`` (someone may be restarting it), it is started
    again on the same port and data, and again with backoff while that fails; its return is logged either way.
    Pass the event of an enclosing :func:`shutdown_signals` when a signal may arrive before this is called.
    """
    if stop is None:
        with shutdown_signals() as own:
            return serve_until_signal(stack, stop=own, poll_s=poll_s, grace_s=grace_s, extra_check=extra_check)
    watches = [
        ServerWatch(name, server, grace_s=grace_s)
        for name, server in (("Postgres", stack.postgres), ("Kafka", stack.kafka))
        if server is not None
    ]
    while not stop.wait(poll_s):
        for watch in watches:
            watch.poll()
        problem = extra_check() if extra_check else None
        if problem:
            log.error("%s; stopping the stack (logs in %s)", problem, stack.log_dir)
            return 1
    return 0


class Server(Protocol):
    @property
    def running(self) -> bool: ...

    def start(self) -> str: ...


class ServerWatch:
    """Notices a server that died, and starts it again if it stays down for ``grace_s``."""

    def __init__(self, name: str, server: Server, *, grace_s: float, clock: Callable[[], float] = time.monotonic):
        self.name = name
        self.server = server
        self.grace_s = grace_s
        self._clock = clock
        self._down_since: float | None = None
        self._next_try = 0.0
        self._backoff = grace_s

    def poll(self) -> None:
        if self.server.running:
            if self._down_since is not None:
                log.warning("%s is back after %.1fs", self.name, self._clock() - self._down_since)
                self._down_since = None
                self._backoff = self.grace_s
            return
        now = self._clock()
        if self._down_since is None:
            log.warning("%s is down; the services wait for it (restarting it in %.0fs)", self.name, self.grace_s)
            self._down_since = now
            self._next_try = now + self.grace_s
        if now < self._next_try:
            return
        log.warning("%s still down after %.1fs: starting it again", self.name, now - self._down_since)
        try:
            self.server.start()
        except Exception:
            log.exception("starting %s again failed; trying again in %.0fs", self.name, self._backoff)
            self._next_try = self._clock() + self._backoff
            self._backoff = min(60.0, self._backoff * 2)
            return
        log.warning("%s is back after %.1fs (started again)", self.name, self._clock() - self._down_since)
        self._down_since = None
        self._backoff = self.grace_s


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
