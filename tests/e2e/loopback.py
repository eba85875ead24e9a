"""A lean HTTP/1.1 client for load over loopback: one keep-alive connection, requests written as prepared bytes.

Through httpx, 48 concurrent senders reached about 110 deliveries/s against ingest alone on the development box,
the client's CPU being the limit; through this, about 1,600/s. A test that means to drive hundreds a second must
measure the services, not its client. Only what uvicorn answers is handled: a status line, headers, a
``Content-Length`` body.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from urllib.parse import urlencode, urlsplit


class Poster:
    """POSTs to one ``http://host:port``; reconnects on the next request after any failure."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        assert parts.scheme == "http" and parts.hostname and parts.port, base_url
        self.host, self.port = parts.hostname, parts.port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(
        self, path: str, body: bytes, headers: Mapping[str, str], query: Mapping[str, str] | None = None
    ) -> tuple[int, dict[str, str]]:
        """The status and the (lower-cased) headers of the answer. Raises ``OSError`` when the connection fails."""
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        reader, writer = self._reader, self._writer
        target = f"{path}?{urlencode(query)}" if query else path
        lines = [f"POST {target} HTTP/1.1", f"Host: {self.host}:{self.port}", f"Content-Length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in headers.items() if name.lower() != "content-length"]
        try:
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
            status_line = await reader.readline()
            if not status_line:
                raise ConnectionResetError("the server closed the connection")
            status = int(status_line.split()[1])
            answer: dict[str, str] = {}
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                answer[name.strip().lower()] = value.strip()
            await reader.readexactly(int(answer.get("content-length", "0")))
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
            self.close()
            raise ConnectionError(f"request failed: {exc!r}") from exc
        if answer.get("connection", "").lower() == "close":
            self.close()
        return status, answer

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None
