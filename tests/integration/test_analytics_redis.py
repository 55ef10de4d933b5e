"""The analytics aggregates on real Redis (ADR 0017): one Lua script per batch applies the
increments and moves the checkpoint at once; a redelivered batch, a repeated event and a stale
owner change nothing; amendments and voids take back what the previous version added; and the
buckets answer what brute force computes over the same transactions."""

import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import date, timedelta

import pytest
import pytest_asyncio
from redis.asyncio import Redis

from services.analytics.adapters.redis_aggregates import (
    AggregateEvent,
    AggregateOverflowError,
    FencedError,
    Ownership,
    RedisAggregates,
)
from services.analytics.adapters.redis_reads import AnalyticsReads
from services.analytics.domain.summary import Bucket, Contribution, summarize
from shared.infra.provision import Infrastructure

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]
TOPIC = "wallet.events"
FIRST_DAY = date(2026, 11, 1)


@pytest_asyncio.fixture(loop_scope="session")
async def aggregates(infrastructure: Infrastructure) -> AsyncIterator[RedisAggregates]:
    redis = Redis.from_url(infrastructure.redis_url)
    store = RedisAggregates(redis, prefix=f"test-{uuid.uuid4().hex}:")
    await store.start_generation("g1")
    yield store
    await redis.aclose()


def movement(user: uuid.UUID, stream_sequence: int, day: int, amount: int) -> AggregateEvent:
    contribution = Contribution(user, FIRST_DAY + timedelta(days=day), "credit", amount)
    return AggregateEvent(f"wallet:{user}", stream_sequence, "movement", uuid.uuid4().hex,
                          contribution)  # fmt: skip


async def test_a_redelivered_batch_and_a_stale_owner_change_nothing(
    aggregates: RedisAggregates,
) -> None:
    user = uuid.uuid4()
    owned, checkpoint = await aggregates.claim("g1", TOPIC, 0)
    assert checkpoint == 0
    batch = [movement(user, 1, 0, 100), movement(user, 2, 0, 50)]
    result = await aggregates.apply_batch(owned, 0, 2, batch)
    assert (result.applied, result.skipped) == (2, 0)
    with pytest.raises(FencedError, match="checkpoint_moved"):  # redelivered from offset 0
        await aggregates.apply_batch(owned, 0, 2, batch)
    again, resume = await aggregates.claim("g1", TOPIC, 0)  # a new owner after a rebalance
    assert resume == 2
    with pytest.raises(FencedError, match="fenced"):  # the old owner is fenced
        await aggregates.apply_batch(owned, 2, 3, [movement(user, 3, 1, 7)])
    repeated = await aggregates.apply_batch(again, 2, 4, [batch[1], movement(user, 3, 1, 7)])
    assert (repeated.applied, repeated.skipped) == (1, 1)  # the same event again is skipped
    summary = summarize(await aggregates.buckets("g1", user))
    assert (summary.transaction_count, summary.credit) == (3, 157)
    with pytest.raises(FencedError, match="stale_generation"):
        await aggregates.apply_batch(
            Ownership("g0", TOPIC, 0, again.epoch), 4, 5, [movement(user, 4, 1, 1)]
        )


async def test_amendments_and_voids_take_back_the_previous_version(
    aggregates: RedisAggregates,
) -> None:
    user = uuid.uuid4()
    owned, _ = await aggregates.claim("g1", TOPIC, 1)
    record = uuid.uuid4().hex
    stream = f"record:{record}"
    first = Contribution(user, FIRST_DAY, "debit", 300)
    amended = Contribution(user, FIRST_DAY + timedelta(days=2), "credit", 80)
    events = [
        AggregateEvent(stream, 1, "record", record, first),
        AggregateEvent(stream, 2, "record", record, amended),
    ]
    await aggregates.apply_batch(owned, 0, 2, events)
    summary = summarize(await aggregates.buckets("g1", user))
    assert (summary.transaction_count, summary.credit, summary.debit) == (1, 80, 0)
    await aggregates.apply_batch(owned, 2, 3, [AggregateEvent(stream, 3, "record", record, None)])
    assert summarize(await aggregates.buckets("g1", user)).transaction_count == 0


async def test_random_streams_in_random_batches_match_brute_force(
    aggregates: RedisAggregates,
) -> None:
    rng = random.Random(7)
    user = uuid.uuid4()
    owned, _ = await aggregates.claim("g1", TOPIC, 2)
    events, active = [], []
    for sequence in range(1, 301):
        day = rng.randrange(10)
        contribution = Contribution(
            user, FIRST_DAY + timedelta(days=day), rng.choice(["credit", "debit"]),
            rng.randint(1, 10**9),
        )  # fmt: skip
        events.append(
            AggregateEvent(f"wallet:{user}", sequence, "movement", str(sequence), contribution)
        )
        active.append(contribution)
    offset = 0
    while offset < len(events):
        size = rng.randint(1, 40)
        batch = events[offset : offset + size]
        replayed = events[max(0, offset - 5) : offset]  # redelivered tail: skipped by sequence
        await aggregates.apply_batch(owned, offset, offset + len(batch), replayed + batch)
        offset += len(batch)
    summary = summarize(await aggregates.buckets("g1", user), FIRST_DAY + timedelta(days=2))
    chosen = [c for c in active if c.day >= FIRST_DAY + timedelta(days=2)]
    assert summary.transaction_count == len(chosen)
    assert summary.credit == sum(c.amount for c in chosen if c.direction == "credit")
    assert summary.debit == sum(c.amount for c in chosen if c.direction == "debit")


async def test_counters_of_ledger_and_tracking_events_add_up_once(
    aggregates: RedisAggregates,
) -> None:
    owned, _ = await aggregates.claim("g1", "ledger.events", 0)
    app = f"app-{uuid.uuid4().hex[:8]}"
    events = [
        AggregateEvent(
            f"ledger:{app}:alice", sequence, "counters", "", None,
            ((f"app:{app}", "entries", 1), (f"app:{app}", "credited", 10)),
        )
        for sequence in (1, 2, 3)
    ]  # fmt: skip
    await aggregates.apply_batch(owned, 0, 3, events)
    await aggregates.apply_batch(owned, 3, 4, events[1:])  # a replayed tail: skipped
    assert await aggregates.counters("g1", f"app:{app}") == {"entries": 3, "credited": 30}


async def test_the_summary_added_up_in_redis_equals_the_domain_summary(
    aggregates: RedisAggregates,
) -> None:
    """The script that adds the buckets up inside Redis answers what `summarize` answers over
    the same buckets: ranges, ties to the earliest day, voided days, sums past 2^53."""
    reads = AnalyticsReads(aggregates.redis, aggregates.prefix)
    rng = random.Random(5)
    owned, checkpoint = await aggregates.claim("g1", TOPIC, 3)
    for case in range(12):
        user = uuid.uuid4()
        big = case % 3 == 0  # amounts whose sums pass a double's exact range
        events = []
        for sequence in range(1, rng.randint(1, 41)):
            amount = rng.randint(2**50, 2**55) if big else rng.randint(1, 3)
            events.append(movement(user, sequence, rng.randrange(95), amount))
        voided = AggregateEvent(f"record:{user}", 1, "record", f"r-{user}",
                                Contribution(user, FIRST_DAY, "debit", 7))  # fmt: skip
        void = AggregateEvent(f"record:{user}", 2, "record", f"r-{user}", None)
        events += [voided, void]
        await aggregates.apply_batch(owned, checkpoint, checkpoint + 1, events)
        checkpoint += 1
        buckets = await aggregates.buckets("g1", user)
        second, third = FIRST_DAY + timedelta(days=17), FIRST_DAY + timedelta(days=70)
        december, january = date(2026, 12, 1), date(2027, 1, 31)
        ranges = [(None, None), (second, None), (None, third), (second, third),
                  (december, january), (december, december), (third, third)]  # fmt: skip
        for since, until in ranges:
            found, _ = await reads.summary(str(user), since, until)
            assert found == summarize(buckets, since, until), (case, since, until)


async def test_an_event_that_would_overflow_stops_the_batch_before_it_whole(
    aggregates: RedisAggregates,
) -> None:
    """Redis does not undo a failed script's writes: the script checks every change of an
    event first, applies the events before it, and leaves the checkpoint at its offset."""
    owned, checkpoint = await aggregates.claim("g1", TOPIC, 4)
    user = uuid.uuid4()
    big = 4 * 10**18
    first = replace(movement(user, 1, 0, big), offset=checkpoint)
    second = replace(movement(user, 2, 0, big), offset=checkpoint + 1)
    third = replace(movement(user, 3, 0, big), offset=checkpoint + 2)
    with pytest.raises(AggregateOverflowError) as stopped:
        await aggregates.apply_batch(owned, checkpoint, checkpoint + 3, [first, second, third])
    assert stopped.value.offset == checkpoint + 2
    assert await aggregates.checkpoint("g1", TOPIC, 4) == checkpoint + 2
    buckets = await aggregates.buckets("g1", user)
    assert buckets == {FIRST_DAY: Bucket(2, 2 * big, 0)}  # the third is not half applied
    streams = await aggregates.redis.hget(f"{aggregates.prefix}g1:streams", f"wallet:{user}")
    assert streams is not None and int(streams) == 2
