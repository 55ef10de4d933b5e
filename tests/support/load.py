"""Steady write load through the gateway, every answer recorded with when it was sent and
answered, for fault tests that measure how long an outage is visible."""

import asyncio
import time
import uuid
from dataclasses import dataclass, field

import httpx

from tests.support.stacks import LedgerStack

LOAD_REQUEST_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class Answer:
    sent: float
    answered: float
    status: int
    body: dict[str, object]


@dataclass
class Writers:
    """`clients` loops, each posting one entry at a time until stopped."""

    ledger: LedgerStack
    clients: int
    answers: list[Answer] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._loop(index)) for index in range(self.clients)]

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    async def _loop(self, index: int) -> None:
        owner = f"load-{index}-{uuid.uuid4().hex[:6]}"
        async with httpx.AsyncClient(
            base_url=self.ledger.gateway_url, timeout=LOAD_REQUEST_TIMEOUT_SECONDS,
            headers={"X-Api-Key": "dev-healthai-key"},
        ) as client:  # fmt: skip
            while not self._stop.is_set():
                sent = time.monotonic()
                body = {"owner_id": owner, "operation": "CREDIT_ADD", "nonce": uuid.uuid4().hex}
                try:
                    response = await client.post("/ledger/", json=body)
                except httpx.HTTPError as error:
                    self.errors.append(f"{type(error).__name__}: {error}")
                    await asyncio.sleep(0.05)
                    continue
                self.answers.append(
                    Answer(sent, time.monotonic(), response.status_code, response.json())
                )

    def first_success_sent_after(self, moment: float) -> Answer | None:
        fresh = [a for a in self.answers if a.status == 201 and a.sent >= moment]
        return min(fresh, key=lambda answer: answer.answered, default=None)
