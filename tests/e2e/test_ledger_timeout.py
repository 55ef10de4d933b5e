"""When no processor answers in time: 504 with the command id, and the command is not lost."""

import time
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from shared.infra.provision import Infrastructure
from shared.waiters import READ_WAIT_TIMEOUT_SECONDS
from tests.support.stacks import LedgerStack, running_stack
from tests.support.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def without_processor(
    infrastructure: Infrastructure, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LedgerStack]:
    log_path = tmp_path_factory.mktemp("timeout") / "stack.log"
    timeout = {"LEDGERBUS_COMMAND_TIMEOUT_SECONDS": "1.5"}
    async with running_stack(
        infrastructure, log_path, ("ledger-projector", "gateway"), timeout
    ) as stack:
        yield stack


async def test_no_processor_means_504_with_the_command_id_then_the_answer_arrives(
    without_processor: LedgerStack,
) -> None:
    stack = without_processor
    owner_id = f"late-{uuid.uuid4().hex[:8]}"
    async with stack.client() as client:
        response = await client.post(
            "/ledger/", json={"owner_id": owner_id, "operation": "CREDIT_ADD", "nonce": "late-1"}
        )
        assert response.status_code == 504
        body = response.json()
        assert body["code"] == "outcome_timeout" and body["command_id"]
        pending = await client.get(f"/ledger/commands/{body['command_id']}")
        assert pending.status_code == 202
        assert stack.stack is not None
        await stack.stack.group.start(stack.stack.spec("ledger-processor", restart_on_exit=False))
        decided = await eventually(
            lambda: client.get(f"/ledger/commands/{body['command_id']}"),
            lambda r: r.status_code == 201,
            "the late command's answer",
        )
        assert decided.json()["balance"] == 10
        retry = await client.post(
            "/ledger/", json={"owner_id": owner_id, "operation": "CREDIT_ADD", "nonce": "late-1"}
        )
        assert retry.status_code == 200 and retry.json() == decided.json()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def without_projector(
    infrastructure: Infrastructure, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LedgerStack]:
    log_path = tmp_path_factory.mktemp("no-projector") / "stack.log"
    async with running_stack(infrastructure, log_path, ("ledger-processor", "gateway")) as stack:
        await stack.wait_until_owned("ledger-processor", "ledger.commands")
        yield stack


async def test_a_position_in_the_log_but_not_yet_applied_is_504_not_caught_up(
    without_projector: LedgerStack,
) -> None:
    owner_id = f"unread-{uuid.uuid4().hex[:8]}"
    async with without_projector.client() as client:
        written = await client.post(
            "/ledger/", json={"owner_id": owner_id, "operation": "CREDIT_ADD", "nonce": "n"}
        )
        assert written.status_code == 201
        started = time.monotonic()
        read = await client.get(
            f"/ledger/{owner_id}", params={"min_position": written.json()["position"]}
        )
        waited = time.monotonic() - started
    assert (read.status_code, read.json()["code"]) == (504, "not_caught_up")
    assert read.headers["retry-after"] == "1"
    assert READ_WAIT_TIMEOUT_SECONDS <= waited < READ_WAIT_TIMEOUT_SECONDS + 3
