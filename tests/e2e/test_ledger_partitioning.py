"""Producers that partition differently: a plain confluent-kafka producer (librdkafka's CRC32,
not murmur2) on an 8-partition commands topic. Every command is forwarded to the partition
that owns its key when it lands elsewhere, and decided exactly once there."""

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator

import orjson
import pytest
import pytest_asyncio
from confluent_kafka import Producer

from ledgerbus.stack import all_processes
from shared.infra.provision import Infrastructure
from shared.kafka.producer import partition_for
from tests.support.stacks import LedgerStack, read_topic, record_entry_command, running_stack
from tests.support.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]
COMMAND_PARTITIONS = 8
COMMANDS = 200
OWNERS = 50
FLUSH_TIMEOUT_SECONDS = 30.0
SETTLE_TIMEOUT_SECONDS = 60.0


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def eight(
    infrastructure: Infrastructure, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LedgerStack]:
    log_path = tmp_path_factory.mktemp("partitioning") / "stack.log"
    async with running_stack(
        infrastructure, log_path, all_processes(),
        topic_partitions={"ledger.commands": COMMAND_PARTITIONS},
    ) as stack:  # fmt: skip
        await stack.wait_until_ready()
        yield stack


def produce_plainly(bootstrap: str, topic: str, items: list[tuple[bytes, bytes]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    failures: list[object] = []
    for key, value in items:
        producer.produce(
            topic, key=key, value=value,
            on_delivery=lambda error, _: failures.append(error) if error else None,
        )  # fmt: skip
        producer.poll(0)
    assert producer.flush(FLUSH_TIMEOUT_SECONDS) == 0
    assert failures == []


async def test_two_hundred_commands_over_fifty_owners_are_all_decided_once(
    eight: LedgerStack,
) -> None:
    tag = uuid.uuid4().hex[:6]
    owners = [f"crc-{tag}-{index}" for index in range(OWNERS)]
    items = [
        record_entry_command("healthai", owners[index % OWNERS], "CREDIT_ADD", f"{tag}-{index}")
        for index in range(COMMANDS)
    ]
    topic = eight.topic("ledger.commands")
    await asyncio.to_thread(produce_plainly, eight.bootstrap, topic, items)
    ids = [orjson.loads(value)["id"] for _, value in items]
    answered = await eventually(
        lambda: eight.fetch(
            "SELECT message_id, reply_status FROM ledger.inbox WHERE message_id = ANY($1)", ids
        ),
        lambda rows: len(rows) == COMMANDS,
        "every command's answer",
        SETTLE_TIMEOUT_SECONDS,
    )
    assert Counter(row["reply_status"] for row in answered) == {201: COMMANDS}
    accounts = await eight.fetch(
        "SELECT owner_id, balance FROM ledger.accounts WHERE owner_id = ANY($1)", owners
    )
    assert {row["owner_id"]: row["balance"] for row in accounts} == dict.fromkeys(owners, 40)
    records = await read_topic(eight.bootstrap, topic)
    mine = [record for record in records if record.value in {value for _, value in items}]
    misrouted = [r for r in mine if r.partition != partition_for(r.key or b"", COMMAND_PARTITIONS)]
    assert misrouted, "CRC32 must have put some keys elsewhere than murmur2 would"
    assert len(mine) == COMMANDS + len(misrouted)  # each misrouted one was forwarded once
    dead = await read_topic(eight.bootstrap, eight.topic("ledger.commands.dlq"))
    assert [record for record in dead if record.value in {value for _, value in items}] == []
