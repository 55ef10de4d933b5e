"""Intake of `ledger.commands` records: what can be decided, and what goes to the DLQ.

A record is decided only when it is a valid `ledger.record_entry.v1`, is keyed by its aggregate,
sits on the partition that key belongs to (so one owner decides each account), and names an app
with a catalog. Everything else goes to `ledger.commands.dlq` unchanged, with the reason.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field

from services.ledger.domain.catalog import Catalogs
from services.ledger.domain.outcomes import unknown_operation_outcome
from shared.contracts.envelope import CloudEvent
from shared.contracts.ledger import LEDGER_COMMANDS, RecordEntry, aggregate_key
from shared.contracts.registry import RejectedRecord
from shared.kafka.command_publisher import REPLY_BY_NOTIFY, REPLY_HEADER
from shared.kafka.dead_letters import dead_letter
from shared.kafka.partition_handler import PartitionBatch, Record
from shared.kafka.producer import OutgoingMessage, partition_for


@dataclass(frozen=True, slots=True)
class ParsedCommand:
    record: Record
    envelope: CloudEvent
    command: RecordEntry
    wants_reply: bool
    """The gateway is waiting: answer with NOTIFY. Outside producers read stored answers."""


@dataclass(slots=True)
class Intake:
    decidable: list[ParsedCommand] = field(default_factory=list)
    unknown_operations: list[ParsedCommand] = field(default_factory=list)
    dead_letters: list[OutgoingMessage] = field(default_factory=list)


def take_in(batch: PartitionBatch, catalogs: Catalogs) -> Intake:
    intake = Intake()
    for record in batch.records:
        parsed = LEDGER_COMMANDS.parse(record.value)
        if isinstance(parsed, RejectedRecord):
            intake.dead_letters.append(dead_letter(record, parsed.code, parsed.message))
            continue
        command = parsed.data
        assert type(command) is RecordEntry
        item = ParsedCommand(record, parsed.envelope, command, _wants_reply(record.headers))
        refusal = _refusal(item, batch, catalogs)
        if refusal is not None:
            intake.dead_letters.append(dead_letter(record, *refusal))
            if refusal[0] == "unknown_operation":
                intake.unknown_operations.append(item)
        else:
            intake.decidable.append(item)
    return intake


def _refusal(
    item: ParsedCommand, batch: PartitionBatch, catalogs: Catalogs
) -> tuple[str, str] | None:
    command, record = item.command, item.record
    key = aggregate_key(command.app, command.owner_id).encode()
    if record.key != key:
        return "key_mismatch", (
            f"The record key must be the aggregate id {key.decode()!r} ({{app}}:{{owner_id}});"
            " another key would let two partitions decide one account."
        )
    expected = partition_for(key, batch.partition_count)
    if expected != batch.partition:
        return "wrong_partition", (
            f"The key {key.decode()!r} belongs on partition {expected} (murmur2, the Java client's"
            f" default), not {batch.partition}. With librdkafka set partitioner=murmur2_random."
        )
    catalog = catalogs.for_app(command.app)
    if catalog is None:
        return "unknown_app", f"No catalog exists for {command.app!r}."
    if catalog.amount_of(command.operation) is None:
        outcome = unknown_operation_outcome(command.app, command.operation)
        return "unknown_operation", str(outcome.body["detail"])
    return None


def _wants_reply(headers: Sequence[tuple[str, bytes]] | None) -> bool:
    return any(
        name == REPLY_HEADER and value == REPLY_BY_NOTIFY.encode() for name, value in headers or ()
    )
