"""The transfer saga where it goes wrong (ADR 0021), on the real processes:

- a credit leg that cannot apply (the recipient has no wallet) returns the debit;
- a leg the recipient cannot read is refunded by the failure hook;
- a leg that never answers is refunded at its deadline (the recipient cancels it in order);
- a cancel that arrives after the credit changes nothing;
- a registration the gateway could not finish is repaired: the wallet opens anyway;
and after each, the audit matches and the money adds up.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest
import pytest_asyncio

from ledgerbus.registry import GATEWAY_PROCESS
from services.wallet.adapters.pins import PinHasher
from shared.contracts.wallet import WALLET_SOURCE
from shared.engine.ids import derived_id
from shared.infra.provision import Infrastructure
from shared.settings import DEV_PIN_PEPPER
from tests.support.commands import ledgerbus
from tests.support.stacks import LedgerStack, publish, running_stack
from tests.support.waiting import eventually
from tests.support.wallet_users import OPERATOR, WalletUser, login, register, transfer

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]
DEADLINE_SECONDS = 3
REPAIR_SECONDS = 1
OPENING_BALANCE = 500_000
TEST_SOURCE = "tests/backend"
CREDIT_LEG_INDEX = 1
"""TransferMoney emits its debit (0), then the credit leg (1), then schedules its deadline."""


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def saga(
    infrastructure: Infrastructure, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LedgerStack]:
    log_path = tmp_path_factory.mktemp("wallet-saga") / "stack.log"
    extra = {
        "WALLET_TRANSFER_DEADLINE_SECONDS": str(DEADLINE_SECONDS),
        "WALLET_REGISTRATION_REPAIR_SECONDS": str(REPAIR_SECONDS),
    }
    processes = ("wallet-processor", "wallet-projector", GATEWAY_PROCESS)
    async with running_stack(infrastructure, log_path, processes, extra) as stack:
        await stack.wait_until_ready()
        yield stack


@pytest_asyncio.fixture(loop_scope="session")
async def client(saga: LedgerStack) -> AsyncIterator[httpx.AsyncClient]:
    async with saga.client(None) as http:
        yield http


def transfer_command(command_id: str, sender: str, recipient: str, amount: int) -> bytes:
    return orjson.dumps({
        "specversion": "1.0", "id": command_id, "source": TEST_SOURCE,
        "type": "wallet.transfer_money.v1", "subject": sender,
        "data": {"transfer_id": str(uuid.uuid4()), "from_user_id": sender,
                 "to_user_id": recipient, "amount": amount, "request_hash": "0" * 64,
                 "requested_at": "2026-11-23T10:00:00Z"},
    })  # fmt: skip


async def answer_of(client: httpx.AsyncClient, user: WalletUser, command_id: str) -> dict:  # type: ignore[type-arg]
    answer = await eventually(
        lambda: client.get(f"/wallet/commands/{command_id}", headers=user.auth),
        lambda response: response.status_code != 202,
        "the transfer's final answer",
        30,
    )
    body: dict = answer.json()  # type: ignore[type-arg]
    return body | {"http_status": answer.status_code}


async def vanish_leg(saga: LedgerStack, command_id: str) -> None:
    """Mark the transfer's credit leg as handled on the recipient's side before it exists: the
    recipient's partition will skip it, as if the leg never arrived."""
    leg_id = derived_id(TEST_SOURCE, command_id, CREDIT_LEG_INDEX)
    await saga.fetch(
        "INSERT INTO wallet.inbox (consumer, source, message_id, message_type, handled_at)"
        " VALUES ('wallet-processor', $1, $2, 'wallet.credit_transfer.v1', now())",
        WALLET_SOURCE, leg_id,
    )  # fmt: skip


async def audit_matches(saga: LedgerStack, client: httpx.AsyncClient) -> None:
    totals = (await client.get("/system/", headers=OPERATOR)).json()
    assert totals["total_user_balance"] + totals["system_balance"] == 0, totals
    result = await ledgerbus(saga.environment, "audit", "--service", "wallet")
    assert result.exit_code == 0, result.output[-3000:]


async def balance_of(client: httpx.AsyncClient, user: WalletUser, position: str) -> int:
    answer = await client.get("/wallet", headers=user.auth, params={"min_position": position})
    assert answer.status_code == 200, answer.text
    balance: int = answer.json()["balance"]
    return balance


async def test_a_credit_to_a_user_without_a_wallet_is_returned(
    saga: LedgerStack, client: httpx.AsyncClient
) -> None:
    sender = await register(client, "nowallet")
    walletless = uuid.uuid4()
    far_future = datetime.now(UTC) + timedelta(days=1)  # the repair loop leaves it alone
    await saga.fetch(
        "INSERT INTO wallet.users (user_id, email, email_key, name_sealed, email_sealed,"
        " pin_hash, created_at, open_command_id) VALUES ($1, $2, $2, 'v1.x', 'v1.x', 'x', $3,"
        " $4)",
        walletless, f"{walletless}@example.com", far_future, str(uuid.uuid4()),
    )  # fmt: skip
    answer = await client.post(
        "/wallet/transfers", json={"to_user_id": str(walletless), "amount": 900},
        headers=sender.auth | {"Idempotency-Key": "to-nobody"},
    )  # fmt: skip
    assert (answer.status_code, answer.json()["code"]) == (409, "transfer_refunded")
    assert answer.json()["status"] == "refunded"
    assert await balance_of(client, sender, answer.json()["position"]) == OPENING_BALANCE
    await audit_matches(saga, client)


async def test_an_unreadable_leg_is_refunded_by_the_failure_hook(
    saga: LedgerStack, client: httpx.AsyncClient
) -> None:
    sender, recipient = await register(client, "unread-a"), await register(client, "unread-b")
    command_id = uuid.uuid4().hex
    await vanish_leg(saga, command_id)
    value = transfer_command(command_id, sender.user_id, recipient.user_id, 700)
    unreadable = orjson.loads(value)
    leg = {key: unreadable["data"][key] for key in
           ("transfer_id", "from_user_id", "to_user_id", "amount")}  # fmt: skip
    unreadable |= {"id": uuid.uuid4().hex, "type": "wallet.credit_transfer.v0", "data": leg}
    topic = saga.topic("wallet.commands")
    await publish(saga.bootstrap, topic, [(sender.user_id.encode(), value)])
    await publish(saga.bootstrap, topic, [(recipient.user_id.encode(), orjson.dumps(unreadable))])
    body = await answer_of(client, sender, command_id)
    assert (body["http_status"], body["code"], body["status"]) == (
        409, "transfer_refunded", "refunded"
    )  # fmt: skip
    assert await balance_of(client, sender, body["position"]) == OPENING_BALANCE
    deadlines = await saga.fetch(
        "SELECT count(*) AS n FROM wallet.deadlines WHERE name = $1",
        f"transfer:{leg['transfer_id']}",
    )
    assert deadlines[0]["n"] == 0  # the settlement cancelled the deadline
    await audit_matches(saga, client)
    # The same leg once readable (a dead letter redriven after an upgrade keeps its id): the
    # recipient's partition cancelled it in order, so it credits nothing.
    readable = unreadable | {"type": "wallet.credit_transfer.v1"}
    await publish(saga.bootstrap, topic, [(recipient.user_id.encode(), orjson.dumps(readable))])
    await eventually(
        lambda: saga.fetch(
            "SELECT message_type FROM wallet.inbox WHERE source = $1 AND message_id = $2",
            readable["source"], readable["id"],
        ),
        lambda rows: [row["message_type"] for row in rows] == ["wallet.credit_transfer.v1"],
        "the redriven leg decided", 30,
    )  # fmt: skip
    decided = await saga.fetch(  # the decision state, committed with the inbox row
        "SELECT balance FROM wallet.wallets WHERE user_id = ANY($1::uuid[]) ORDER BY balance",
        [sender.user_id, recipient.user_id],
    )
    assert [row["balance"] for row in decided] == [OPENING_BALANCE, OPENING_BALANCE]
    await audit_matches(saga, client)


async def test_a_leg_that_never_answers_is_refunded_at_its_deadline(
    saga: LedgerStack, client: httpx.AsyncClient
) -> None:
    sender, recipient = await register(client, "lost-a"), await register(client, "lost-b")
    command_id = uuid.uuid4().hex
    await vanish_leg(saga, command_id)
    value = transfer_command(command_id, sender.user_id, recipient.user_id, 1_100)
    await publish(saga.bootstrap, saga.topic("wallet.commands"), [(sender.user_id.encode(), value)])
    body = await answer_of(client, sender, command_id)
    assert (body["http_status"], body["code"]) == (409, "transfer_refunded")
    assert await balance_of(client, sender, body["position"]) == OPENING_BALANCE
    assert await balance_of(client, recipient, body["position"]) == OPENING_BALANCE
    await audit_matches(saga, client)


async def test_a_cancel_after_the_credit_changes_nothing(
    saga: LedgerStack, client: httpx.AsyncClient
) -> None:
    sender, recipient = await register(client, "late-a"), await register(client, "late-b")
    sent = await transfer(client, sender, recipient, 300)
    assert sent.status_code == 201
    done = sent.json()
    late_cancel = orjson.dumps({
        "specversion": "1.0", "id": uuid.uuid4().hex, "source": TEST_SOURCE,
        "type": "wallet.cancel_credit.v1", "subject": recipient.user_id,
        "data": {"transfer_id": done["id"], "from_user_id": sender.user_id,
                 "to_user_id": recipient.user_id, "amount": 300},
    })  # fmt: skip
    await publish(
        saga.bootstrap, saga.topic("wallet.commands"), [(recipient.user_id.encode(), late_cancel)]
    )
    await asyncio.sleep(DEADLINE_SECONDS)  # let a wrong refund happen, if it could
    assert await balance_of(client, sender, done["position"]) == OPENING_BALANCE - 300
    status = await client.get(f"/wallet/transfers/{done['id']}", headers=sender.auth)
    assert status.json()["status"] == "completed"
    await audit_matches(saga, client)


async def test_a_registration_left_unfinished_is_repaired(
    saga: LedgerStack, client: httpx.AsyncClient
) -> None:
    """Reproduces the crash between the user's insert and the publish of OpenWallet."""
    user_id, email = uuid.uuid4(), f"repair-{uuid.uuid4().hex[:6]}@example.com"
    hasher = PinHasher(DEV_PIN_PEPPER)
    try:
        pin_hash = await hasher.hash("24680")
    finally:
        hasher.close()
    await saga.fetch(
        "INSERT INTO wallet.users (user_id, email, email_key, name_sealed, email_sealed,"
        " pin_hash, created_at, open_command_id) VALUES ($1, $2, $2, 'v1.bmFtZQ',"
        " 'v1.ZW1haWw', $3, now(), $4)",
        user_id, email, pin_hash, str(uuid.uuid4()),
    )  # fmt: skip
    token = await login(client, email, "24680")
    user = WalletUser(str(user_id), email, "24680", token, None)
    opened = await eventually(
        lambda: client.get("/wallet", headers=user.auth),
        lambda answer: answer.status_code == 200,
        "the repaired wallet",
        REPAIR_SECONDS * 20,
    )
    assert opened.json()["balance"] == OPENING_BALANCE
    await audit_matches(saga, client)
