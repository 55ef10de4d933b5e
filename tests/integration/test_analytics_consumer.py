"""The analytics consumer on the real broker and Redis (ADR 0017): wallet events read from the
log become day buckets that equal brute force; a consumer that dies without committing
anything is replaced by one that resumes from the Redis checkpoint, and the answers do not
change."""

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio
from redis.asyncio import Redis

from services.analytics.adapters.consumer import AggregateConsumer
from services.analytics.adapters.redis_aggregates import RedisAggregates
from services.analytics.domain.summary import summarize
from shared.contracts.envelope import build_envelope, encode_envelope
from shared.contracts.wallet import (
    TRANSFER_DEBITED_V1,
    WALLET_EVENTS,
    WALLET_SOURCE,
    WALLET_TOPPED_UP_V1,
    TransferDebited,
    WalletToppedUp,
)
from shared.infra.provision import Infrastructure
from shared.kafka.topics import TopicDefinition, create_topics
from tests.support.stacks import publish
from tests.support.waiting import eventually

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]
SESSION_TIMEOUT_MILLISECONDS = 6_000
EVENTS_PER_USER = 60
START = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


@pytest_asyncio.fixture(loop_scope="session")
async def store(infrastructure: Infrastructure) -> AsyncIterator[RedisAggregates]:
    redis = Redis.from_url(infrastructure.redis_url)
    aggregates = RedisAggregates(redis, prefix=f"consumer-{uuid.uuid4().hex}:")
    await aggregates.start_generation("g1")
    yield aggregates
    await redis.aclose()


def wallet_events(user: uuid.UUID, rng: random.Random) -> tuple[list[bytes], list[tuple]]:  # type: ignore[type-arg]
    """A user's stream: top-ups and debits on random days; and the (day, direction, amount)
    each adds, for the brute force."""
    values, expected, balance = [], [], 0
    for sequence in range(1, EVENTS_PER_USER + 1):
        at = START + timedelta(days=rng.randrange(7), minutes=sequence)
        amount = rng.randint(1, 1_000)
        if balance >= amount and rng.random() < 0.4:
            balance -= amount
            data: WalletToppedUp | TransferDebited = TransferDebited(
                transfer_id=uuid.uuid4(), from_user_id=user, to_user_id=uuid.uuid4(),
                amount=amount, debited_at=at, balance=balance, sequence=sequence,
            )  # fmt: skip
            message_type, direction = TRANSFER_DEBITED_V1, "debit"
        else:
            balance += amount
            data = WalletToppedUp(
                user_id=user, topup_id=uuid.uuid4(), amount=amount, topped_up_at=at,
                balance=balance, sequence=sequence,
            )  # fmt: skip
            message_type, direction = WALLET_TOPPED_UP_V1, "credit"
        envelope = build_envelope(
            message_type=message_type, source=WALLET_SOURCE, subject=str(user), data=data
        )
        values.append(encode_envelope(envelope))
        expected.append((at.date(), direction, amount))
    return values, expected


def consumer(
    store: RedisAggregates, infrastructure: Infrastructure, topic: str, group: str
) -> AggregateConsumer:
    return AggregateConsumer(
        bootstrap=infrastructure.kafka_bootstrap_servers, group_id=group,
        registries={topic: WALLET_EVENTS}, store=store,
        session_timeout_milliseconds=SESSION_TIMEOUT_MILLISECONDS,
    )  # fmt: skip


async def test_a_replaced_consumer_resumes_from_redis_and_answers_the_same(
    store: RedisAggregates, infrastructure: Infrastructure
) -> None:
    topic = f"analytics-{uuid.uuid4().hex[:8]}.wallet.events"
    await create_topics(infrastructure.kafka_bootstrap_servers, [TopicDefinition(topic, 2, 1)])
    rng = random.Random(11)
    users = [uuid.uuid4() for _ in range(3)]
    streams = {user: wallet_events(user, rng) for user in users}
    first_half = [
        (str(u).encode(), v) for u in users for v in streams[u][0][: EVENTS_PER_USER // 2]
    ]
    second_half = [
        (str(u).encode(), v) for u in users for v in streams[u][0][EVENTS_PER_USER // 2 :]
    ]
    await publish(infrastructure.kafka_bootstrap_servers, topic, first_half)

    group = f"analytics-{uuid.uuid4().hex[:8]}"
    dying = consumer(store, infrastructure, topic, group)
    await dying.start()
    applied = 0
    while applied < len(first_half):
        applied += await dying.run_once()
    await dying.stop()  # leaves the group; nothing about Kafka's offsets matters
    await publish(infrastructure.kafka_bootstrap_servers, topic, second_half)

    successor = consumer(store, infrastructure, topic, group)
    await successor.start()
    stop = asyncio.Event()
    runner = asyncio.create_task(successor.run_until(stop))

    async def all_counted() -> int:
        counts = [summarize(await store.buckets("g1", user)).transaction_count for user in users]
        return sum(counts)

    try:
        await eventually(all_counted, lambda n: n == len(users) * EVENTS_PER_USER,
                         "every event counted once", 60)  # fmt: skip
    finally:
        stop.set()
        await runner
        await successor.stop()
    for user in users:
        expected = streams[user][1]
        summary = summarize(await store.buckets("g1", user))
        assert summary.transaction_count == len(expected)
        assert summary.credit == sum(a for _, d, a in expected if d == "credit")
        assert summary.debit == sum(a for _, d, a in expected if d == "debit")


async def forget_everything(store: RedisAggregates) -> None:
    """What a Redis restart without persistence does to the aggregates (this test's keys only,
    since other tests share the server)."""
    keys = [key async for key in store.redis.scan_iter(match=f"{store.prefix}*")]
    await store.redis.delete(*keys)


async def test_aggregates_lost_mid_stream_are_rebuilt_from_the_log(
    store: RedisAggregates, infrastructure: Infrastructure
) -> None:
    topic = f"analytics-{uuid.uuid4().hex[:8]}.wallet.events"
    await create_topics(infrastructure.kafka_bootstrap_servers, [TopicDefinition(topic, 2, 1)])
    rng = random.Random(12)
    users = [uuid.uuid4() for _ in range(2)]
    streams = {user: wallet_events(user, rng) for user in users}
    half = EVENTS_PER_USER // 2
    first = [(str(u).encode(), v) for u in users for v in streams[u][0][:half]]
    second = [(str(u).encode(), v) for u in users for v in streams[u][0][half:]]
    await publish(infrastructure.kafka_bootstrap_servers, topic, first)
    member = consumer(store, infrastructure, topic, f"analytics-{uuid.uuid4().hex[:8]}")
    await member.start()
    stop = asyncio.Event()
    runner = asyncio.create_task(member.run_until(stop))
    try:

        async def counted() -> int:
            live = await store.generation()
            if live is None:
                return -1
            counts = [summarize(await store.buckets(live, u)).transaction_count for u in users]
            return sum(counts)

        await eventually(counted, lambda n: n == len(first), "the first half counted", 60)
        await forget_everything(store)
        await publish(infrastructure.kafka_bootstrap_servers, topic, second)
        await eventually(counted, lambda n: n == len(users) * EVENTS_PER_USER,
                         "rebuilt from the log and switched", 60)  # fmt: skip
    finally:
        stop.set()
        await runner
        await member.stop()
    live = await store.generation()
    assert live is not None and live != "g1"  # a new generation, built from offset 0
    for user in users:
        expected = streams[user][1]
        summary = summarize(await store.buckets(live, user))
        assert summary.credit == sum(a for _, d, a in expected if d == "credit")
        assert summary.debit == sum(a for _, d, a in expected if d == "debit")


async def test_redis_losing_its_last_writes_on_an_idle_partition_is_read_again(
    infrastructure: Infrastructure,
) -> None:
    """What an AOF restart that lost the last second does: the aggregates and checkpoint go
    back together, with no new event to reveal it. The member sees its checkpoint in Redis is
    not the one it believes, claims again, and re-applies (review finding)."""
    redis = Redis.from_url(infrastructure.redis_url)
    store = RedisAggregates(redis, prefix=f"aof-{uuid.uuid4().hex}:")
    await store.start_generation("g1")
    topic = f"analytics-{uuid.uuid4().hex[:8]}.wallet.events"
    await create_topics(infrastructure.kafka_bootstrap_servers, [TopicDefinition(topic, 1, 1)])
    user = uuid.uuid4()
    values, _ = wallet_events(user, random.Random(13))
    half = len(values) // 2
    await publish(infrastructure.kafka_bootstrap_servers, topic,
                  [(str(user).encode(), v) for v in values[:half]])  # fmt: skip
    member = consumer(store, infrastructure, topic, f"analytics-{uuid.uuid4().hex[:8]}")
    await member.start()
    stop = asyncio.Event()
    runner = asyncio.create_task(member.run_until(stop))

    async def counted() -> int:
        return summarize(await store.buckets("g1", user)).transaction_count

    try:
        await eventually(counted, lambda n: n == half, "the first half counted", 60)
        saved = {key: await redis.dump(key) async for key in redis.scan_iter(f"{store.prefix}*")}
        await publish(infrastructure.kafka_bootstrap_servers, topic,
                      [(str(user).encode(), v) for v in values[half:]])  # fmt: skip
        await eventually(counted, lambda n: n == len(values), "everything counted", 60)
        for key in [key async for key in redis.scan_iter(f"{store.prefix}*")]:
            await redis.delete(key)
        for key, dumped in saved.items():
            if dumped is not None and not key.endswith(b"caught_up"):
                await redis.restore(key, 0, dumped)
        assert await counted() == half  # Redis went back; nothing new arrives
        await eventually(counted, lambda n: n == len(values), "re-read after the loss", 60)
    finally:
        stop.set()
        await runner
        await member.stop()
        await redis.aclose()
