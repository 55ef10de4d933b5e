"""One command at a time through the gateway: how long a write takes, then a read of it."""

import statistics
import time
import uuid
from dataclasses import dataclass

import httpx

SAMPLES = 200
HEADERS = {"X-Api-Key": "dev-healthai-key"}


@dataclass(frozen=True, slots=True)
class Latency:
    write_p50_milliseconds: float
    write_p99_milliseconds: float
    read_p50_milliseconds: float
    read_p99_milliseconds: float


async def measure(gateway_url: str) -> Latency:
    """POST an entry, then GET the balance with `min_position` (read-your-write), in turn."""
    writes, reads = [], []
    async with httpx.AsyncClient(base_url=gateway_url, headers=HEADERS, timeout=30) as client:
        for index in range(SAMPLES):
            owner = f"latency-{index % 10}"
            started = time.perf_counter()
            response = await client.post(
                "/ledger/",
                json={"owner_id": owner, "operation": "CREDIT_ADD", "nonce": uuid.uuid4().hex},
            )
            written = time.perf_counter()
            assert response.status_code == 201, response.text
            read = await client.get(
                f"/ledger/{owner}", params={"min_position": response.json()["position"]}
            )
            assert read.status_code == 200, read.text
            writes.append((written - started) * 1000)
            reads.append((time.perf_counter() - written) * 1000)
    write_q, read_q = statistics.quantiles(writes, n=100), statistics.quantiles(reads, n=100)
    return Latency(write_q[49], write_q[98], read_q[49], read_q[98])
