"""Repairs a registration the gateway could not finish: a user without a wallet.

Registration inserts the user, then publishes `OpenWallet` (ADR 0021). If the gateway dies in
between, or the broker refuses the publish, the user exists without a wallet. This loop, run by
every wallet-processor, finds such users once they are older than the repair delay and publishes
the same command again, with the same CloudEvents identity: the inbox makes a repeat harmless,
so several processors repairing at once change nothing.
"""

import asyncio
import contextlib
from datetime import timedelta
from uuid import UUID

import asyncpg
from aiokafka import AIOKafkaProducer

from shared.contracts.envelope import CLOUDEVENTS_CONTENT_TYPE, CloudEvent, encode_envelope
from shared.contracts.wallet import OPEN_WALLET_V1, OpenWallet
from shared.engine.messages import CONTENT_TYPE_HEADER
from shared.http.commands import GATEWAY_SOURCE
from shared.logs import get_logger

REPAIR_BATCH_MAX_USERS = 500
REPAIR_ROUNDS_MAX = 20
"""Batches looked at per round at most (10,000 users), so a backlog clears in a few rounds."""
REPAIR_PUBLISH_TIMEOUT_SECONDS = 10.0

logger = get_logger(__name__)


class RegistrationRepair:
    def __init__(
        self, pool: asyncpg.Pool, producer: AIOKafkaProducer, topic: str, after_seconds: float
    ) -> None:
        self._pool = pool
        self._producer = producer
        self._topic = topic
        self._after = timedelta(seconds=after_seconds)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run_forever(), name="registration-repair")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run_forever(self) -> None:
        while True:
            await asyncio.sleep(self._after.total_seconds() / 2)
            try:
                repaired = await self.run_once()
            except Exception as error:
                logger.warning("registration repair failed; next round retries", error=repr(error))
                continue
            if repaired:
                logger.warning("re-sent the opening of wallets never opened", users=repaired)

    async def run_once(self) -> int:
        """Publish `OpenWallet` again for every user old enough and still without a wallet;
        mark the users whose wallet is open, so each is looked at until then and never after."""
        resent = 0
        for _round in range(REPAIR_ROUNDS_MAX):
            rows = await self._pool.fetch(
                "SELECT user_id, name_sealed, email_sealed, open_command_id, created_at"
                " FROM wallet.users WHERE NOT wallet_seen_open"
                " AND created_at < now() - $1::interval ORDER BY created_at LIMIT $2",
                self._after,
                REPAIR_BATCH_MAX_USERS,
            )
            opened = await self._opened([row["user_id"] for row in rows])
            await self._pool.execute(
                "UPDATE wallet.users SET wallet_seen_open = true WHERE user_id = ANY($1::uuid[])",
                sorted(opened),
            )
            waiting = [row for row in rows if row["user_id"] not in opened]
            for row in waiting:
                await self._resend(row)
            resent += len(waiting)
            if len(rows) < REPAIR_BATCH_MAX_USERS or waiting:
                break  # all seen, or the rest waits for the wallets just asked for
        return resent

    async def _opened(self, user_ids: list[UUID]) -> set[UUID]:
        rows = await self._pool.fetch(
            "SELECT user_id FROM wallet.wallets WHERE user_id = ANY($1::uuid[])", user_ids
        )
        return {row["user_id"] for row in rows}

    async def _resend(self, row: asyncpg.Record) -> None:
        envelope = CloudEvent(
            specversion="1.0", id=row["open_command_id"], source=GATEWAY_SOURCE,
            type=OPEN_WALLET_V1, subject=str(row["user_id"]), time=row["created_at"],
            data=OpenWallet(
                user_id=row["user_id"], name_sealed=row["name_sealed"],
                email_sealed=row["email_sealed"],
            ).model_dump(mode="json"),
        )  # fmt: skip
        await asyncio.wait_for(
            self._producer.send_and_wait(
                self._topic, encode_envelope(envelope), key=str(row["user_id"]).encode(),
                headers=[(CONTENT_TYPE_HEADER, CLOUDEVENTS_CONTENT_TYPE.encode())],
            ),
            REPAIR_PUBLISH_TIMEOUT_SECONDS,
        )  # fmt: skip
