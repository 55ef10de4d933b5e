"""Concurrent random transfers between registered users, with retries under the same
Idempotency-Key, and the invariants the whole run must keep (issue 6):

- every retry of one request (same key, same body) got byte-identical final answers;
- every 201 names one completed transfer, every 409 `insufficient_funds` one rejected transfer;
- no transfer stays pending; balances follow from the completed transfers; conservation holds;
- `ledgerbus audit --service wallet` matches.
"""

import asyncio
import random
import uuid
from collections import defaultdict
from dataclasses import dataclass, field

import httpx
import orjson

from tests.support.commands import ledgerbus
from tests.support.stacks import LedgerStack
from tests.support.waiting import eventually
from tests.support.wallet_users import OPERATOR, WalletUser

OPENING_BALANCE = 500_000
FINAL_STATUSES = (201, 409)
SETTLE_TIMEOUT_SECONDS = 180.0
REQUEST_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class TransferPlan:
    sender: WalletUser
    recipient: WalletUser
    amount: int
    key: str


@dataclass(slots=True)
class Outcome:
    plan: TransferPlan
    status: int | None
    body: bytes
    error: str | None = None


@dataclass(slots=True)
class TransferRun:
    plans: list[TransferPlan]
    outcomes: list[Outcome] = field(default_factory=list)


def random_plans(
    users: list[WalletUser], count: int, retry_share: float, seed: int, amount_max: int
) -> list[TransferPlan]:
    """`count` requests: distinct transfers plus retries (the same key and body again)."""
    rng = random.Random(seed)
    distinct = int(count / (1 + retry_share))
    plans = []
    for _ in range(distinct):
        sender, recipient = rng.sample(users, 2)
        plans.append(TransferPlan(sender, recipient, rng.randint(1, amount_max), uuid.uuid4().hex))
    plans += [rng.choice(plans) for _ in range(count - distinct)]
    rng.shuffle(plans)
    return plans


async def send_all(
    client: httpx.AsyncClient,
    plans: list[TransferPlan],
    concurrency: int,
    run: TransferRun | None = None,
) -> TransferRun:
    """Send every planned request; `run` (when given) fills as answers come, for a test that
    acts in the middle of the run."""
    run = run if run is not None else TransferRun(plans)
    gate = asyncio.Semaphore(concurrency)

    async def one(plan: TransferPlan) -> None:
        async with gate:
            try:
                answer = await client.post(
                    "/wallet/transfers",
                    json={"to_user_id": plan.recipient.user_id, "amount": plan.amount},
                    headers=plan.sender.auth | {"Idempotency-Key": plan.key},
                    timeout=REQUEST_TIMEOUT_SECONDS,
                )
                run.outcomes.append(Outcome(plan, answer.status_code, answer.content))
            except httpx.HTTPError as error:
                run.outcomes.append(Outcome(plan, None, b"", repr(error)))

    await asyncio.gather(*(one(plan) for plan in plans))
    return run


async def final_answers(client: httpx.AsyncClient, run: TransferRun) -> dict[str, bytes]:
    """Each distinct request sent once more after the run: its final answer, by key.

    A request that was answered 202, 503 or 504, or never answered, is final by now; the
    retry returns its stored answer without a new decision."""
    finals: dict[str, bytes] = {}

    async def settled(plan: TransferPlan) -> bytes:
        async def ask() -> httpx.Response:
            return await client.post(
                "/wallet/transfers",
                json={"to_user_id": plan.recipient.user_id, "amount": plan.amount},
                headers=plan.sender.auth | {"Idempotency-Key": plan.key},
                timeout=REQUEST_TIMEOUT_SECONDS,
            )

        answer = await eventually(
            ask, lambda r: r.status_code in FINAL_STATUSES, f"transfer {plan.key} final",
            SETTLE_TIMEOUT_SECONDS,
        )  # fmt: skip
        return answer.content

    distinct = {plan.key: plan for plan in run.plans}
    gate = asyncio.Semaphore(50)

    async def guarded(plan: TransferPlan) -> None:
        async with gate:
            finals[plan.key] = await settled(plan)

    await asyncio.gather(*(guarded(plan) for plan in distinct.values()))
    return finals


async def check_invariants(
    stack: LedgerStack, client: httpx.AsyncClient, users: list[WalletUser], run: TransferRun
) -> dict[str, int]:
    """Everything issue 6 asks of a run; returns the counts of final outcomes."""
    finals = await final_answers(client, run)
    for outcome in run.outcomes:
        if outcome.status in FINAL_STATUSES:
            assert outcome.body == finals[outcome.plan.key], (outcome, finals[outcome.plan.key])
    documents = {key: orjson.loads(body) for key, body in finals.items()}
    completed = {key: doc for key, doc in documents.items() if doc["status"] == "completed"}
    codes: dict[str, int] = defaultdict(int)
    for document in documents.values():
        codes[document.get("code", document["status"])] += 1
    assert set(codes) <= {"completed", "insufficient_funds"}, codes
    await _check_read_models(stack, users, completed, codes)
    audit = await ledgerbus(stack.environment, "audit", "--service", "wallet")
    assert audit.exit_code == 0, audit.output[-3000:]
    return dict(codes)


async def _check_read_models(
    stack: LedgerStack, users: list[WalletUser], completed: dict[str, dict[str, object]],
    codes: dict[str, int],
) -> None:  # fmt: skip
    ids = {uuid.UUID(str(body["id"])) for body in completed.values()}
    rows = await stack.fetch("SELECT transfer_id, status FROM wallet.transfer_debits")
    by_status: dict[str, set[uuid.UUID]] = defaultdict(set)
    for row in rows:
        by_status[row["status"]].add(row["transfer_id"])
    assert by_status["completed"] == ids, "every 201 is one completed transfer, and only those"
    assert len(by_status["rejected"]) == codes.get("insufficient_funds", 0)
    assert not by_status["pending"] and not by_status["refunded"], by_status.keys()
    expected = {user.user_id: OPENING_BALANCE for user in users}
    for body in completed.values():
        expected[str(body["from_user_id"])] -= int(str(body["amount"]))
        expected[str(body["to_user_id"])] += int(str(body["amount"]))
    balances = await stack.fetch("SELECT user_id, balance FROM wallet.balances")
    held = {str(row["user_id"]): row["balance"] for row in balances}
    assert {user: held[user] for user in expected} == expected
    assert min(held.values()) >= 0


async def system_totals(client: httpx.AsyncClient) -> dict[str, int]:
    answer = await client.get("/system/", headers=OPERATOR)
    assert answer.status_code == 200, answer.text
    totals: dict[str, int] = answer.json()
    return totals
