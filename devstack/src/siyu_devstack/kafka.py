"""A single-node Apache Kafka (KRaft, broker and controller in one JVM) for the local stack.

Why a real broker rather than a fake: the services rely on Kafka semantics a fake gets subtly wrong (consumer group
rebalances, partition assignment by key, offsets surviving a broker restart). Why not Docker or a tarball: neither is
available everywhere we run; Maven Central is, so the broker's jars are resolved with Maven (``devstack/kafka/pom.xml``)
into a cache shared by every stack of the checkout, once per Kafka version.

The JVM is started small (serial GC, C1 only, a few hundred MB of heap): it is one of several processes on a 2-core
developer or CI machine, and start-up time matters more than peak throughput. Class loading dominates the start, so the
first broker that stops cleanly leaves an AppCDS archive of its classes in the cache and later brokers map it (start
drops from ~4 s to ~2 s). It runs in its own session so a Ctrl-C in the terminal reaches only our CLI, which then
stops the broker cleanly.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import logging
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import psutil  # type: ignore[import-untyped,unused-ignore]

from siyu_devstack.aio import run_sync
from siyu_devstack.ports import LOOPBACK, free_ports, wait_for_port
from siyu_devstack.postgres import log_tail
from siyu_devstack.topics import wait_for_broker
from siyu_shared.events.topics import DEFAULT_PARTITIONS

log = logging.getLogger(__name__)

KAFKA_VERSION = "4.1.1"
POM = Path(__file__).resolve().parents[2] / "kafka" / "pom.xml"
NODE_ID = 1
_BIND_FAILURE = ("Address already in use", "BindException")

_LOG4J2 = """\
<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by siyu_devstack.kafka: the broker logs to a file of the stack, not to our terminal. -->
<Configuration status="WARN" shutdownHook="disable">
  <Appenders>
    <File name="file" fileName="{log_file}" append="true">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
    </File>
  </Appenders>
  <Loggers>
    <Root level="{level}"><AppenderRef ref="file"/></Root>
    <Logger name="kafka.request.logger" level="WARN"/>
    <Logger name="state.change.logger" level="WARN"/>
    <Logger name="kafka.log.LogCleaner" level="WARN"/>
    <Logger name="org.apache.kafka.storage.internals.log" level="WARN"/>
    <Logger name="org.apache.kafka.common.utils.AppInfoParser" level="WARN"/>
  </Loggers>
</Configuration>
"""


class KafkaError(RuntimeError):
    """The local broker could not be provisioned, started or stopped."""


class KafkaToolsMissingError(KafkaError):
    """``java`` or ``mvn`` is not installed, so no local broker can be run."""


def _require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise KafkaToolsMissingError(
            f"`{name}` was not found on PATH. The local Kafka broker needs a JDK 17+ (`java`) and Maven (`mvn`) "
            "to fetch and run it, e.g. `apt-get install openjdk-17-jdk-headless maven`. "
            "Alternatively set KAFKA_BOOTSTRAP_SERVERS=host:port to use an existing Kafka cluster."
        )
    return path


def ensure_jars(cache_dir: Path, version: str = KAFKA_VERSION) -> Path:
    """Resolve the Kafka ``version`` runtime jars into ``cache_dir/kafka-<version>/libs`` and return that directory.

    Skipped when a previous run completed (marker file). Concurrent callers (two stacks starting at once) serialise on
    a lock file; the jars are copied into a temporary directory first, so a killed download never looks complete.
    """
    home = Path(cache_dir).absolute() / f"kafka-{version}"
    libs, marker = home / "libs", home / ".complete"
    if marker.exists():
        return libs
    home.mkdir(parents=True, exist_ok=True)
    with (home.parent / f"kafka-{version}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():
            return libs
        mvn = _require_tool("mvn")
        _require_tool("java")
        if not POM.exists():
            raise KafkaError(
                f"{POM} is missing; it lists the Kafka jars to fetch (install siyu-devstack editable from the repo)"
            )
        staging = home / f"libs.tmp-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        mvn_log = home / "mvn.log"
        log.info("resolving Kafka %s jars with Maven into %s (first time only)", version, libs)
        started = time.monotonic()
        with mvn_log.open("w") as out:
            proc = subprocess.run(  # return code checked below
                [
                    mvn,
                    *("-q", "-B", "-Dstyle.color=never", "-f", str(POM), f"-Dkafka.version={version}"),
                    *("dependency:copy-dependencies", "-DincludeScope=runtime", f"-DoutputDirectory={staging}"),
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=home,
            )
        jars = sorted(p.name for p in staging.glob("*.jar")) if staging.exists() else []
        if proc.returncode != 0 or not any(j.startswith(f"kafka_2.13-{version}") for j in jars):
            shutil.rmtree(staging, ignore_errors=True)
            raise KafkaError(
                f"Maven could not resolve Kafka {version} (exit code {proc.returncode}); is Maven Central reachable? "
                "Or set KAFKA_BOOTSTRAP_SERVERS to an existing cluster.\n"
                f"--- tail of {mvn_log} ---\n{log_tail(mvn_log)}"
            )
        shutil.rmtree(libs, ignore_errors=True)
        staging.rename(libs)
        marker.write_text("\n".join(jars) + "\n")
        log.info("resolved %d Kafka jars in %.1fs", len(jars), time.monotonic() - started)
    return libs


def new_cluster_id() -> str:
    """A Kafka cluster id (URL-safe base64 of a random UUID, never starting with '-', as ``Uuid.randomUuid``)."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cid.startswith("-"):
            return cid


class LocalKafka:
    """One KRaft broker+controller with its data and config in ``state_dir``.

    Ports are chosen on the first :meth:`start` (unless given) and kept by :meth:`restart`, which also keeps the data,
    so clients see the same bootstrap address and the same topics and committed offsets after a restart.
    """

    def __init__(
        self,
        state_dir: Path,
        cache_dir: Path,
        partitions: int = DEFAULT_PARTITIONS,
        heap: str = "384m",
        *,
        port: int | None = None,
        controller_port: int | None = None,
        log_dir: Path | None = None,
        auto_create_topics: bool = False,
        timeout: float = 90.0,
        jvm_opts: Sequence[str] = (),
        class_data_sharing: bool | None = None,
        properties: Mapping[str, str] | None = None,
    ) -> None:
        self.state_dir = Path(state_dir).absolute()
        self.cache_dir = Path(cache_dir).absolute()
        self.partitions = partitions
        self.heap = heap
        self.data_dir = self.state_dir / "data"
        self.log_dir = Path(log_dir).absolute() if log_dir else self.state_dir / "logs"
        self.log_file = self.log_dir / "kafka.log"
        self.stdout_file = self.log_dir / "kafka.out"
        self.auto_create_topics = auto_create_topics
        self.timeout = timeout
        self.on_change: Callable[[], None] | None = None
        """Called after every start, stop and kill (the stack rewrites stack.json with the new pid)."""
        self.jvm_opts = tuple(jvm_opts)
        self.properties = dict(properties or {})
        """Extra ``server.properties`` entries (they win over the defaults written here)."""
        self._port = port
        self._controller_port = controller_port
        self._ports_fixed = port is not None or controller_port is not None
        self._proc: subprocess.Popen[bytes] | None = None
        if class_data_sharing is None:
            class_data_sharing = os.environ.get("SIYU_KAFKA_CDS", "1") != "0"
        self.class_data_sharing = class_data_sharing
        self._cds_dump: Path | None = None
        self._java, self._libs = "java", self.cache_dir

    # -- public API -------------------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise KafkaError("the broker has not been started yet, so it has no port")
        return self._port

    @property
    def controller_port(self) -> int:
        if self._controller_port is None:
            raise KafkaError("the broker has not been started yet, so it has no controller port")
        return self._controller_port

    @property
    def bootstrap_servers(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int | None:
        if self._proc is None or self._proc.poll() is not None:
            return None
        return self._proc.pid

    @property
    def running(self) -> bool:
        return self.pid is not None

    def ensure_jars(self) -> Path:
        """The directory of the broker's jars, fetched with Maven the first time (see :func:`ensure_jars`)."""
        return ensure_jars(self.cache_dir, KAFKA_VERSION)

    def start(self) -> str:
        """Start the broker (formatting its storage on first start) and return ``"127.0.0.1:PORT"`` once it answers."""
        if self.running:
            return self.bootstrap_servers
        java = _require_tool("java")
        libs = self.ensure_jars()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        attempts = 1 if self._ports_fixed else 3
        for attempt in range(1, attempts + 1):
            if self._port is None or self._controller_port is None:
                self._port, self._controller_port = free_ports(2)
            self._write_config()
            if not (self.data_dir / "meta.properties").exists():
                self._format(java, libs)
            offset = _size(self.stdout_file), _size(self.log_file)
            started = time.monotonic()
            self._launch(java, libs)
            try:
                self._wait_ready(started)
            except KafkaError:
                self._terminate(timeout=10)
                fresh = _read_from(self.stdout_file, offset[0]) + _read_from(self.log_file, offset[1])
                if attempt < attempts and any(marker in fresh for marker in _BIND_FAILURE):
                    log.warning("ports %s/%s were taken before Kafka bound them; retrying", *self._ports())
                    self._port = self._controller_port = None
                    continue
                raise
            self._ports_fixed = True  # clients know the address now: a restart must not move
            took = time.monotonic() - started
            log.info("kafka %s ready on %s in %.1fs (pid %s)", self.state_dir, self.bootstrap_servers, took, self.pid)
            break
        self._changed()
        return self.bootstrap_servers

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (controlled shutdown, logs flushed) and wait; SIGKILL if it takes longer than ``timeout``."""
        self._terminate(timeout)
        self._changed()

    def restart(self) -> str:
        """Stop and start again with the same ports and data; returns the bootstrap address."""
        self.stop()
        return self.start()

    def kill(self) -> None:
        """SIGKILL the broker (crash simulation: the next start recovers its logs)."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            try:
                children = psutil.Process(proc.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                children = []
            proc.kill()
            for child in children:
                child.kill()
            proc.wait()
        self._discard_cds_dump()  # possibly half written
        self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    # -- internals --------------------------------------------------------------------------------------------

    def _ports(self) -> tuple[int | None, int | None]:
        return self._port, self._controller_port

    def _write_config(self) -> None:
        props = {
            "process.roles": "broker,controller",
            "node.id": str(NODE_ID),
            "controller.quorum.voters": f"{NODE_ID}@{LOOPBACK}:{self._controller_port}",
            "listeners": f"PLAINTEXT://{LOOPBACK}:{self._port},CONTROLLER://{LOOPBACK}:{self._controller_port}",
            "advertised.listeners": f"PLAINTEXT://{LOOPBACK}:{self._port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self.data_dir),
            "num.partitions": str(self.partitions),
            "default.replication.factor": "1",
            "min.insync.replicas": "1",
            "auto.create.topics.enable": str(self.auto_create_topics).lower(),
            "offsets.topic.replication.factor": "1",
            # Fewer internal partitions than the default 50: the first consumer group comes up much faster.
            "offsets.topic.num.partitions": str(self.partitions),
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": str(self.partitions),
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "num.network.threads": "2",
            "num.io.threads": "4",
            "num.recovery.threads.per.data.dir": "2",
        } | self.properties
        (self.state_dir / "server.properties").write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        (self.state_dir / "log4j2.xml").write_text(_LOG4J2.format(log_file=self.log_file, level="INFO"))
        # The storage tool would log its whole configuration; only its problems are interesting.
        (self.state_dir / "log4j2-tools.xml").write_text(_LOG4J2.format(log_file=self.log_file, level="WARN"))

    def _cds_archive(self, java: str, libs: Path) -> Path:
        """The class archive for this JVM binary and these jars (an archive only fits the JVM that made it)."""
        real = Path(java).resolve()
        st = real.stat()
        key = hashlib.sha256(f"{real}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:12]
        return libs.parent / f"classes-{key}.jsa"

    def _cds_opts(self, java: str, libs: Path, *, dump: bool) -> list[str]:
        if not self.class_data_sharing:
            return []
        archive = self._cds_archive(java, libs)
        if archive.exists():
            return [f"-XX:SharedArchiveFile={archive}", "-Xlog:cds=off", "-Xlog:cds+dynamic=off"]
        if not dump:
            return []
        # Dumped when this JVM exits cleanly; moved into the cache by _terminate (a killed JVM leaves nothing).
        self._cds_dump = self.state_dir / f"classes.jsa.tmp-{os.getpid()}-{time.monotonic_ns()}"
        return [f"-XX:ArchiveClassesAtExit={self._cds_dump}", "-Xlog:cds=off", "-Xlog:cds+dynamic=off"]

    def _publish_cds_archive(self, java: str, libs: Path) -> None:
        dump, self._cds_dump = self._cds_dump, None
        if dump is None or not dump.exists():
            return
        archive = self._cds_archive(java, libs)
        if dump.stat().st_size > 0 and not archive.exists():
            shutil.move(dump, archive)  # a rename: same filesystem (.state) unless SIYU_CACHE_DIR says otherwise
            log.info("saved the Kafka class archive %s; later brokers start faster", archive)
        dump.unlink(missing_ok=True)

    def _java_cmd(
        self, java: str, libs: Path, main: str, *args: str, heap: str, dump_cds: bool = False, tool: bool = False
    ) -> list[str]:
        log_config = self.state_dir / ("log4j2-tools.xml" if tool else "log4j2.xml")
        return [
            java,
            f"-Xmx{heap}",
            "-Xms64m",
            "-Xss512k",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={log_config}",
            f"-Dkafka.logs.dir={self.log_dir}",
            *self._cds_opts(java, libs, dump=dump_cds),
            *self.jvm_opts,
            "-cp",
            f"{libs}/*",
            main,
            *args,
        ]

    def _format(self, java: str, libs: Path) -> None:
        """Format a fresh metadata/log directory (static quorum, hence no ``--standalone``)."""
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self.data_dir.mkdir(parents=True)
        args = ("format", "-t", new_cluster_id(), "-c", str(self.state_dir / "server.properties"))
        cmd = self._java_cmd(java, libs, "kafka.tools.StorageTool", *args, heap="128m", tool=True)
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, cwd=self.state_dir)
        if proc.returncode != 0:
            raise KafkaError(f"formatting Kafka storage in {self.data_dir} failed:\n{proc.stdout}\n{proc.stderr}")

    def _launch(self, java: str, libs: Path) -> None:
        cmd = self._java_cmd(
            java, libs, "kafka.Kafka", str(self.state_dir / "server.properties"), heap=self.heap, dump_cds=True
        )
        self._java, self._libs = java, libs
        with self.stdout_file.open("ab") as out:
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.state_dir,
                start_new_session=True,
            )

    def _alive_check(self) -> None:
        if self._proc is None or self._proc.poll() is not None:
            code = None if self._proc is None else self._proc.returncode
            raise KafkaError(self._failure(f"the Kafka JVM exited with code {code} during start-up"))

    def _failure(self, what: str) -> str:
        return (
            f"{what}.\n--- tail of {self.stdout_file} (JVM output) ---\n{log_tail(self.stdout_file, 15)}\n"
            f"--- tail of {self.log_file} ---\n{log_tail(self.log_file, 30)}"
        )

    def _wait_ready(self, started: float) -> None:
        deadline = started + self.timeout
        try:
            wait_for_port(self.port, timeout=self.timeout, check=self._alive_check)
            remaining = max(1.0, deadline - time.monotonic())
            bootstrap = self.bootstrap_servers
            run_sync(lambda: wait_for_broker(bootstrap, timeout_s=remaining))
        except TimeoutError as exc:
            raise KafkaError(self._failure(f"Kafka did not become ready within {self.timeout:.0f}s ({exc})")) from exc

    def _terminate(self, timeout: float) -> None:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            self._discard_cds_dump()
            return
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
            log.info("kafka %s stopped in %.1fs", self.state_dir, time.monotonic() - started)
        except subprocess.TimeoutExpired:
            log.warning("kafka %s did not stop within %.0fs; killing pid %s", self.state_dir, timeout, proc.pid)
            self.kill()
            return
        self._publish_cds_archive(self._java, self._libs)

    def _discard_cds_dump(self) -> None:
        if self._cds_dump is not None:
            self._cds_dump.unlink(missing_ok=True)
            self._cds_dump = None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _read_from(path: Path, offset: int) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(offset)
            return fh.read().decode(errors="replace")
    except OSError:
        return ""
