"""Records for the benchmarks: commands as producers send them, events as the processor emits."""

import secrets
from datetime import UTC, datetime

import orjson

from services.ledger.domain.model import entry_id_for
from shared.contracts.envelope import build_envelope, encode_envelope
from shared.contracts.ledger import ENTRY_RECORDED_V1, LEDGER_SOURCE, EntryRecorded, aggregate_key

OWNERS = 1_000


def commands(count: int, tag: str) -> list[tuple[bytes, bytes]]:
    """`ledger.record_entry.v1` commands spread over many owners; every one records an entry."""
    records = []
    for index in range(count):
        owner = f"{tag}-{index % OWNERS}"
        data = {
            "app": "healthai",
            "owner_id": owner,
            "operation": "CREDIT_ADD",
            "nonce": f"{tag}-{index}",
        }
        value = {
            "specversion": "1.0", "id": secrets.token_hex(16), "source": "bench",
            "type": "ledger.record_entry.v1", "time": "2026-11-23T10:00:00Z", "data": data,
        }  # fmt: skip
        records.append((aggregate_key("healthai", owner).encode(), orjson.dumps(value)))
    return records


def events(count: int, tag: str) -> list[tuple[bytes, bytes]]:
    """`ledger.entry_recorded.v1` events with correct sequences and balances, per owner."""
    now = datetime.now(UTC)
    sequences: dict[str, int] = {}
    records = []
    for index in range(count):
        owner = f"{tag}-{index % OWNERS}"
        sequence = sequences[owner] = sequences.get(owner, 0) + 1
        nonce = f"{tag}-{index}"
        event = EntryRecorded(
            entry_id=entry_id_for("healthai", nonce), app="healthai", owner_id=owner,
            operation="CREDIT_ADD", amount=10, nonce=nonce, balance=10 * sequence,
            sequence=sequence, created_on=now, command_id=nonce,
        )  # fmt: skip
        key = aggregate_key("healthai", owner)
        envelope = build_envelope(
            message_type=ENTRY_RECORDED_V1, source=LEDGER_SOURCE, subject=key, data=event
        )
        records.append((key.encode(), encode_envelope(envelope)))
    return records
