"""Run the four services as child processes of a local stack (``make run``, end-to-end tests).

Each service is migrated (``siyu-<name> migrate``), then started as one process with both roles
(``serve --role all``) on a free port, with its logs in the stack's directory. Ready means ``/readyz`` is green.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from siyu_devstack.ports import free_port
from siyu_shared.services import SERVICES


class ServiceStartError(RuntimeError):
    pass


@dataclass
class ServiceProcess:
    name: str
    port: int
    log_path: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def migrate(self) -> None:
        with self.log_path.open("ab") as log:
            result = subprocess.run(
                [sys.executable, "-m", f"siyu_{self.name}", "migrate"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                check=False,
                timeout=120,
            )
        if result.returncode != 0:
            raise ServiceStartError(f"{self.name}: migrations failed; see {self.log_path}\n{_tail(self.log_path)}")

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", f"siyu_{self.name}", "serve", "--role", "all", "--port", str(self.port)],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        last = "no answer"
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise ServiceStartError(f"{self.name} exited with {self.process.returncode}\n{_tail(self.log_path)}")
            try:
                reply = httpx.get(f"{self.url}/readyz", timeout=3)
                if reply.status_code == 200:
                    return
                last = reply.text
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.2)
        raise ServiceStartError(f"{self.name} not ready after {timeout_s:.0f}s: {last}\n{_tail(self.log_path)}")

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM (graceful: finish the batch, commit, close), SIGKILL if it does not end in time."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def kill(self) -> None:
        """SIGKILL: a crash, for fault tests."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)


def service_processes(
    stack_env: dict[str, str], log_dir: Path, *, names: tuple[str, ...] = SERVICES
) -> list[ServiceProcess]:
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **stack_env, "SIYU_ENVIRONMENT": "development"}
    return [ServiceProcess(name, free_port(), log_dir / f"{name}.log", env) for name in names]


def start_all(processes: list[ServiceProcess]) -> None:
    """Migrate each, start all, wait until every one is ready; stops what started if any fails."""
    try:
        for proc in processes:
            proc.migrate()
        for proc in processes:
            proc.start()
        for proc in processes:
            proc.wait_ready()
    except BaseException:
        stop_all(processes)
        raise


def stop_all(processes: list[ServiceProcess]) -> None:
    for proc in processes:
        if proc.process is not None and proc.process.poll() is None:
            proc.process.send_signal(signal.SIGTERM)
    for proc in processes:
        proc.stop()


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
