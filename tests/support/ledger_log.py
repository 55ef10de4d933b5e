"""Reading the ledger's log back and folding it, to check the system against first principles."""

import random
import secrets
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import orjson

from tests.support.stacks import LedgerStack, read_topic, record_entry_command

OPERATION_WEIGHTS = {"CREDIT_ADD": 3, "CREDIT_SPEND": 5, "CONTENT_CREATION": 1, "DAILY_REWARD": 1}


@dataclass(slots=True)
class Workload:
    """Commands as outside producers send them, with retries and repeated sends mixed in."""

    records: list[tuple[bytes, bytes]] = field(default_factory=list)
    command_ids: set[str] = field(default_factory=set)


def make_workload(count: int, owners: int, seed: int) -> Workload:
    rng = random.Random(seed)
    names = [f"fault-{seed}-{index}" for index in range(owners)]
    operations = [name for name, weight in OPERATION_WEIGHTS.items() for _ in range(weight)]
    workload = Workload()
    sent: list[tuple[bytes, bytes]] = []
    while len(workload.records) < count:
        roll = rng.random()
        if sent and roll < 0.03:
            record = rng.choice(sent)  # the same record sent twice: a retried send that landed
        elif sent and roll < 0.08:
            _, value = rng.choice(sent)  # the same nonce and body under a new command id
            data = orjson.loads(value)["data"]
            record = record_entry_command(
                data["app"], data["owner_id"], data["operation"], data["nonce"]
            )
        else:
            record = record_entry_command(
                "healthai", rng.choice(names), rng.choice(operations), secrets.token_hex(8)
            )
        sent.append(record)
        workload.records.append(record)
        workload.command_ids.add(orjson.loads(record[1])["id"])
    return workload


@dataclass(slots=True)
class Fold:
    balances: dict[tuple[str, str], int]
    sequences: dict[tuple[str, str], int]
    repeated_events: int


async def fold_events(ledger: LedgerStack) -> Fold:
    """Fold `ledger.events` from offset 0, asserting one outcome per nonce and gapless streams."""
    records = await read_topic(ledger.bootstrap, ledger.topic("ledger.events"))
    events = [orjson.loads(record.value) for record in records]
    by_id: dict[str, dict[str, Any]] = {}
    repeated = 0
    for event in events:
        if event["id"] in by_id:
            assert by_id[event["id"]] == event, "a repeated event id must carry the same event"
            repeated += 1
        by_id[event["id"]] = event
    nonces: dict[tuple[str, str], set[str]] = defaultdict(set)
    streams: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for event in by_id.values():
        data = event["data"]
        nonces[(data["app"], data["nonce"])].add(event["id"])
        streams[(data["app"], data["owner_id"])].append(data)
    doubled = {nonce: ids for nonce, ids in nonces.items() if len(ids) > 1}
    assert not doubled, f"nonces with more than one outcome in the log: {doubled}"
    balances, sequences = {}, {}
    for owner, stream in streams.items():
        stream.sort(key=lambda data: data["sequence"])
        assert [data["sequence"] for data in stream] == list(range(1, len(stream) + 1)), owner
        balance = 0
        for data in stream:
            if "entry_id" in data:
                balance += data["amount"]
            assert balance >= 0 and data["balance"] == balance, (owner, data)
        balances[owner], sequences[owner] = balance, len(stream)
    return Fold(balances, sequences, repeated)
