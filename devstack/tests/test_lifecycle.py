"""A second stack next to the session's, restarts keeping ports and data, external servers, the CLI."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # type: ignore[import-untyped,unused-ignore]

from siyu_devstack.cli import build_parser
from siyu_devstack.kafka import KafkaToolsMissingError, LocalKafka, new_cluster_id
from siyu_devstack.ports import free_ports, port_is_open
from siyu_devstack.stack import Stack
from siyu_devstack.topics import describe_partitions

from .helpers import connect, stack_up

pytestmark = pytest.mark.integration


async def test_two_stacks_run_at_once_and_restart_in_place(stack: Stack) -> None:
    with Stack(fast=True, partitions=2) as second:
        assert second.dir != stack.dir
        assert second.postgres is not None and second.kafka is not None
        assert stack.postgres is not None and stack.kafka is not None
        assert second.postgres.port != stack.postgres.port
        assert second.bootstrap_servers != stack.bootstrap_servers
        counts = await describe_partitions(second.bootstrap_servers, second.topics.all())
        assert set(counts.values()) == {2}

        conn = await connect(second.service_dsn("attribution"))
        await conn.execute("CREATE TABLE kept (v text)")
        await conn.execute("INSERT INTO kept VALUES ('before restart')")
        await conn.close()
        topic = second.topics.all()[0]
        producer = AIOKafkaProducer(bootstrap_servers=second.bootstrap_servers, acks="all")
        await producer.start()
        await producer.send_and_wait(topic, b"before restart", key=b"person-1")
        await producer.stop()

        pg_port, bootstrap = second.postgres.port, second.bootstrap_servers
        second.postgres.restart()
        second.kafka.restart()  # from inside a running loop: the readiness probe runs on its own thread
        assert second.postgres.port == pg_port and second.bootstrap_servers == bootstrap
        recorded = json.loads((second.dir / "stack.json").read_text())
        assert recorded["kafka"]["pid"] == second.kafka.pid and recorded["postgres"]["pid"] == second.postgres.pid

        conn = await connect(second.service_dsn("attribution"))
        assert await conn.fetchval("SELECT v FROM kept") == "before restart"
        await conn.close()
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
        )
        await consumer.start()
        try:
            batches = await consumer.getmany(timeout_ms=5000)
        finally:
            await consumer.stop()
        assert [r.value for records in batches.values() for r in records] == [b"before restart"]

        second.postgres.kill()  # a crash: the server comes back on the same port with its data
        assert not second.postgres.running
        second.postgres.start()
        assert second.postgres.port == pg_port
        conn = await connect(second.service_dsn("attribution"))
        assert await conn.fetchval("SELECT v FROM kept") == "before restart"
        await conn.close()

        # The first stack was not disturbed.
        conn = await connect(stack.admin_dsn)
        assert await conn.fetchval("SELECT 1") == 1
        await conn.close()
        pg_pid, kafka_pid = second.postgres.pid, second.kafka.pid
    assert not second.dir.exists()
    assert pg_pid is not None and kafka_pid is not None
    assert not port_is_open(pg_port) and not port_is_open(int(bootstrap.rsplit(":", 1)[1]))


async def test_existing_servers_from_the_environment_are_used(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", stack.server_admin_dsn.replace("postgresql://", "postgresql+asyncpg://"))
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", stack.bootstrap_servers)
    with Stack(database="siyu_external", topic_prefix="external.") as external:
        assert external.postgres is None and external.kafka is None
        assert external.bootstrap_servers == stack.bootstrap_servers
        assert external.env()["KAFKA_TOPIC_PREFIX"] == "external."
        assert all(name.startswith("external.") for name in external.topics.all())
        counts = await describe_partitions(stack.bootstrap_servers, external.topics.all())
        assert set(counts.values()) == {6}
        conn = await connect(external.service_dsn("segmentation"))
        assert await conn.fetchval("SELECT current_database()") == "siyu_external"
        assert await conn.fetchval("SELECT current_schema()") == "segmentation"
        await conn.close()
    assert not external.dir.exists()


def test_missing_java_or_maven_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr("siyu_devstack.kafka.shutil.which", lambda name: None)
    with pytest.raises(KafkaToolsMissingError, match=r"JDK 17\+.*Maven.*KAFKA_BOOTSTRAP_SERVERS"):
        LocalKafka(tmp_path / "kafka", tmp_path / "cache").start()


def test_ports_and_cluster_ids() -> None:
    ports = free_ports(5)
    assert len(set(ports)) == 5 and not any(port_is_open(p) for p in ports)
    ids = {new_cluster_id() for _ in range(50)}
    assert len(ids) == 50 and all(len(i) == 22 and not i.startswith("-") for i in ids)


def test_cli_up_prints_the_environment_and_stops_on_sigint(stack: Stack) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": stack.server_admin_dsn,
        "KAFKA_BOOTSTRAP_SERVERS": stack.bootstrap_servers,
    }
    proc, lines = stack_up(["-q", "up", "--topic-prefix", "cli.", "--id", f"cli-{os.getpid()}"], env)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    exports = dict(line.removeprefix("export ").split("=", 1) for line in lines if line.startswith("export "))
    assert exports["KAFKA_BOOTSTRAP_SERVERS"] == stack.bootstrap_servers
    assert exports["KAFKA_TOPIC_PREFIX"] == "cli."
    assert exports["INGEST_DATABASE_URL"].startswith("postgresql+asyncpg://siyu_ingest:")
    assert not (stack.dir.parent / f"cli-{os.getpid()}").exists()


def test_cli_status_and_clean(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    args = parser.parse_args(["status"])
    assert args.handler(args) == 0
    out = capsys.readouterr().out
    assert stack.id in out and "running" in out
    args = parser.parse_args(["clean"])
    assert args.handler(args) == 0
    assert stack.dir.exists()
