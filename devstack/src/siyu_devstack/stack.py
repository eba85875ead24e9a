"""One local stack: an embedded Postgres and a single-node Kafka, provisioned for the four services.

Every stack lives in its own directory ``<state>/stacks/<stack-id>/`` (``<state>`` is ``<repo>/.state`` unless
``SIYU_STATE_DIR`` says otherwise) with its own free ports, so ``make run`` and any number of test sessions can run
side by side. ``stack.json`` in that directory records who owns the stack (pid and start time of the owning process),
the server pids and ports, DSNs and the bootstrap address: ``siyu-stack status`` reads it, and a run that was killed
(so never stopped its servers) is recognised by its dead owner and cleaned up by the next stack that starts.

Either half can be replaced by existing infrastructure: with ``DATABASE_URL`` set (an admin DSN) no Postgres is
started, with ``KAFKA_BOOTSTRAP_SERVERS`` set no Kafka is started; provisioning and topic creation still run.

Layout of a stack directory::

    stack.json            state (see above), rewritten atomically
    postgres/data/        PGDATA (owned by the postgres OS user when we are root)
    kafka/                server.properties, log4j2.xml, data/ (KRaft metadata and topic logs)
    logs/                 postgres.log, kafka.log (broker log4j), kafka.out (JVM stdout/stderr)
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import secrets
import shutil
import signal
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import psutil  # type: ignore[import-untyped,unused-ignore]

from siyu_devstack.aio import run_sync
from siyu_devstack.kafka import LocalKafka
from siyu_devstack.postgres import EmbeddedPostgres
from siyu_devstack.procs import kill_tree, wait_gone
from siyu_devstack.provision import DEFAULT_DATABASE, database_dsn, libpq_dsn, provision
from siyu_devstack.topics import create_topics
from siyu_shared.events.topics import DEFAULT_PARTITIONS, TopicNames
from siyu_shared.services import SERVICES, env_prefix_of

log = logging.getLogger(__name__)

STATE_FILE = "stack.json"
_ORPHAN_GRACE_S = 60.0  # a directory without stack.json younger than this may be a stack being created right now


# -- locations ------------------------------------------------------------------------------------------------


def repo_root() -> Path | None:
    """The checkout this (editable) package lives in, or None when installed elsewhere."""
    candidate = Path(__file__).resolve().parents[3]
    return candidate if (candidate / "devstack" / "pyproject.toml").exists() else None


def state_root() -> Path:
    """``$SIYU_STATE_DIR``, else ``<repo>/.state`` (else ``./.state`` for a non-editable install)."""
    override = os.environ.get("SIYU_STATE_DIR")
    if override:
        return Path(override).absolute()
    return (repo_root() or Path.cwd()) / ".state"


def stacks_root(state: Path | None = None) -> Path:
    return (state or state_root()) / "stacks"


def cache_root(state: Path | None = None) -> Path:
    """Where downloaded Kafka jars are kept, shared by every stack (``$SIYU_CACHE_DIR`` overrides)."""
    override = os.environ.get("SIYU_CACHE_DIR")
    return Path(override).absolute() if override else (state or state_root()) / "cache"


def stack_secret(state: Path | None = None) -> str:
    """Secret the service passwords are derived from: ``$SIYU_STACK_SECRET`` or ``<state>/secret`` (made once).

    Shared by all stacks of a checkout so that provisioning an existing server (``DATABASE_URL``) twice, or from two
    stacks, never changes a password a running service is using.
    """
    env = os.environ.get("SIYU_STACK_SECRET")
    if env:
        return env
    path = (state or state_root()) / "secret"
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return path.read_text().strip()


# -- stack directories and stale stacks -------------------------------------------------------------------------


def _process_started(pid: int) -> float | None:
    """Start time of a live process (None when it is gone or a zombie: killed, not yet reaped)."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return float(proc.create_time())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def _alive(pid: int | None, started: float | None) -> bool:
    """Whether ``pid`` is still the process that started at ``started`` (pids get reused)."""
    if not pid:
        return False
    actual = _process_started(pid)
    if actual is None:
        return False
    return started is None or abs(actual - started) < 1.0


@dataclass(frozen=True)
class StackInfo:
    """A stack directory as found on disk."""

    id: str
    dir: Path
    state: dict[str, Any]

    @property
    def owner_pid(self) -> int | None:
        pid = self.state.get("owner_pid")
        return int(pid) if pid else None

    @property
    def owner_alive(self) -> bool:
        return _alive(self.owner_pid, self.state.get("owner_started"))

    @property
    def status(self) -> str:
        return str(self.state.get("status", "unknown"))

    @property
    def stale(self) -> bool:
        """Left behind: its owner is gone (killed, or exited after a stop that kept the directory)."""
        if self.state:
            return not self.owner_alive
        try:
            age = time.time() - self.dir.stat().st_mtime
        except OSError:
            return False
        return age > _ORPHAN_GRACE_S


def _read_state(directory: Path) -> dict[str, Any]:
    try:
        data = json.loads((directory / STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def list_stacks(state: Path | None = None) -> list[StackInfo]:
    """Every stack directory under ``<state>/stacks``, oldest first."""
    root = stacks_root(state)
    if not root.is_dir():
        return []
    dirs = sorted((d for d in root.iterdir() if d.is_dir()), key=lambda d: d.name)
    return [StackInfo(d.name, d, _read_state(d)) for d in dirs]


def _references(proc: psutil.Process, directory: Path) -> bool:
    """Whether a process's command line mentions ``directory`` (a server of that stack, not a reused pid)."""
    try:
        cmdline = proc.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False
    here = str(directory)
    return any(arg == here or here + os.sep in arg for arg in cmdline)


def _stack_processes(info: StackInfo) -> list[psutil.Process]:
    """The recorded server pids (verified) plus any process whose command line points into the stack directory."""
    found: dict[int, psutil.Process] = {}
    recorded = [info.state.get(part, {}).get("pid") for part in ("postgres", "kafka")]
    for pid in recorded:
        if pid:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc = psutil.Process(int(pid))
                if _references(proc, info.dir):
                    found[proc.pid] = proc
    for proc in psutil.process_iter():
        if proc.pid != os.getpid() and proc.pid not in found and _references(proc, info.dir):
            found[proc.pid] = proc
    return list(found.values())


def _terminate(procs: list[psutil.Process], timeout: float = 10.0) -> None:
    """Ask politely (postgres: SIGINT = fast shutdown; others: SIGTERM), then SIGKILL whatever remains."""
    postgres = [p for p in procs if _name(p).startswith("postgres")]
    others = [p for p in procs if p not in postgres]
    for group, sig in ((postgres, signal.SIGINT), (others, signal.SIGTERM)):
        for proc in group:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.send_signal(sig)
    for proc in wait_gone(procs, timeout):
        kill_tree(proc.pid)


def clean_stale_stacks(state: Path | None = None) -> list[str]:
    """Stop the servers of stacks whose owner is gone and delete their directories; returns the removed ids."""
    removed: list[str] = []
    for info in list_stacks(state):
        if not info.stale:
            continue
        procs = _stack_processes(info)
        if info.status == "stopped" and not procs:
            log.info("removing stack %s (stopped, kept by its finished owner)", info.id)
        else:
            described = ", ".join(f"{p.pid} ({_name(p)})" for p in procs) or "none running"
            log.warning(
                "cleaning stale stack %s (owner pid %s is gone, status %s); stopping processes: %s",
                info.id,
                info.owner_pid,
                info.status,
                described,
            )
            _terminate(procs)
        shutil.rmtree(info.dir, ignore_errors=True)
        if not info.dir.exists():
            removed.append(info.id)
    return removed


def _name(proc: psutil.Process) -> str:
    try:
        return str(proc.name())
    except psutil.Error:
        return "?"


def new_stack_id() -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{secrets.token_hex(2)}"


# -- the stack ------------------------------------------------------------------------------------------------


class Stack:
    """A running (or startable) local stack; use as a context manager or call :meth:`start`/:meth:`stop`.

    ``fast`` turns off Postgres durability (tests). ``keep`` keeps the directory (logs, data) after :meth:`stop`;
    the next stack to start removes it once this process has exited. Default from ``SIYU_KEEP_STACK=1``.
    ``kafka_properties``: extra broker settings (``server.properties``), e.g. for fault tests.
    """

    def __init__(
        self,
        *,
        stack_id: str | None = None,
        fast: bool = False,
        partitions: int | None = None,
        database: str = DEFAULT_DATABASE,
        topic_prefix: str | None = None,
        keep: bool | None = None,
        state_dir: Path | None = None,
        kafka_heap: str = "384m",
        kafka_properties: Mapping[str, str] | None = None,
    ) -> None:
        self.state_dir = Path(state_dir).absolute() if state_dir else state_root()
        self.id = stack_id or new_stack_id()
        self.dir = stacks_root(self.state_dir) / self.id
        self.log_dir = self.dir / "logs"
        self.fast = fast
        env_partitions = os.environ.get("SIYU_KAFKA_PARTITIONS")
        self.partitions = partitions or (int(env_partitions) if env_partitions else DEFAULT_PARTITIONS)
        self.database = database
        self.topic_prefix = topic_prefix if topic_prefix is not None else os.environ.get("KAFKA_TOPIC_PREFIX", "")
        self.keep = keep if keep is not None else os.environ.get("SIYU_KEEP_STACK") == "1"
        self.kafka_heap = kafka_heap
        self.kafka_properties = dict(kafka_properties or {})
        self.postgres: EmbeddedPostgres | None = None
        self.kafka: LocalKafka | None = None
        self._server_admin_dsn: str | None = None
        self._service_dsns: dict[str, str] = {}
        self._bootstrap: str | None = None
        self._status = "new"
        self._lock = threading.Lock()
        self.timings: dict[str, float] = {}

    # -- lifecycle ----------------------------------------------------------------------------------------------

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> Self:
        """Clean stale stacks, then start Postgres and Kafka concurrently, provision and create topics."""
        if self._status in ("starting", "running"):
            return self
        started = time.monotonic()
        clean_stale_stacks(self.state_dir)  # logs what it removes
        if self.dir.exists():
            raise RuntimeError(f"stack directory {self.dir} already exists (is stack {self.id!r} running?)")
        self.dir.mkdir(parents=True)
        self.log_dir.mkdir()
        self._status = "starting"
        self._save()
        atexit.register(self.stop)
        try:
            with ThreadPoolExecutor(max_workers=2, thread_name_prefix=f"stack-{self.id}") as pool:
                futures = [pool.submit(self._start_database), pool.submit(self._start_kafka)]
                errors = [f.exception() for f in futures]
            for error in errors:
                if error is not None:
                    raise error
        except BaseException:
            self._status = "failed"
            log.error("stack %s failed to start; logs in %s", self.id, self.log_dir)
            self.stop()
            raise
        self._status = "running"
        self.timings["total"] = time.monotonic() - started
        self._save()
        log.info("stack %s running (%.1fs): %s", self.id, self.timings["total"], self.describe())
        return self

    def stop(self) -> None:
        """Stop Kafka and Postgres (cleanly) and remove the stack directory unless ``keep``."""
        atexit.unregister(self.stop)
        if self._status in ("new", "stopped"):
            return
        failed = self._status == "failed"
        self._status = "stopping"
        self._save()
        errors: list[BaseException] = []
        for server in (self.kafka, self.postgres):
            if server is not None:
                try:
                    server.stop()
                except Exception as exc:  # keep stopping the others; report the first failure below
                    log.exception("stopping %s failed", type(server).__name__)
                    errors.append(exc)
        self._status = "stopped"
        if self.keep or failed:
            self._save()
            log.info("stack %s stopped; kept %s", self.id, self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
            log.info("stack %s stopped and removed", self.id)
        if errors:
            raise errors[0]

    def _start_database(self) -> None:
        t0 = time.monotonic()
        external = os.environ.get("DATABASE_URL")
        if external:
            self._server_admin_dsn = libpq_dsn(external)
        else:
            self.postgres = EmbeddedPostgres(
                self.dir / "postgres" / "data", fast=self.fast, log_file=self.log_dir / "postgres.log"
            )
            self.postgres.on_change = self._save
            self._server_admin_dsn = self.postgres.start()
            self.timings["postgres"] = time.monotonic() - t0
            self._save()
        t1 = time.monotonic()
        admin, database, secret = self._server_admin_dsn, self.database, stack_secret(self.state_dir)
        self._service_dsns = run_sync(lambda: provision(admin, database, secret=secret))
        self.timings["provision"] = time.monotonic() - t1
        self._save()

    def _start_kafka(self) -> None:
        t0 = time.monotonic()
        external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        if external:
            self._bootstrap = external
        else:
            self.kafka = LocalKafka(
                self.dir / "kafka",
                cache_root(self.state_dir),
                self.partitions,
                self.kafka_heap,
                log_dir=self.log_dir,
                properties=self.kafka_properties,
            )
            self.kafka.on_change = self._save
            self._bootstrap = self.kafka.start()
            self.timings["kafka"] = time.monotonic() - t0
            self._save()
        t1 = time.monotonic()
        bootstrap, names, partitions = self._bootstrap, self.topics.all(), self.partitions
        run_sync(lambda: create_topics(bootstrap, names, partitions))
        self.timings["topics"] = time.monotonic() - t1

    # -- what the stack offers ----------------------------------------------------------------------------------

    @property
    def server_admin_dsn(self) -> str:
        """Superuser DSN of the server's maintenance database (``.../postgres``), libpq/asyncpg form."""
        if self._server_admin_dsn is None:
            raise RuntimeError("the stack has not been started")
        return self._server_admin_dsn

    @property
    def admin_dsn(self) -> str:
        """Superuser DSN of the Siyu database (``.../siyu``), libpq/asyncpg form (``postgresql://``)."""
        return database_dsn(self.server_admin_dsn, self.database)

    @property
    def service_dsns(self) -> dict[str, str]:
        """SQLAlchemy URLs (``postgresql+asyncpg://``) per service, each logging in as that service's role."""
        if not self._service_dsns:
            raise RuntimeError("the stack has not been started")
        return dict(self._service_dsns)

    def service_dsn(self, service: str) -> str:
        dsns = self.service_dsns
        if service not in dsns:
            raise KeyError(f"unknown service {service!r}; expected one of {', '.join(SERVICES)}")
        return dsns[service]

    @property
    def bootstrap_servers(self) -> str:
        if self._bootstrap is None:
            raise RuntimeError("the stack has not been started")
        return self._bootstrap

    @property
    def topics(self) -> TopicNames:
        return TopicNames(self.topic_prefix)

    @property
    def status(self) -> str:
        return self._status

    def env(self) -> dict[str, str]:
        """Environment for service processes: ``<SERVICE>_DATABASE_URL`` each, and the Kafka settings."""
        env = {f"{env_prefix_of(s)}DATABASE_URL": dsn for s, dsn in self.service_dsns.items()}
        env["KAFKA_BOOTSTRAP_SERVERS"] = self.bootstrap_servers
        env["KAFKA_TOPIC_PREFIX"] = self.topic_prefix
        return env

    def describe(self) -> str:
        parts = [f"postgres {self._server_admin_dsn}", f"kafka {self._bootstrap}"]
        return ", ".join(parts)

    # -- state file ----------------------------------------------------------------------------------------------

    def _state(self) -> dict[str, Any]:
        pg, kafka = self.postgres, self.kafka
        return {
            "id": self.id,
            "dir": str(self.dir),
            "status": self._status,
            "owner_pid": os.getpid(),
            "owner_started": _process_started(os.getpid()),
            "owner_cmdline": " ".join(psutil.Process().cmdline())[:300],
            "fast": self.fast,
            "database": self.database,
            "partitions": self.partitions,
            "topic_prefix": self.topic_prefix,
            "postgres": {
                "external": pg is None and self._server_admin_dsn is not None,
                "pid": pg.pid if pg else None,
                "port": pg.port if pg and pg.running else None,
                "data_dir": str(pg.data_dir) if pg else None,
            },
            "kafka": {
                "external": kafka is None and self._bootstrap is not None,
                "pid": kafka.pid if kafka else None,
                "port": kafka.port if kafka and kafka.running else None,
                "controller_port": kafka.controller_port if kafka and kafka.running else None,
            },
            "server_admin_dsn": self._server_admin_dsn,
            "admin_dsn": database_dsn(self._server_admin_dsn, self.database) if self._server_admin_dsn else None,
            "service_dsns": self._service_dsns,
            "bootstrap_servers": self._bootstrap,
            "logs": str(self.log_dir),
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
        }

    def _save(self) -> None:
        """Write stack.json atomically (readers never see half a file)."""
        with self._lock:
            if not self.dir.exists():
                return
            tmp = self.dir / f".{STATE_FILE}.{threading.get_ident()}"
            tmp.write_text(json.dumps(self._state(), indent=2))
            tmp.replace(self.dir / STATE_FILE)

    def save_state(self) -> None:
        """Refresh stack.json (e.g. after restarting a server in a fault test, so the recorded pids are current)."""
        self._save()
