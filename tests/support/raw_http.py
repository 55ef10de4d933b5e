"""HTTP/1.1 over one raw socket: several requests on one keep-alive connection, as a client
with default settings reuses it (httpx hides which connection it used)."""

import asyncio
from dataclasses import dataclass

import orjson

READ_TIMEOUT_SECONDS = 15.0


@dataclass(frozen=True, slots=True)
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> object:
        return orjson.loads(self.body)


def request(
    method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def _read_response(reader: asyncio.StreamReader, *, head_only: bool) -> RawResponse:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    # An answer to HEAD states the length of the body GET would have, and sends none.
    length = 0 if head_only else int(headers.get("content-length", "0"))
    body = await reader.readexactly(length)
    return RawResponse(int(status_line.split()[1]), headers, body)


async def exchange(host: str, port: int, requests: list[bytes]) -> list[RawResponse]:
    """Send each request on one connection, reading each answer before the next request."""
    reader, writer = await asyncio.open_connection(host, port)
    answers = []
    try:
        for raw in requests:
            writer.write(raw)
            await writer.drain()
            answer = _read_response(reader, head_only=raw.startswith(b"HEAD "))
            answers.append(await asyncio.wait_for(answer, READ_TIMEOUT_SECONDS))
    finally:
        writer.close()
    return answers
