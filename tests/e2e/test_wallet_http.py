"""The wallet part of the contract through HTTP, on the real processes: registration, login,
the wallet, transfers with Idempotency-Key, the history, top-ups, the system account, recorded
transactions, and every user route answering 404 for another user's ids."""

import uuid
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest
import pytest_asyncio

from tests.support.stacks import LedgerStack, publish, read_topic
from tests.support.waiting import eventually
from tests.support.wallet_users import OPERATOR, WalletUser, login, register, transfer

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]
OPENING_BALANCE = 500_000


@pytest_asyncio.fixture(loop_scope="session")
async def client(wallet: LedgerStack) -> AsyncIterator[httpx.AsyncClient]:
    async with wallet.client(None) as http:
        yield http


async def wallet_of(
    client: httpx.AsyncClient, user: WalletUser, position: str | None
) -> dict[str, object]:
    params = {"min_position": position} if position else {}
    answer = await client.get("/wallet", headers=user.auth, params=params)
    assert answer.status_code == 200, answer.text
    body: dict[str, object] = answer.json()
    return body


async def test_registration_opens_a_wallet_from_the_system_account(
    client: httpx.AsyncClient,
) -> None:
    email = f"Reg-{uuid.uuid4().hex[:6]}@Example.com"
    created = await client.post(
        "/auth/register", json={"name": "Rahim Uddin", "email": email, "pin": "01234"}
    )
    assert created.status_code == 201
    body = created.json()
    assert set(body) == {"id", "name", "email", "created_at", "wallet", "position"}
    assert (body["name"], body["email"], body["wallet"]) == ("Rahim Uddin", email, "open")
    again = await client.post(
        "/auth/register", json={"name": "Other", "email": email.lower(), "pin": "11111"}
    )
    assert (again.status_code, again.json()["code"]) == (409, "email_taken")
    token = await login(client, email.upper(), "01234")
    user = WalletUser(body["id"], email, "01234", token, body["position"])
    mine = await wallet_of(client, user, body["position"])
    assert mine == {
        "user_id": body["id"], "balance": OPENING_BALANCE, "currency": "BDT",
        "position": body["position"],
    }  # fmt: skip
    seed = await client.get("/users/me/balance", headers=user.auth)
    assert seed.content == f'{{"balance":5000.00,"user_email":"{email}"}}'.encode()


@pytest.mark.parametrize(
    "pin", ["1234", "123456", "12a45", " 1234", "1_234", "１２３４５", 12345, None]
)
async def test_a_pin_is_exactly_five_ascii_digits(client: httpx.AsyncClient, pin: object) -> None:
    answer = await client.post(
        "/auth/register",
        json={"name": "P", "email": f"pin-{uuid.uuid4().hex[:6]}@example.com", "pin": pin},
    )
    assert (answer.status_code, answer.json()["code"]) == (422, "validation_error")


async def test_login_answers_a_token_and_refuses_wrong_credentials(
    client: httpx.AsyncClient,
) -> None:
    user = await register(client, "login")
    for route in ("/auth/token", "/login"):
        answer = await client.post(route, data={"username": user.email, "password": user.pin})
        assert answer.status_code == 200
        assert set(answer.json()) == {"access_token", "token_type", "expires_in"}
        assert (answer.json()["token_type"], answer.json()["expires_in"]) == ("bearer", 1800)
    for username, password in [(user.email, "99999"), ("nobody@example.com", user.pin)]:
        refused = await client.post(
            "/auth/token", data={"username": username, "password": password}
        )
        assert (refused.status_code, refused.json()["code"]) == (401, "invalid_credentials")


async def test_a_transfer_is_final_when_answered_and_every_retry_gets_the_same_bytes(
    client: httpx.AsyncClient,
) -> None:
    alice, bob = await register(client, "alice"), await register(client, "bob")
    key = uuid.uuid4().hex
    body = {"to_user_id": bob.user_id, "amount": 2_500, "note": "lunch"}
    headers = alice.auth | {"Idempotency-Key": key}
    first = await client.post("/wallet/transfers", json=body, headers=headers)
    assert first.status_code == 201, first.text
    answer = first.json()
    assert set(answer) == {"id", "status", "from_user_id", "to_user_id", "amount", "created_at",
                           "position"}  # fmt: skip
    assert (answer["status"], answer["amount"]) == ("completed", 2_500)
    assert (answer["from_user_id"], answer["to_user_id"]) == (alice.user_id, bob.user_id)
    for _ in range(3):
        retry = await client.post("/wallet/transfers", json=body, headers=headers)
        assert (retry.status_code, retry.content) == (201, first.content)
    reused = await client.post("/wallet/transfers", json=body | {"amount": 2_501}, headers=headers)
    assert (reused.status_code, reused.json()["code"]) == (409, "idempotency_key_reused")
    position = answer["position"]
    assert (await wallet_of(client, alice, position))["balance"] == OPENING_BALANCE - 2_500
    seen = await client.get(
        f"/wallet/transfers/{answer['id']}", headers=bob.auth, params={"min_position": position}
    )
    assert seen.status_code == 200
    assert (seen.json()["status"], seen.json()["note"]) == ("completed", "lunch")


async def test_refusals_of_a_transfer(client: httpx.AsyncClient) -> None:
    alice, bob = await register(client, "refuse-a"), await register(client, "refuse-b")
    poor = await transfer(client, alice, bob, OPENING_BALANCE + 1, key="too-much")
    assert (poor.status_code, poor.json()["code"]) == (409, "insufficient_funds")
    again = await transfer(client, alice, bob, OPENING_BALANCE + 1, key="too-much")
    assert (again.status_code, again.content) == (409, poor.content)
    to_self = await transfer(client, alice, alice, 10)
    assert (to_self.status_code, to_self.json()["code"]) == (422, "self_transfer")
    nobody = await client.post(
        "/wallet/transfers", json={"to_user_id": str(uuid.uuid4()), "amount": 10},
        headers=alice.auth | {"Idempotency-Key": "nobody"},
    )  # fmt: skip
    assert (nobody.status_code, nobody.json()["code"]) == (404, "recipient_not_found")
    no_key = await client.post(
        "/wallet/transfers", json={"to_user_id": bob.user_id, "amount": 10}, headers=alice.auth
    )
    assert (no_key.status_code, no_key.json()["code"]) == (400, "missing_idempotency_key")
    for amount in (0, -5, 10.0, 10.5, "10", True):
        bad = await client.post(
            "/wallet/transfers", json={"to_user_id": bob.user_id, "amount": amount},
            headers=alice.auth | {"Idempotency-Key": uuid.uuid4().hex},
        )  # fmt: skip
        assert (bad.status_code, bad.json()["code"]) == (422, "validation_error"), amount
    for field, value in [("balance", 1), ("user_id", alice.user_id), ("status", "completed")]:
        extra = await client.post(
            "/wallet/transfers", json={"to_user_id": bob.user_id, "amount": 1, field: value},
            headers=alice.auth | {"Idempotency-Key": uuid.uuid4().hex},
        )  # fmt: skip
        assert (extra.status_code, extra.json()["code"]) == (422, "validation_error"), field


async def test_a_transfer_by_email_and_the_history_in_both_directions(
    client: httpx.AsyncClient,
) -> None:
    alice, bob = await register(client, "hist-a"), await register(client, "hist-b")
    sent = await client.post(
        "/wallet/transfers", json={"to_email": bob.email.upper(), "amount": 700},
        headers=alice.auth | {"Idempotency-Key": "by-email"},
    )  # fmt: skip
    assert sent.status_code == 201, sent.text
    back = await transfer(client, bob, alice, 200)
    positions = f"{sent.json()['position']},{back.json()['position']}"
    mine = await client.get(
        "/wallet/transactions", headers=alice.auth, params={"min_position": positions}
    )
    items = mine.json()["transactions"]
    assert [(i["kind"], i["direction"], i["amount"]) for i in items] == [
        ("transfer", "credit", 200), ("transfer", "debit", 700), ("opening", "credit", 500_000)
    ]  # fmt: skip
    assert items[0]["balance"] == OPENING_BALANCE - 700 + 200
    page = await client.get("/wallet/transactions", headers=alice.auth, params={"limit": 1})
    assert page.json()["next_before"] == items[0]["id"]
    older = await client.get(
        "/wallet/transactions", headers=alice.auth, params={"before": items[0]["id"]}
    )
    assert [i["id"] for i in older.json()["transactions"]] == [i["id"] for i in items[1:]]
    day = items[0]["created_at"][:10]
    same_day = await client.get(
        "/wallet/transactions", headers=alice.auth, params={"from": day, "to": day}
    )
    assert len(same_day.json()["transactions"]) == 3
    before_day = await client.get(
        "/wallet/transactions", headers=alice.auth, params={"to": "2020-01-01"}
    )
    assert before_day.json()["transactions"] == []
    seed = await client.get(f"/users/{alice.user_id}/transactions", headers=alice.auth)
    assert [i["id"] for i in seed.json()["transactions"]] == [i["id"] for i in items]


async def test_another_users_ids_answer_404_on_every_user_route(
    client: httpx.AsyncClient,
) -> None:
    alice, bob, carol = [await register(client, name) for name in ("x-a", "x-b", "x-c")]
    sent = await transfer(client, alice, carol, 10)
    record = await client.post(
        "/transactions", headers=alice.auth,
        json={"transaction_amount": 5, "transaction_type": "debit",
              "transaction_date": "2026-11-20T10:00:00Z"},
    )  # fmt: skip
    assert (sent.status_code, record.status_code) == (201, 201)
    transfer_id, record_id = sent.json()["id"], record.json()["id"]
    position = f"{sent.json()['position']},{record.json()['position']}"
    as_bob = [
        client.get(f"/wallet/transfers/{transfer_id}", headers=bob.auth,
                   params={"min_position": position}),
        client.get(f"/users/{alice.user_id}/transactions", headers=bob.auth),
        client.post(f"/users/{alice.user_id}/transfer", headers=bob.auth,
                    json={"to_user_id": bob.user_id, "amount": 1}),
        client.get(f"/transactions/{record_id}", headers=bob.auth,
                   params={"min_position": position}),
        client.patch(f"/transactions/{record_id}", headers=bob.auth,
                     json={"transaction_amount": 6}),
        client.delete(f"/transactions/{record_id}", headers=bob.auth),
    ]  # fmt: skip
    for request in as_bob:
        answer = await request
        assert answer.status_code == 404, answer.text
        assert answer.json()["code"].endswith("_not_found"), answer.text
    still = await client.get(
        f"/transactions/{record_id}", headers=alice.auth, params={"min_position": position}
    )
    assert (still.json()["status"], still.json()["transaction_amount"]) == ("active", 5)


async def test_the_seed_routes(client: httpx.AsyncClient) -> None:
    alice, bob = await register(client, "seed-a"), await register(client, "seed-b")
    sent = await client.post(
        f"/users/{alice.user_id}/transfer", headers=alice.auth,
        json={"to_user_id": bob.user_id, "amount": 1_234},
    )  # fmt: skip
    assert (sent.status_code, sent.json()["status"]) == (201, "completed")
    balance = await client.get(
        "/users/me/balance", headers=bob.auth, params={"min_position": sent.json()["position"]}
    )
    assert balance.status_code == 200
    assert orjson.loads(balance.content) == {"balance": 5012.34, "user_email": bob.email}
    assert b'"balance":5012.34' in balance.content


async def test_operators_top_up_and_the_system_account_balances_the_users(
    client: httpx.AsyncClient,
) -> None:
    user = await register(client, "topup")
    denied = await client.post(
        "/wallet/topups", headers=user.auth, json={"user_id": user.user_id, "amount": 5}
    )
    assert denied.status_code == 401
    topped = await client.post(
        "/wallet/topups", headers=OPERATOR | {"Idempotency-Key": "t1"},
        json={"user_id": user.user_id, "amount": 1_000},
    )  # fmt: skip
    assert topped.status_code == 201, topped.text
    repeat = await client.post(
        "/wallet/topups", headers=OPERATOR | {"Idempotency-Key": "t1"},
        json={"user_id": user.user_id, "amount": 1_000},
    )  # fmt: skip
    assert (repeat.status_code, repeat.content) == (201, topped.content)
    mine = await wallet_of(client, user, topped.json()["position"])
    assert mine["balance"] == OPENING_BALANCE + 1_000
    assert (await client.get("/system/", headers=user.auth)).status_code == 401
    system = (await client.get("/system/", headers=OPERATOR)).json()
    assert set(system) == {"total_user_balance", "system_balance", "wallet_count", "in_flight"}
    assert system["total_user_balance"] + system["system_balance"] == 0
    assert system["wallet_count"] >= 1


async def test_recorded_transactions_are_created_amended_and_voided(
    client: httpx.AsyncClient, wallet: LedgerStack
) -> None:
    user = await register(client, "records")
    created = await client.post(
        "/transactions", headers=user.auth,
        json={"transaction_amount": 5_000, "transaction_type": "credit",
              "transaction_date": "2026-11-20", "full_name": "Karim Ahmed"},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    record = created.json()
    assert (record["full_name"], record["transaction_date"]) == (
        "Karim Ahmed", "2026-11-20T00:00:00Z"
    )  # fmt: skip
    amended = await client.patch(
        f"/transactions/{record['id']}", headers=user.auth, json={"transaction_amount": 4_000}
    )
    assert (amended.status_code, amended.json()["version"]) == (200, 2)
    voided = await client.delete(f"/transactions/{record['id']}", headers=user.auth)
    assert (voided.status_code, voided.json()["status"]) == (200, "voided")
    late = await client.patch(
        f"/transactions/{record['id']}", headers=user.auth, json={"transaction_amount": 1}
    )
    assert (late.status_code, late.json()["code"]) == (409, "transaction_voided")
    read = await client.get(
        f"/transactions/{record['id']}", headers=user.auth,
        params={"min_position": voided.json()["position"]},
    )  # fmt: skip
    assert (read.status_code, read.json()["code"], read.json()["status"]) == (
        410, "transaction_voided", "voided"
    )  # fmt: skip
    assert (read.json()["transaction_amount"], read.json()["full_name"]) == (4_000, "Karim Ahmed")
    listed = await client.get("/transactions", headers=user.auth)
    assert listed.json()["transactions"] == []
    everything = await client.get(
        "/transactions", headers=user.auth, params={"include_voided": "true"}
    )
    assert [item["id"] for item in everything.json()["transactions"]] == [record["id"]]
    rows = await wallet.fetch("SELECT full_name_sealed FROM wallet.recorded")
    assert all("Karim" not in (row[0] or "") for row in rows)  # sealed, never in clear


async def test_a_record_retried_with_its_key_answers_the_same(client: httpx.AsyncClient) -> None:
    """Found by review: the name is sealed afresh on each request, so a retry with the same key
    and body was decided again and refused as `transaction_exists`."""
    user = await register(client, "record-retry")
    body = {"transaction_amount": 700, "transaction_type": "debit",
            "transaction_date": "2026-11-21", "full_name": "Rahim Uddin"}  # fmt: skip
    headers = user.auth | {"Idempotency-Key": "receipt-17"}
    first = await client.post("/transactions", headers=headers, json=body)
    again = await client.post("/transactions", headers=headers, json=body)
    assert (first.status_code, again.status_code) == (201, 201), again.text
    assert again.content == first.content
    other = await client.post("/transactions", headers=headers, json=body | {"full_name": "X"})
    assert (other.status_code, other.json()["code"]) == (409, "transaction_exists")


GROWS_UNDER_NFC = "\U0001d160"
"""MUSICAL SYMBOL EIGHTH NOTE: one character that NFC turns into three of four bytes each."""


async def test_inputs_found_by_review_are_refused_or_answered_never_a_500(
    client: httpx.AsyncClient,
) -> None:
    """Each answered 500 before: text that outgrows its bounds under NFC, a day past the last
    one, a time past year 9999 once in UTC, and a NUL in the login name."""
    alice, bob = await register(client, "edges-a"), await register(client, "edges-b")
    note = await client.post(
        "/wallet/transfers", headers=alice.auth | {"Idempotency-Key": "nfc-note"},
        json={"to_user_id": bob.user_id, "amount": 1, "note": GROWS_UNDER_NFC * 200},
    )  # fmt: skip
    assert note.status_code == 422, note.text
    email = f"{GROWS_UNDER_NFC * 240}@example.com"
    registered = await client.post(
        "/auth/register", json={"name": "N", "email": email, "pin": "12345"}
    )
    assert registered.status_code == 422, registered.text
    late = await client.get("/wallet/transactions", headers=alice.auth, params={"to": "9999-12-31"})
    assert late.status_code == 200, late.text
    for moment in ("9999-12-31T23:59:59-01:00", "0001-01-01T00:30:00+01:00"):
        record = await client.post(
            "/transactions", headers=alice.auth,
            json={"transaction_amount": 1, "transaction_type": "debit", "transaction_date": moment},
        )  # fmt: skip
        assert record.status_code == 422, record.text
    nul = await client.post("/auth/token", data={"username": "a\x00@b.co", "password": "12345"})
    assert (nul.status_code, nul.json()["code"]) == (401, "invalid_credentials")


async def test_headers_that_name_one_thing_may_not_come_twice(client: httpx.AsyncClient) -> None:
    """Found by probing: with two Idempotency-Key headers the server took the first and paid;
    a proxy keyed on the other would not have recognised the retry."""
    alice, bob = await register(client, "twice-a"), await register(client, "twice-b")
    for name, values in (
        ("Idempotency-Key", ["one", "two"]),
        ("Authorization", [alice.auth["Authorization"], "Bearer other"]),
    ):
        headers = (
            [("Authorization", alice.auth["Authorization"])] if name != "Authorization" else []
        )
        headers += [(name, value) for value in values]
        answer = await client.post(
            "/wallet/transfers", json={"to_user_id": bob.user_id, "amount": 1}, headers=headers
        )
        assert (answer.status_code, answer.json()["code"]) == (400, "repeated_header"), name
    twice = b'{"to_user_id": "%s", "amount": 1, "amount": 400000}' % bob.user_id.encode()
    doubled = await client.post(
        "/wallet/transfers", content=twice,
        headers=alice.auth | {"Idempotency-Key": "doubled", "content-type": "application/json"},
    )  # fmt: skip
    assert (doubled.status_code, doubled.json()["detail"][0]["type"]) == (422, "json_invalid")
    nested = b"[" * 30_000 + b"]" * 30_000  # under the body limit, past any parser's depth
    deep = await client.post(
        "/auth/register", content=nested, headers={"content-type": "application/json"}
    )
    assert deep.status_code == 400 and deep.json()["code"] == "bad_request"


async def test_no_pin_hash_nor_clear_personal_data_reaches_the_log(
    client: httpx.AsyncClient, wallet: LedgerStack
) -> None:
    user = await register(client, "private")
    records = await read_topic(wallet.bootstrap, wallet.topic("wallet.events"))
    records += await read_topic(wallet.bootstrap, wallet.topic("wallet.commands"))
    values = b"".join(record.value or b"" for record in records)
    assert user.email.encode() not in values
    assert b"User private" not in values and b"$argon2" not in values
    opened = [r for r in records if user.user_id.encode() in (r.value or b"")]
    assert opened, "the wallet's events are in the log"


async def test_the_wallet_commands_route_answers_the_caller_only(
    client: httpx.AsyncClient, wallet: LedgerStack
) -> None:
    alice, bob = await register(client, "cmd-a"), await register(client, "cmd-b")
    command_id = uuid.uuid4().hex
    command = {
        "specversion": "1.0", "id": command_id, "source": "tests/backend",
        "type": "wallet.record_transaction.v1", "subject": alice.user_id,
        "data": {"transaction_id": str(uuid.uuid4()), "user_id": alice.user_id,
                 "amount": 10, "transaction_type": "credit",
                 "transaction_date": "2026-11-20T10:00:00Z"},
    }  # fmt: skip
    await publish(
        wallet.bootstrap, wallet.topic("wallet.commands"),
        [(alice.user_id.encode(), orjson.dumps(command))],
    )  # fmt: skip
    answer = await eventually(
        lambda: client.get(f"/wallet/commands/{command_id}", headers=alice.auth),
        lambda response: response.status_code != 202,
        "the command's answer",
    )
    assert (answer.status_code, answer.json()["transaction_amount"]) == (201, 10)
    alias = await client.get(f"/commands/wallet/{command_id}", headers=alice.auth)
    assert alias.content == answer.content
    hidden = await client.get(f"/wallet/commands/{command_id}", headers=bob.auth)
    assert (hidden.status_code, hidden.json()["status"]) == (202, "pending")
    # The operator reads any answer: a top-up's 504 points there (found by review).
    operator = await client.get(f"/wallet/commands/{command_id}", headers=OPERATOR)
    assert operator.content == answer.content
