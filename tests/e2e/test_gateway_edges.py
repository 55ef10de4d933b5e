"""The gateway under hostile input: every answer is JSON with a code, never a bare 500, and a
bad request never breaks the keep-alive connection it came on."""

import asyncio
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest

from services.gateway.limits import REQUEST_BODY_IDLE_TIMEOUT_SECONDS
from tests.support.raw_http import exchange, request
from tests.support.stacks import HEALTHAI_KEY, LedgerStack

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]
KEY = {"X-Api-Key": HEALTHAI_KEY, "Content-Type": "application/json"}
HUGE_BODY_BYTES = 5 * 1024 * 1024
PROMPT_ANSWER_SECONDS = 2.0


def address(ledger: LedgerStack) -> tuple[str, int]:
    parts = urllib.parse.urlsplit(ledger.gateway_url)
    assert parts.hostname is not None
    assert parts.port is not None
    return parts.hostname, parts.port


def entry(owner_id: str, operation: str = "CREDIT_ADD", nonce: str | None = None) -> bytes:
    return orjson.dumps(
        {"owner_id": owner_id, "operation": operation, "nonce": nonce or uuid.uuid4().hex}
    )


def is_error_json(response: httpx.Response) -> bool:
    body = response.json()
    return response.headers["content-type"] == "application/json" and "code" in body


@pytest.mark.parametrize("field", ["owner_id", "operation", "nonce"])
async def test_a_lone_surrogate_in_any_field_is_a_422_and_the_connection_lives_on(
    ledger: LedgerStack, field: str
) -> None:
    fields = {"owner_id": "alice", "operation": "CREDIT_ADD", "nonce": uuid.uuid4().hex}
    text = orjson.dumps(fields).decode().replace(f'"{fields[field]}"', '"\\ud800"', 1)
    good = request("POST", "/ledger/", entry(f"after-{uuid.uuid4().hex[:6]}"), KEY)
    bad = request("POST", "/ledger/", text.encode(), KEY)
    first, second = await exchange(*address(ledger), [bad, good])
    assert first.status == 422
    body = first.json()
    assert isinstance(body, dict)
    assert body["code"] == "validation_error"
    assert second.status == 201


async def test_a_nul_in_a_path_id_is_a_422_and_the_connection_lives_on(ledger: LedgerStack) -> None:
    answers = await exchange(
        *address(ledger),
        [request("GET", "/ledger/a%00b", headers=KEY), request("GET", "/ledger/fine", headers=KEY)],
    )
    assert [answer.status for answer in answers] == [422, 200]
    assert answers[0].headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    "owner_id", ["a\u202eb", "tag\U000e0041", "zero\u200bwidth", "x" * 10_000, ".", "a/b"]
)
async def test_ids_that_cannot_name_an_account_are_refused_at_the_door(
    ledger: LedgerStack, owner_id: str
) -> None:
    async with ledger.client() as client:
        written = await client.post("/ledger/", content=entry(owner_id), headers=KEY)
        assert written.status_code == 422
        assert is_error_json(written)


async def test_an_owner_with_a_slash_cannot_be_written_so_nothing_unreadable_exists(
    ledger: LedgerStack,
) -> None:
    async with ledger.client() as client:
        read = await client.get("/ledger/a%2Fb")
    assert read.status_code == 404
    assert read.json()["code"] == "not_found"


async def test_a_huge_body_is_refused_unread_and_small(ledger: LedgerStack) -> None:
    body = b'{"owner_id": "' + b"x" * HUGE_BODY_BYTES + b'"}'
    async with ledger.client() as client:
        started = time.monotonic()
        response = await client.post("/ledger/", content=body, headers=KEY)
        assert time.monotonic() - started < PROMPT_ANSWER_SECONDS
        assert response.status_code == 413
        assert response.json()["code"] == "body_too_large"
        assert len(response.content) < 200
        after = await client.post(
            "/ledger/", content=entry(f"big-{uuid.uuid4().hex[:6]}"), headers=KEY
        )
        assert after.status_code == 201


async def test_a_huge_chunked_body_without_a_length_is_refused_as_413(ledger: LedgerStack) -> None:
    """Reproduces a 400: FastAPI turned the limit's exception into "error parsing the body"."""

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"owner_id": "'
        for _ in range(160):
            yield b"x" * 1024
        yield b'"}'

    async with ledger.client() as client:
        response = await client.post("/ledger/", content=chunks(), headers=KEY)
        assert (response.status_code, response.json()["code"]) == (413, "body_too_large")
        after = await client.post(
            "/ledger/", content=entry(f"chunk-{uuid.uuid4().hex[:6]}"), headers=KEY
        )
        assert after.status_code == 201


async def test_query_parameters_answer_422_never_500(ledger: LedgerStack) -> None:
    async with ledger.client() as client:
        for path, params in [
            ("/ledger/alice/entries", {"limit": "0"}),
            ("/ledger/alice/entries", {"limit": "abc"}),
            ("/ledger/alice/entries", {"limit": "100000"}),
            ("/ledger/alice/entries", {"before": "not-a-uuid"}),
            ("/ledger/alice/entries", {"before": str(uuid.uuid4())}),
            ("/ledger/alice", {"min_position": "soon"}),
            ("/ledger/alice", {"min_position": "1:" + "9" * 40}),
            ("/ledger/alice", {"min_position": ",".join(f"0:{i}" for i in range(40))}),
        ]:
            response = await client.get(path, params=params)
            assert response.status_code == 422, (path, params, response.text)
            assert is_error_json(response)


async def test_min_position_on_a_partition_that_does_not_exist_is_a_prompt_422(
    ledger: LedgerStack,
) -> None:
    async with ledger.client() as client:
        started = time.monotonic()
        response = await client.get("/ledger/alice", params={"min_position": "99:0"})
        assert time.monotonic() - started < PROMPT_ANSWER_SECONDS
    assert (response.status_code, response.json()["code"]) == (422, "invalid_position")


async def test_an_owner_named_commands_is_readable_like_any_other(ledger: LedgerStack) -> None:
    async with ledger.client() as client:
        written = await client.post("/ledger/", content=entry("commands"), headers=KEY)
        assert written.status_code == 201
        position = written.json()["position"]
        balance = await client.get("/ledger/commands", params={"min_position": position})
        assert (balance.status_code, balance.json()["owner_id"]) == (200, "commands")
        listed = await client.get("/ledger/commands/entries", params={"min_position": position})
        assert listed.status_code == 200
        assert [item["id"] for item in listed.json()["entries"]][:1] == [written.json()["id"]]
        command = await client.get(f"/commands/ledger/{uuid.uuid4().hex}")
        assert (command.status_code, command.json()["status"]) == (202, "pending")


async def test_a_long_uncommon_unicode_owner_spending_on_nothing_is_answered(
    ledger: LedgerStack,
) -> None:
    owner_id = "\U0001d54f" * 128  # 128 characters that `repr` would escape to 10 each
    async with ledger.client() as client:
        refused = await client.post(
            "/ledger/", content=entry(owner_id, "CONTENT_CREATION"), headers=KEY
        )
        assert (refused.status_code, refused.json()["code"]) == (409, "insufficient_balance")
        ok = await client.post("/ledger/", content=entry(owner_id), headers=KEY)
        assert (ok.status_code, ok.json()["owner_id"]) == (201, owner_id)


async def test_canonically_equivalent_owner_ids_name_one_account(ledger: LedgerStack) -> None:
    stem = f"caf-{uuid.uuid4().hex[:6]}"
    async with ledger.client() as client:
        first = await client.post("/ledger/", content=entry(f"{stem}e\u0301"), headers=KEY)
        second = await client.post("/ledger/", content=entry(f"{stem}\u00e9"), headers=KEY)
    assert (first.status_code, second.status_code) == (201, 201)
    assert second.json()["balance"] == 20
    assert first.json()["owner_id"] == second.json()["owner_id"] == f"{stem}\u00e9"


async def test_unknown_routes_and_methods_answer_json(ledger: LedgerStack) -> None:
    async with ledger.client() as client:
        missing = await client.get("/no/such/route")
        wrong = await client.delete("/ledger/alice")
        malformed = await client.post("/ledger/", content=b"{not json", headers=KEY)
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
    assert (wrong.status_code, wrong.json()["code"]) == (405, "method_not_allowed")
    assert (malformed.status_code, malformed.json()["code"]) == (422, "validation_error")


async def test_the_gateway_decides_nothing_an_unknown_operation_is_the_processors_answer(
    ledger: LedgerStack,
) -> None:
    async with ledger.client() as client:
        response = await client.post("/ledger/", content=entry("u", "NOT_IN_CATALOG"), headers=KEY)
    assert (response.status_code, response.json()["code"]) == (422, "unknown_operation")
    stored = await ledger.fetch(
        "SELECT reply_status FROM ledger.inbox WHERE reply_body LIKE '%unknown_operation%'"
    )
    assert [row["reply_status"] for row in stored] == [422]


async def test_an_integer_wider_than_64_bits_is_a_422_and_the_connection_lives_on(
    ledger: LedgerStack,
) -> None:
    """Reproduces a 500 and a reset connection: the 422 echoed the input, which orjson cannot
    write (found by schemathesis, seed 7)."""
    wide = b'{"owner_id": ' + str(10**40).encode() + b', "operation": "CREDIT_ADD", "nonce": "n"}'
    good = request("POST", "/ledger/", entry(f"wide-{uuid.uuid4().hex[:6]}"), KEY)
    first, second = await exchange(*address(ledger), [request("POST", "/ledger/", wide, KEY), good])
    assert first.status == 422
    body = first.json()
    assert isinstance(body, dict) and body["code"] == "validation_error"
    assert second.status == 201


@pytest.mark.parametrize(
    "path", ["/ledger/%FF", "/ledger/a%ED%A0%80b", "/ledger/alice/entries?before=%C3"]
)
async def test_escapes_that_are_not_utf8_are_a_400_not_another_owner(
    ledger: LedgerStack, path: str
) -> None:
    """Reproduces `/ledger/%FF` read as the owner U+FFFD (the server replaced the bad byte)."""
    first, second = await exchange(
        *address(ledger), [request("GET", path, headers=KEY), request("GET", "/health")]
    )
    assert first.status == 400
    body = first.json()
    assert isinstance(body, dict) and body["code"] == "invalid_url_encoding"
    assert second.status == 200


async def test_head_is_answered_as_get_without_a_body(ledger: LedgerStack) -> None:
    owner_id = f"head-{uuid.uuid4().hex[:6]}"
    async with ledger.client() as client:
        written = await client.post("/ledger/", content=entry(owner_id), headers=KEY)
        position = written.json()["position"]
        read = await client.get(f"/ledger/{owner_id}?min_position={position}", headers=KEY)
    head, missing, health = await exchange(
        *address(ledger),
        [
            request("HEAD", f"/ledger/{owner_id}", headers=KEY),
            request("HEAD", "/no/such/route"),
            request("HEAD", "/health"),
        ],
    )
    assert (head.status, head.body) == (200, b"")
    assert head.headers["content-type"] == "application/json"
    assert head.headers["content-length"] == read.headers["content-length"]
    assert (missing.status, health.status) == (404, 200)
    async with ledger.client() as client:
        metrics = (await client.get("/metrics")).text
    # Counted under its route, not as "unmatched" (the route was matched on a copy of the scope).
    assert 'method="HEAD",route="/ledger/{owner_id}",status="200"' in metrics


async def test_a_trailing_slash_is_a_json_404_not_an_empty_redirect(ledger: LedgerStack) -> None:
    async with ledger.client() as client:
        response = await client.get("/ledger/alice/", headers=KEY)
        without_slash = await client.post(
            "/ledger", content=entry(f"slash-{uuid.uuid4().hex[:6]}"), headers=KEY
        )
    assert (response.status_code, response.json()["code"]) == (404, "not_found")
    assert without_slash.status_code == 201


async def test_a_body_that_stops_arriving_is_a_408_and_the_connection_closes(
    ledger: LedgerStack,
) -> None:
    """Reproduces a connection held forever by a client that declared a length and stopped."""
    reader, writer = await asyncio.open_connection(*address(ledger))
    try:
        head = request("POST", "/ledger/", b"", KEY).replace(
            b"Content-Length: 0", b"Content-Length: 100"
        )
        writer.write(head + b'{"owner_id": ')
        await writer.drain()
        started = time.monotonic()
        answer = await asyncio.wait_for(reader.read(), REQUEST_BODY_IDLE_TIMEOUT_SECONDS + 5)
        waited = time.monotonic() - started
    finally:
        writer.close()
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.split()[1] == b"408", answer
    assert b'"code":"request_timeout"' in rest
    assert REQUEST_BODY_IDLE_TIMEOUT_SECONDS - 1 <= waited <= REQUEST_BODY_IDLE_TIMEOUT_SECONDS + 3
