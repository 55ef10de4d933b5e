"""Analytics under faults (issue 7, ADR 0017): a stream of wallet events (top-ups, debits,
recorded transactions amended and voided, some records sent twice as a retrying producer does)
while Redis loses the aggregates mid-stream and the aggregator is SIGKILLed mid-stream. The
answers afterwards, through HTTP, equal a brute force over the same events; so does the audit.
"""

import asyncio
import random
import signal
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from redis.asyncio import Redis

from ledgerbus.registry import GATEWAY_PROCESS
from shared.contracts.envelope import build_envelope, encode_envelope
from shared.contracts.wallet import (
    TRANSACTION_AMENDED_V1,
    TRANSACTION_RECORDED_V1,
    TRANSACTION_VOIDED_V1,
    TRANSFER_DEBITED_V1,
    WALLET_SOURCE,
    WALLET_TOPPED_UP_V1,
    TransactionAmended,
    TransactionRecorded,
    TransactionVoided,
    TransferDebited,
    WalletToppedUp,
)
from shared.infra.provision import Infrastructure
from tests.support.analytics import Movement, brute_summary
from tests.support.commands import ledgerbus
from tests.support.stacks import LedgerStack, publish, running_stack
from tests.support.waiting import eventually
from tests.support.wallet_users import OPERATOR

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]
AGGREGATOR = "analytics-aggregator"
USERS = 6
EVENTS_PER_USER = 120
CHUNKS = 4
START = datetime(2026, 10, 1, 8, 0, tzinfo=UTC)
COUNTED_TIMEOUT_SECONDS = 120.0

Record = tuple[bytes, bytes]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stack(
    infrastructure: Infrastructure, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LedgerStack]:
    log_path = tmp_path_factory.mktemp("analytics-faults") / "stack.log"
    async with running_stack(infrastructure, log_path, (AGGREGATOR, GATEWAY_PROCESS)) as running:
        await running.wait_until_ready()
        yield running


@dataclass(slots=True)
class UserStream:
    """One user's events as published, and what the brute force counts from them."""

    user: uuid.UUID
    records: list[Record] = field(default_factory=list)
    movements: list[Movement] = field(default_factory=list)
    recorded: dict[uuid.UUID, Movement | None] = field(default_factory=dict)
    """Each recorded transaction's current state (None once voided)."""

    def expected(self) -> list[Movement]:
        return self.movements + [state for state in self.recorded.values() if state is not None]

    def add(self, message_type: str, data: Any) -> None:
        envelope = build_envelope(
            message_type=message_type, source=WALLET_SOURCE, subject=str(self.user), data=data
        )
        self.records.append((str(self.user).encode(), encode_envelope(envelope)))


def user_stream(rng: random.Random) -> UserStream:
    stream = UserStream(uuid.uuid4())
    balance, sequence = 0, 0
    versions: dict[uuid.UUID, int] = {}
    for index in range(EVENTS_PER_USER):
        at = START + timedelta(days=rng.randrange(10), minutes=index)
        amount = rng.randint(1, 5_000)
        roll = rng.random()
        if roll < 0.3:
            _record_event(stream, rng, versions, at, amount)
            continue
        sequence += 1
        if roll < 0.55 and balance >= amount:
            balance -= amount
            stream.add(TRANSFER_DEBITED_V1, TransferDebited(
                transfer_id=uuid.uuid4(), from_user_id=stream.user, to_user_id=uuid.uuid4(),
                amount=amount, debited_at=at, balance=balance, sequence=sequence,
            ))  # fmt: skip
            stream.movements.append((at.date(), "debit", amount))
        else:
            balance += amount
            stream.add(WALLET_TOPPED_UP_V1, WalletToppedUp(
                user_id=stream.user, topup_id=uuid.uuid4(), amount=amount, topped_up_at=at,
                balance=balance, sequence=sequence,
            ))  # fmt: skip
            stream.movements.append((at.date(), "credit", amount))
    return stream


def _record_event(
    stream: UserStream, rng: random.Random, versions: dict[uuid.UUID, int], at: datetime,
    amount: int,
) -> None:  # fmt: skip
    """A new recorded transaction, or the next version (amended or voided) of an open one."""
    open_ids = [key for key, state in stream.recorded.items() if state is not None]
    kind = rng.choice(["credit", "debit"])
    if open_ids and rng.random() < 0.5:
        transaction = rng.choice(open_ids)
        versions[transaction] += 1
        if rng.random() < 0.3:
            stream.add(TRANSACTION_VOIDED_V1, TransactionVoided(
                transaction_id=transaction, user_id=stream.user,
                version=versions[transaction], voided_at=at,
            ))  # fmt: skip
            stream.recorded[transaction] = None
            return
        stream.add(TRANSACTION_AMENDED_V1, TransactionAmended(
            transaction_id=transaction, user_id=stream.user, amount=amount,
            transaction_type=kind, transaction_date=at, version=versions[transaction],
            amended_at=at,
        ))  # fmt: skip
    else:
        transaction = uuid.uuid4()
        versions[transaction] = 1
        stream.add(TRANSACTION_RECORDED_V1, TransactionRecorded(
            transaction_id=transaction, user_id=stream.user, amount=amount,
            transaction_type=kind, transaction_date=at, version=1, recorded_at=at,
        ))  # fmt: skip
    stream.recorded[transaction] = (at.date(), kind, amount)


def chunks(streams: list[UserStream], rng: random.Random) -> list[list[Record]]:
    """Each user's records in order, cut into chunks; some records sent twice (a retry)."""
    parts: list[list[Record]] = [[] for _ in range(CHUNKS)]
    for stream in streams:
        size = len(stream.records) // CHUNKS + 1
        for index, record in enumerate(stream.records):
            parts[index // size].append(record)
            if rng.random() < 0.05:
                parts[index // size].append(record)  # the same event id and sequence again
    return parts


async def forget_aggregates(stack: LedgerStack) -> None:
    """What a Redis restart without persistence does to this deployment's aggregates (other
    tests share the server, so only this stack's keys go)."""
    redis = Redis.from_url(stack.environment["REDIS_URL"])
    try:
        keys = [key async for key in redis.scan_iter(match=f"{stack.analytics_prefix}*")]
        assert keys, "there were aggregates to lose"
        await redis.delete(*keys)
    finally:
        await redis.aclose()


async def counts(client: httpx.AsyncClient, streams: list[UserStream]) -> list[int]:
    found = []
    for stream in streams:
        answer = await client.get(f"/analytics/users/{stream.user}/summary", headers=OPERATOR)
        found.append(answer.json()["transaction_count"] if answer.status_code == 200 else -1)
    return found


async def test_redis_flushed_and_the_aggregator_killed_mid_stream_answer_the_brute_force(
    stack: LedgerStack,
) -> None:
    assert stack.stack is not None
    rng = random.Random(7)
    streams = [user_stream(rng) for _ in range(USERS)]
    parts = chunks(streams, rng)
    topic = stack.topic("wallet.events")
    async with stack.client(None) as client:
        await publish(stack.bootstrap, topic, parts[0])
        await eventually(lambda: counts(client, streams), lambda n: min(n) > 0, "the first part")
        await forget_aggregates(stack)
        await publish(stack.bootstrap, topic, parts[1])
        sending = asyncio.create_task(publish(stack.bootstrap, topic, parts[2]))
        stack.stack.group.kill(AGGREGATOR, signal.SIGKILL)
        assert await stack.stack.group.wait_for_exit(AGGREGATOR, 10) == -signal.SIGKILL
        await sending
        await stack.stack.group.start(stack.stack.spec(AGGREGATOR, restart_on_exit=False))
        await publish(stack.bootstrap, topic, parts[3])
        wanted = [len(stream.expected()) for stream in streams]
        await eventually(lambda: counts(client, streams), lambda n: n == wanted,
                         "every event counted once", COUNTED_TIMEOUT_SECONDS)  # fmt: skip
        for stream in streams:
            await _answers_equal_brute_force(client, stream, rng)
        await _as_of_covers_what_the_log_held(client, stack, streams[0])
    audit = await ledgerbus(stack.environment, "audit", "--service", "analytics")
    assert audit.exit_code == 0, audit.output


async def _as_of_covers_what_the_log_held(
    client: httpx.AsyncClient, stack: LedgerStack, stream: UserStream
) -> None:
    """An answer whose `as_of` is later than an event's append includes that event."""
    before = len(stream.expected())
    transaction = uuid.uuid4()
    stream.add(TRANSACTION_RECORDED_V1, TransactionRecorded(
        transaction_id=transaction, user_id=stream.user, amount=12_345, transaction_type="credit",
        transaction_date=START, version=1, recorded_at=START,
    ))  # fmt: skip
    await publish(stack.bootstrap, stack.topic("wallet.events"), stream.records[-1:])
    appended = datetime.now(UTC)
    path = f"/analytics/users/{stream.user}/summary"

    async def answer() -> dict[str, Any]:
        body: dict[str, Any] = (await client.get(path, headers=OPERATOR)).json()
        return body

    later = await eventually(
        answer, lambda body: datetime.fromisoformat(body["as_of"]) > appended, "as_of to pass"
    )
    assert later["transaction_count"] == before + 1


async def _answers_equal_brute_force(
    client: httpx.AsyncClient, stream: UserStream, rng: random.Random
) -> None:
    expected = stream.expected()
    since = START.date() + timedelta(days=rng.randrange(5))
    until = since + timedelta(days=rng.randrange(5))
    for bounds in ((None, None), (since, until), (since, None), (None, until)):
        params = {name: day.isoformat()
                  for name, day in zip(("from", "to"), bounds, strict=True) if day}  # fmt: skip
        answer = await client.get(
            f"/analytics/users/{stream.user}/summary", headers=OPERATOR, params=params
        )
        body = answer.json()
        body.pop("as_of")
        assert body == brute_summary(expected, *bounds), (stream.user, bounds)
