"""Wallet: transfers decided by the wallet-processor, and PIN logins through the gateway.

Transfers are sent as `wallet.transfer_money.v1` commands straight to the log, as a backend
would, and timed until every one is final (completed, or rejected for funds): the three hops of
the saga (ADR 0021), with their fenced transactions, replies and read-model rows. Their ceiling
is asyncpg doing the bare money move on a table of the same wallets: one transaction per
transfer with the conditional debit and the credit, from as many connections as the
processor's pool. Logins are `POST /auth/token` against argon2 verifying on the same
parameters and threads without anything else.
"""

import asyncio
import hashlib
import random
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer
from argon2 import PasswordHasher, Type

from services.wallet.adapters import pins
from services.wallet.settings import OPENING_BALANCE_PAISA
from shared.contracts.envelope import build_envelope, encode_envelope
from shared.contracts.wallet import (
    OPEN_WALLET_V1,
    TRANSFER_MONEY_V1,
    OpenWallet,
    TransferMoney,
)
from shared.crypto.sealing import new_key, seal

WALLETS = 10_000
UNIFORM_TRANSFERS = 4_000
HOT_TRANSFERS = 2_000
TRANSFER_AMOUNT_MAX_PAISA = 100
CEILING_CONNECTIONS = 8
LOGIN_USERS = 8
LOGINS = 160
LOGIN_CONCURRENCY = 16
SETTLE_TIMEOUT_SECONDS = 600.0
POLL_INTERVAL_SECONDS = 0.05
BENCH_SOURCE = "bench"
FINAL_STATUSES = ("completed", "rejected", "refunded")


@dataclass(frozen=True, slots=True)
class Rate:
    per_second: float
    count: int


def wallet_ids(count: int) -> list[uuid.UUID]:
    return [uuid.uuid4() for _ in range(count)]


def _record(subject: uuid.UUID, message_type: str, data: OpenWallet | TransferMoney) -> bytes:
    envelope = build_envelope(
        message_type=message_type, source=BENCH_SOURCE, subject=str(subject), data=data
    )
    return encode_envelope(envelope)


def open_commands(users: Sequence[uuid.UUID]) -> list[tuple[bytes, bytes]]:
    key = new_key()
    records = []
    for user in users:
        owner = str(user)
        data = OpenWallet(
            user_id=user, name_sealed=seal(key, owner, "Bench"),
            email_sealed=seal(key, owner, f"{owner}@example.com"),
        )  # fmt: skip
        records.append((owner.encode(), _record(user, OPEN_WALLET_V1, data)))
    return records


def transfer_pairs(
    users: Sequence[uuid.UUID], count: int, hot: uuid.UUID | None, seed: int
) -> list[tuple[uuid.UUID, uuid.UUID, int]]:
    """Random (sender, recipient, amount); with `hot`, every transfer leaves that wallet."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(count):
        sender, recipient = rng.sample(users, 2)
        if hot is not None:
            sender = hot
            recipient = recipient if recipient != hot else sender
        pairs.append((sender, recipient, rng.randint(1, TRANSFER_AMOUNT_MAX_PAISA)))
    return [pair for pair in pairs if pair[0] != pair[1]]


def transfer_commands(
    pairs: Sequence[tuple[uuid.UUID, uuid.UUID, int]],
) -> list[tuple[bytes, bytes]]:
    now = datetime.now(UTC)
    records = []
    for sender, recipient, amount in pairs:
        transfer_id = uuid.uuid4()
        data = TransferMoney(
            transfer_id=transfer_id, from_user_id=sender, to_user_id=recipient, amount=amount,
            request_hash=hashlib.sha256(transfer_id.bytes).hexdigest(), requested_at=now,
        )  # fmt: skip
        records.append((str(sender).encode(), _record(sender, TRANSFER_MONEY_V1, data)))
    return records


async def _count_until(connection: asyncpg.Connection, query: str, wanted: int) -> float:
    deadline = time.monotonic() + SETTLE_TIMEOUT_SECONDS
    while int(await connection.fetchval(query)) < wanted:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{query} did not reach {wanted}")
        await asyncio.sleep(POLL_INTERVAL_SECONDS)
    return time.perf_counter()


async def _send(producer: AIOKafkaProducer, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    futures = [await producer.send(topic, key=key, value=value) for key, value in records]
    await asyncio.gather(*futures)


async def open_wallets(bootstrap: str, dsn: str, topic: str, users: Sequence[uuid.UUID]) -> Rate:
    """Open every wallet through the processor; the rate is wallets opened per second."""
    return await _through_processor(
        bootstrap, dsn, topic, open_commands(users),
        "SELECT count(*) FROM wallet.balances",
    )  # fmt: skip


async def transfers(
    bootstrap: str, dsn: str, topic: str, pairs: Sequence[tuple[uuid.UUID, uuid.UUID, int]]
) -> Rate:
    """Transfers per second, from the first send until each is final on the sender's side."""
    statuses = ", ".join(f"'{status}'" for status in FINAL_STATUSES)
    return await _through_processor(
        bootstrap, dsn, topic, transfer_commands(pairs),
        f"SELECT count(*) FROM wallet.transfers WHERE status IN ({statuses})",
    )  # fmt: skip


async def _through_processor(
    bootstrap: str, dsn: str, topic: str, records: list[tuple[bytes, bytes]], count_query: str
) -> Rate:
    connection = await asyncpg.connect(dsn)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
    await producer.start()
    try:
        base = int(await connection.fetchval(count_query))
        started = time.perf_counter()
        await _send(producer, topic, records)
        finished = await _count_until(connection, count_query, base + len(records))
        return Rate(len(records) / (finished - started), len(records))
    finally:
        await producer.stop()
        await connection.close()


async def conditional_update_ceiling(
    dsn: str, users: Sequence[uuid.UUID], pairs: Sequence[tuple[uuid.UUID, uuid.UUID, int]]
) -> Rate:
    """The bare money move: per transfer one transaction with `UPDATE … WHERE balance >= $2`
    on the sender and the credit on the recipient, from `CEILING_CONNECTIONS` connections."""
    pool = await asyncpg.create_pool(
        dsn, min_size=CEILING_CONNECTIONS, max_size=CEILING_CONNECTIONS
    )
    assert pool is not None
    try:
        await pool.execute(
            "DROP TABLE IF EXISTS public.bench_wallets;"
            " CREATE TABLE public.bench_wallets (user_id uuid PRIMARY KEY,"
            " balance bigint NOT NULL CHECK (balance >= 0))"
        )
        await pool.copy_records_to_table(
            "bench_wallets", schema_name="public",
            records=[(user, OPENING_BALANCE_PAISA) for user in users],
        )  # fmt: skip
        queue: asyncio.Queue[tuple[uuid.UUID, uuid.UUID, int]] = asyncio.Queue()
        for pair in pairs:
            queue.put_nowait(pair)
        started = time.perf_counter()
        await asyncio.gather(*(_move_all(pool, queue) for _ in range(CEILING_CONNECTIONS)))
        seconds = time.perf_counter() - started
        await pool.execute("DROP TABLE public.bench_wallets")
        return Rate(len(pairs) / seconds, len(pairs))
    finally:
        await pool.close()


async def _move_all(
    pool: asyncpg.Pool, queue: asyncio.Queue[tuple[uuid.UUID, uuid.UUID, int]]
) -> None:
    async with pool.acquire() as connection:
        while not queue.empty():
            sender, recipient, amount = queue.get_nowait()
            async with connection.transaction():
                debited = await connection.fetchval(
                    "UPDATE public.bench_wallets SET balance = balance - $2"
                    " WHERE user_id = $1 AND balance >= $2 RETURNING balance",
                    sender, amount,
                )  # fmt: skip
                if debited is not None:
                    await connection.execute(
                        "UPDATE public.bench_wallets SET balance = balance + $2 WHERE user_id = $1",
                        recipient, amount,
                    )  # fmt: skip


async def logins(gateway_url: str) -> Rate:
    """`POST /auth/token` for registered users, `LOGIN_CONCURRENCY` at a time."""
    async with httpx.AsyncClient(base_url=gateway_url, timeout=60) as client:
        emails = []
        for index in range(LOGIN_USERS):
            email = f"bench-login-{index}-{uuid.uuid4().hex[:6]}@example.com"
            answer = await client.post(
                "/auth/register", json={"name": "Bench", "email": email, "pin": "12345"}
            )
            assert answer.status_code == 201, answer.text
            emails.append(email)
        gate = asyncio.Semaphore(LOGIN_CONCURRENCY)

        async def one(index: int) -> None:
            async with gate:
                answer = await client.post(
                    "/auth/token",
                    data={"username": emails[index % LOGIN_USERS], "password": "12345"},
                )
                assert answer.status_code == 200, answer.text

        started = time.perf_counter()
        await asyncio.gather(*(one(index) for index in range(LOGINS)))
        return Rate(LOGINS / (time.perf_counter() - started), LOGINS)


async def argon2_ceiling() -> Rate:
    """argon2id verifications per second with the gateway's parameters and thread count."""
    hasher = PasswordHasher(
        time_cost=pins.ARGON2_TIME_COST, memory_cost=pins.ARGON2_MEMORY_KIB,
        parallelism=pins.ARGON2_PARALLELISM, hash_len=pins.ARGON2_HASH_BYTES,
        salt_len=pins.ARGON2_SALT_BYTES, type=Type.ID,
    )  # fmt: skip
    stored = hasher.hash("bench")
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(pins.PIN_HASH_THREADS_MAX) as threads:
        started = time.perf_counter()
        await asyncio.gather(
            *(loop.run_in_executor(threads, hasher.verify, stored, "bench") for _ in range(LOGINS))
        )
        return Rate(LOGINS / (time.perf_counter() - started), LOGINS)
