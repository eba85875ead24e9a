"""Ingest benchmarks.

1. Signed webhooks accepted per second: Xiaohongshu lead pushes (HMAC-SHA1 verified on the raw bytes, dedupe key
   extracted, row committed) posted over 64 keep-alive connections to the api role running as its own process.
   Ceiling: a bare FastAPI endpoint (reads the body, returns the same JSON) served by the same uvicorn in the same
   run, hit by the same client.
2. Reply latency p50/p99 at a paced 1,000 deliveries/s (measured from each request's scheduled send time, so a
   stall is not hidden). Ceiling: the bare endpoint at the same pace.
3. Processing: a worker process drains everything accepted (parse → identity → lead → outbox). Ceiling: the
   accept rate of figure 1 (ratio ≥ 1 means processing keeps up with the front door).
4. Bulk import of a Tmall order export (CSV) through the streaming import endpoint, rows normalised and stored.
   Ceiling: COPY of the same number of rows into a logged table with a unique key on the same database.

The notes carry the CPU time each process spent per delivery (or row), read from /proc: on the shared 2-core box
the other helpers' load moves wall-clock rates a lot, CPU per unit of work much less.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from uuid import uuid4

import asyncpg
import httpx
import orjson
from fastapi import FastAPI, Request, Response

from bench.cpu import process_cpu_s
from bench.harness import BenchContext, Figure
from siyu_devstack.testing import eventually
from siyu_ingest import samples
from siyu_shared.auth.keys import issue_key
from siyu_shared.db.engine import create_engine, session_factory, unit_of_work
from siyu_shared.settings import to_libpq_url

SUITE = "ingest"
ROOT = Path(__file__).resolve().parent.parent
CONCURRENCY = 64

bare_app = FastAPI()


@bare_app.post("/bare")
async def bare(request: Request) -> Response:
    await request.body()
    return Response(content=b'{"code":0,"msg":"success"}', media_type="application/json")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def _process(args: Sequence[str], env: dict[str, str], port: int | None) -> AsyncIterator[int]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *args,
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        if port is not None:
            async with httpx.AsyncClient() as http:
                for _ in range(300):
                    with contextlib.suppress(httpx.HTTPError):
                        if (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code in (200, 404):
                            break
                    if proc.returncode is not None:
                        raise RuntimeError(f"{args} exited with {proc.returncode}")
                    await asyncio.sleep(0.1)
        yield proc.pid
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()


def _request(path: str, body: bytes, headers: dict[str, str]) -> bytes:
    head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


PACED_CONNECTIONS = 256


class Connection:
    """A minimal HTTP/1.1 keep-alive client: the load generator must cost less than the servers it measures."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def send(self, request: bytes) -> int:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        if length:
            await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


async def _saturate(port: int, requests: list[bytes]) -> tuple[float, list[float], int]:
    """Send everything over CONCURRENCY connections as fast as they answer: (requests/s, latencies, non-2xx)."""
    queue = iter(requests)
    latencies: list[float] = []
    errors = 0

    async def worker() -> None:
        nonlocal errors
        conn = await Connection.open(port)
        try:
            for request in queue:
                started = time.perf_counter()
                status = await conn.send(request)
                latencies.append(time.perf_counter() - started)
                errors += status >= 300
        finally:
            conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return len(requests) / (time.perf_counter() - started), latencies, errors


async def _paced(port: int, requests: list[bytes], rate: float) -> tuple[list[float], int]:
    """Send at a fixed rate; latency from each request's scheduled time (no coordinated omission).

    At most PACED_CONNECTIONS connections: when all are busy a request waits for one, and that wait counts in its
    latency. A connection the server drops counts as an error and is replaced.
    """
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(PACED_CONNECTIONS):
        pool.put_nowait(await Connection.open(port))
    latencies: list[float] = []
    errors = 0

    async def one(request: bytes, due: float) -> None:
        nonlocal errors
        conn = await pool.get()
        try:
            status = await conn.send(request)
            latencies.append(time.perf_counter() - due)
            errors += status >= 300
        except (asyncio.IncompleteReadError, ConnectionError):
            errors += 1
            conn.close()
            conn = await Connection.open(port)
        finally:
            pool.put_nowait(conn)

    tasks = []
    start = time.perf_counter() + 0.05
    for i, request in enumerate(requests):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(request, due)))
    await asyncio.gather(*tasks)
    while not pool.empty():
        pool.get_nowait().close()
    return latencies, errors


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def _xhs_requests(tenant: str, n: int, tag: str) -> list[bytes]:
    token = samples.CREDENTIALS["xiaohongshu"]["token"]
    out = []
    for i in range(n):
        lead = samples.xiaohongshu_lead(leads_id=f"{tag}-{i}", phone=f"139{i % 100_000_000:08d}")
        body = orjson.dumps(lead)
        signature = hmac.new(token.encode(), body, hashlib.sha1).hexdigest()
        headers = {"Content-Type": "application/json", "X-Red-Signature": f"sha1={signature}"}
        out.append(_request(f"/v1/webhooks/{tenant}/xiaohongshu", body, headers))
    return out


def _bare_requests(requests: list[bytes]) -> list[bytes]:
    out = []
    for request in requests:
        _, body = request.split(b"\r\n\r\n", 1)
        out.append(_request("/bare", body, {"Content-Type": "application/json"}))
    return out


def _tmall_export(n: int) -> bytes:
    lines = ["订单编号,买家会员名,buyer_open_uid,买家实际支付金额,订单状态,订单创建时间,订单付款时间,退款金额,联系手机"]
    for i in range(n):
        lines.append(
            f"'{4000000000000 + i},t**{i % 10},AAH{i:09d},{(i % 500) + 9.9:.2f},交易成功,"
            f"2024-03-01 10:00:00,2024-03-01 10:01:00,0.00,138****{i % 10000:04d}"
        )
    return ("\n".join(lines) + "\n").encode()


async def _count(dsn: str, sql: str, *args: object) -> int:
    conn = await asyncpg.connect(to_libpq_url(dsn), server_settings={"search_path": "ingest"})
    try:
        return int(await conn.fetchval(sql, *args))
    finally:
        await conn.close()


async def _copy_ceiling(dsn: str, n: int) -> float:
    """COPY of as many (key, body) rows into a logged scratch table with a unique key, in one transaction: the
    least a durable, deduplicating import must do."""
    conn = await asyncpg.connect(to_libpq_url(dsn))
    table = f"bench_copy_{uuid4().hex[:8]}"
    try:
        await conn.execute(f"CREATE TABLE public.{table} (k text PRIMARY KEY, b bytea)")
        rows = [(f"order:tmall:{i}", orjson.dumps({"order_no": str(i), "amount_fen": i})) for i in range(n)]
        started = time.perf_counter()
        async with conn.transaction():
            await conn.copy_records_to_table(table, records=rows, schema_name="public")
        return n / (time.perf_counter() - started)
    finally:
        await conn.execute(f"DROP TABLE IF EXISTS public.{table}")
        await conn.close()


async def run(ctx: BenchContext) -> list[Figure]:
    stack = ctx.stack
    prefix = await ctx.fresh_topics()
    dsn = stack.service_dsn("ingest")
    env = {
        **stack.env(),
        "INGEST_KAFKA_TOPIC_PREFIX": prefix,
        "INGEST_LOG_LEVEL": "WARNING",
        "INGEST_DATABASE_POOL_SIZE": "20",
    }
    tenant = f"bench{uuid4().hex[:6]}"
    engine = create_engine(dsn, schema="ingest", pool_size=1)
    async with unit_of_work(session_factory(engine)) as session:
        key = (await issue_key(session, tenant=tenant, scopes=("admin",), name="bench")).plaintext
    await engine.dispose()

    api_port, bare_port = _free_port(), _free_port()
    n = ctx.scaled(20_000)
    paced_n = ctx.scaled(10_000)
    import_rows = ctx.scaled(200_000)
    figures: list[Figure] = []
    api_args = ["-m", "siyu_ingest", "serve", "--role", "api", "--port", str(api_port)]
    async with _process(api_args, env, api_port) as api_pid:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}") as http:
            creds = samples.CREDENTIALS["xiaohongshu"]
            made = await http.put(
                f"/v1/tenants/{tenant}/channels/xiaohongshu",
                json={"secrets": {"token": creds["token"]}},
                headers={"Authorization": f"Bearer {key}"},
            )
            made.raise_for_status()
        warm = _xhs_requests(tenant, 500, "warm")
        await _saturate(api_port, warm)
        burst = _xhs_requests(tenant, n, "burst")
        cpu = process_cpu_s(api_pid)
        rate, latencies, errors = await _saturate(api_port, burst)
        api_cpu_us = (process_cpu_s(api_pid) - cpu) / n * 1e6
        stored = await _count(dsn, "SELECT count(*) FROM deliveries WHERE tenant = $1", tenant)
        # A figure only counts work that was done: every push answered 2xx and stored (warm-up included).
        if errors or stored != len(warm) + n:
            raise RuntimeError(f"ingest bench: {errors} non-2xx, {stored} of {len(warm) + n} deliveries stored")
        paced = _xhs_requests(tenant, paced_n, "paced")
        cpu = process_cpu_s(api_pid)
        paced_latencies, paced_errors = await _paced(api_port, paced, 1000)
        if paced_errors:
            raise RuntimeError(f"ingest bench: {paced_errors} of {paced_n} paced deliveries not answered 2xx")
        paced_cpu_us = (process_cpu_s(api_pid) - cpu) / paced_n * 1e6

        async with _process(
            [
                "-m",
                "uvicorn",
                "bench.ingest:bare_app",
                "--port",
                str(bare_port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            {},
            bare_port,
        ) as bare_pid:
            await _saturate(bare_port, _bare_requests(warm))
            cpu = process_cpu_s(bare_pid)
            bare_rate, bare_latencies, _ = await _saturate(bare_port, _bare_requests(burst))
            bare_cpu_us = (process_cpu_s(bare_pid) - cpu) / n * 1e6
            cpu = process_cpu_s(bare_pid)
            bare_paced, _ = await _paced(bare_port, _bare_requests(paced), 1000)
            bare_paced_cpu_us = (process_cpu_s(bare_pid) - cpu) / paced_n * 1e6

        # Timed from the first processed delivery, so the worker's start-up (imports, Kafka) is not counted.
        pending_sql = "SELECT count(*) FROM deliveries WHERE tenant = $1 AND status = 'pending'"
        worker_args = ["-m", "siyu_ingest", "serve", "--role", "worker", "--port", str(_free_port())]
        async with _process(worker_args, env, None) as worker_pid:
            total = await _count(dsn, pending_sql, tenant)

            async def begun() -> tuple[int] | None:
                remaining = await _count(dsn, pending_sql, tenant)
                return (remaining,) if remaining < total else None

            async def drained() -> bool:
                return not await _count(dsn, pending_sql, tenant)

            first = await eventually(begun, timeout_s=120, interval_s=0.05)
            assert first is not None
            counted = first[0]
            started, cpu = time.perf_counter(), process_cpu_s(worker_pid)
            await eventually(drained, timeout_s=3600, interval_s=0.1)
            processing_rate = counted / (time.perf_counter() - started)
            worker_cpu_us = (process_cpu_s(worker_pid) - cpu) / counted * 1e6

        export = _tmall_export(import_rows)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}", timeout=600) as http:
            started, cpu = time.perf_counter(), process_cpu_s(api_pid)
            done = await http.post(
                f"/v1/tenants/{tenant}/imports",
                params={"kind": "orders"},
                content=export,
                headers={"Authorization": f"Bearer {key}"},
            )
            import_rate = import_rows / (time.perf_counter() - started)
            import_cpu_us = (process_cpu_s(api_pid) - cpu) / import_rows * 1e6
            done.raise_for_status()
            accepted = done.json()["accepted"]
            if accepted != import_rows:
                raise RuntimeError(f"ingest bench: the import accepted {accepted} of {import_rows} rows")
        copy_rate = await _copy_ceiling(stack.admin_dsn, import_rows)

    load = "/".join(f"{x:.1f}" for x in os.getloadavg())
    figures += [
        Figure(
            SUITE,
            "signed webhooks accepted (durably stored)",
            rate,
            "deliveries/s",
            ceiling=bare_rate,
            ceiling_label="bare FastAPI endpoint, same server and client",
            target=2000,
            notes=(
                f"{n} Xiaohongshu pushes over {CONCURRENCY} connections; {stored} rows stored, {errors} non-2xx; "
                f"api CPU {api_cpu_us:.0f} µs/delivery vs bare {bare_cpu_us:.0f} µs/request; load {load}"
            ),
        ),
        Figure(
            SUITE,
            "reply latency p50 at saturation",
            _pct(latencies, 0.5),
            "ms",
            higher_is_better=False,
            ceiling=_pct(bare_latencies, 0.5),
            ceiling_label="bare endpoint p50 at saturation",
        ),
        Figure(
            SUITE,
            "reply latency p50 at 1,000/s",
            _pct(paced_latencies, 0.5),
            "ms",
            higher_is_better=False,
            ceiling=_pct(bare_paced, 0.5),
            ceiling_label="bare endpoint p50 at 1,000/s",
            notes=(
                f"{paced_n} deliveries, {paced_errors} non-2xx; "
                f"api CPU {paced_cpu_us:.0f} µs/delivery vs bare {bare_paced_cpu_us:.0f} µs/request"
            ),
        ),
        Figure(
            SUITE,
            "reply latency p99 at 1,000/s",
            _pct(paced_latencies, 0.99),
            "ms",
            higher_is_better=False,
            ceiling=_pct(bare_paced, 0.99),
            ceiling_label="bare endpoint p99 at 1,000/s",
            target=100,
        ),
        Figure(
            SUITE,
            "deliveries processed (parse → identity → lead → outbox)",
            processing_rate,
            "deliveries/s",
            ceiling=rate,
            ceiling_label="accept rate of the front door, same run",
            notes=f"{total} deliveries drained by one worker process; worker CPU {worker_cpu_us:.0f} µs/delivery",
        ),
        Figure(
            SUITE,
            "bulk import of a Tmall order export (CSV, streamed)",
            import_rate,
            "rows/s",
            ceiling=copy_rate,
            ceiling_label="COPY of as many rows into a logged table with a unique key",
            target=20_000,
            notes=f"{import_rows} rows, {accepted} accepted; api CPU {import_cpu_us:.1f} µs/row",
        ),
    ]
    return figures
