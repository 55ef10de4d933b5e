"""Failures that must halt, not skip, and an audit that cannot say MATCH while they last.

- A rolling deploy renames a column under the processor: the command is retried, the partition
  halts with the reason (readiness and the audit name it), nothing is dead-lettered, and once
  the column is back the command is decided.
- A decision whose event never reached the log is named by the audit.
- A different event reusing a stream's sequence halts the projector; the audit names it.
- Records on partitions no projector ever claimed fail the audit.
"""

import json
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import pytest_asyncio

from shared.infra.provision import Infrastructure
from tests.support.commands import ledgerbus
from tests.support.load import Writers
from tests.support.stacks import (
    LedgerStack,
    publish,
    read_topic,
    record_entry_command,
    running_stack,
)
from tests.support.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]
HALT_TIMEOUT_SECONDS = 30.0
CURE_TIMEOUT_SECONDS = 60.0
LOAD_WRITERS = 4


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stack(
    infrastructure: Infrastructure, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LedgerStack]:
    log_path = tmp_path_factory.mktemp("halts") / "stack.log"
    async with running_stack(
        infrastructure, log_path, ("ledger-processor", "ledger-projector", "gateway")
    ) as ledger:
        await ledger.wait_until_ready()
        yield ledger


async def audit(ledger: LedgerStack, tmp_path: Path) -> tuple[int, dict[str, Any], str]:
    report = tmp_path / f"audit-{uuid.uuid4().hex[:6]}.json"
    result = await ledgerbus(
        {**os.environ, **ledger.environment}, "audit", "--service", "ledger", "--json", str(report)
    )
    document = json.loads(report.read_text())[0] if report.exists() else {}
    return result.exit_code, document, result.output


async def ready(ledger: LedgerStack) -> tuple[int, str]:
    async with ledger.client(None) as client:
        response = await client.get("/ready")
    return response.status_code, response.text


async def reply(ledger: LedgerStack, command_id: str) -> int:
    async with ledger.client() as client:
        return (await client.get(f"/ledger/commands/{command_id}")).status_code


async def test_a_column_missing_in_a_rolling_deploy_halts_and_once_back_nothing_was_lost(
    stack: LedgerStack, tmp_path: Path
) -> None:
    owner_id = f"deploy-{uuid.uuid4().hex[:8]}"
    key, value = record_entry_command("healthai", owner_id, "CREDIT_ADD", uuid.uuid4().hex)
    command_id = orjson.loads(value)["id"]
    await stack.fetch("ALTER TABLE ledger.decisions RENAME COLUMN detail TO detail_moved")
    try:
        await publish(stack.bootstrap, stack.topic("ledger.commands"), [(key, value)])
        _, text = await eventually(
            lambda: ready(stack), lambda r: r[0] == 503 and "is halted" in r[1], "the halt",
            HALT_TIMEOUT_SECONDS,
        )  # fmt: skip
        assert "detail" in text
        code, report, output = await audit(stack, tmp_path)
        assert code == 1, output
        assert any("ledger-processor" in d and "is halted" in d for d in report["differences"])
        assert await reply(stack, command_id) == 202
    finally:
        await stack.fetch("ALTER TABLE ledger.decisions RENAME COLUMN detail_moved TO detail")
    await eventually(lambda: reply(stack, command_id), lambda s: s == 201, "the cure",
                     CURE_TIMEOUT_SECONDS)  # fmt: skip
    await eventually(lambda: ready(stack), lambda r: r[0] == 200, "readiness again")
    dead = await read_topic(stack.bootstrap, stack.topic("ledger.commands.dlq"))
    assert [letter for letter in dead if letter.value == value] == []
    code, _, output = await audit(stack, tmp_path)
    assert code == 0, output


async def test_a_decision_with_no_event_in_the_log_fails_the_audit(
    stack: LedgerStack, tmp_path: Path
) -> None:
    await stack.fetch(
        "INSERT INTO ledger.decisions (app, nonce, owner_id, operation, amount, status, entry_id,"
        " event_id, balance, sequence, decided_at, command_id, command_source)"
        " VALUES ('healthai', 'lost-nonce', 'lost-owner', 'CREDIT_ADD', 10, 'recorded',"
        " gen_random_uuid(), 'never-published', 10, 1, now(), 'lost-command', 'tests')"
    )
    try:
        code, report, output = await audit(stack, tmp_path)
        assert code == 1, output
        assert any("healthai:lost-nonce has no event" in v for v in report["violations"])
    finally:
        await stack.fetch("DELETE FROM ledger.decisions WHERE nonce = 'lost-nonce'")
    code, _, output = await audit(stack, tmp_path)
    assert code == 0, output


async def test_an_audit_of_a_system_taking_writes_matches(
    stack: LedgerStack, tmp_path: Path
) -> None:
    """Reproduces a false difference: lag was once measured against log ends read after the
    snapshot, so every write in between looked unapplied."""
    writers = Writers(stack, LOAD_WRITERS)
    writers.start()
    try:
        await eventually(lambda: _successes(writers), lambda n: n >= 20, "writes under way")
        code, report, output = await audit(stack, tmp_path)
        still_writing = await _successes(writers)
    finally:
        await writers.stop()
    assert code == 0, output
    assert report["differences"] == []
    assert still_writing > 20, "the audit ran while writes went on"


async def _successes(writers: Writers) -> int:
    return sum(1 for answer in writers.answers if answer.status == 201)


async def test_another_event_reusing_a_sequence_halts_the_projector_and_the_audit_says_so(
    stack: LedgerStack, tmp_path: Path
) -> None:
    owner_id = f"forged-{uuid.uuid4().hex[:8]}"
    async with stack.client() as client:
        written = await client.post(
            "/ledger/", json={"owner_id": owner_id, "operation": "CREDIT_ADD", "nonce": "n"}
        )
        assert written.status_code == 201
        position = written.json()["position"]
        applied = await client.get(f"/ledger/{owner_id}", params={"min_position": position})
        assert applied.json()["balance"] == 10
    events = await read_topic(stack.bootstrap, stack.topic("ledger.events"))
    original = next(e for e in events if orjson.loads(e.value)["data"]["owner_id"] == owner_id)
    forged = orjson.loads(original.value) | {"id": str(uuid.uuid4())}
    await publish(
        stack.bootstrap, stack.topic("ledger.events"), [(original.key or b"", orjson.dumps(forged))]
    )
    await eventually(
        lambda: ready(stack), lambda r: r[0] == 503 and "reuses sequence 1" in r[1],
        "the projector's halt", HALT_TIMEOUT_SECONDS,
    )  # fmt: skip
    code, report, output = await audit(stack, tmp_path)
    assert code == 1, output
    assert any("ledger-projector" in d and "is halted" in d for d in report["differences"])


async def test_records_on_a_partition_no_projector_claimed_fail_the_audit(
    infrastructure: Infrastructure, tmp_path: Path
) -> None:
    async with running_stack(
        infrastructure, tmp_path / "stack.log", ("ledger-processor", "gateway")
    ) as ledger:
        await ledger.wait_until_owned("ledger-processor", "ledger.commands")
        async with ledger.client() as client:
            written = await client.post(
                "/ledger/", json={"owner_id": "unclaimed", "operation": "CREDIT_ADD", "nonce": "n"}
            )
            assert written.status_code == 201
        partition = int(written.json()["position"].split(":")[0])
        code, report, output = await audit(ledger, tmp_path)
    assert code == 1, output
    expected = f"ledger-projector {ledger.topic('ledger.events')}[{partition}] was never claimed"
    assert any(d.startswith(expected) for d in report["differences"]), report["differences"]
