"""The OpenAPI document tells the truth: schemathesis, every check, every route, on the live
gateway. The configuration (tests/schemathesis.toml) lists the schema-valid requests the
contract refuses, each with its reason; the seed is fixed so CI is repeatable (run it with
other seeds and `--max-examples` locally to search further)."""

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from ledgerbus.stack import all_processes
from shared.infra.provision import Infrastructure
from tests.support.stacks import HEALTHAI_KEY, LedgerStack, running_stack
from tests.support.wallet_users import register

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]
CONFIG = Path(__file__).resolve().parents[1] / "schemathesis.toml"
SEED = "20261123"
RUN_TIMEOUT_SECONDS = 300.0


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def everything(
    infrastructure: Infrastructure, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LedgerStack]:
    """Every service's processes: every route of the document is live."""
    log_path = tmp_path_factory.mktemp("conformance") / "stack.log"
    async with running_stack(infrastructure, log_path, all_processes()) as stack:
        await stack.wait_until_ready()
        yield stack


OPERATOR_ROUTES = "^/(system/|wallet/topups)$"
"""Run in a pass of their own, with the operator's token."""


async def schemathesis_run(url: str, *arguments: str) -> str:
    schemathesis = Path(sys.executable).with_name("schemathesis")
    process = await asyncio.create_subprocess_exec(
        str(schemathesis), "--config-file", str(CONFIG), "run", f"{url}/openapi.json",
        "--checks", "all", "--exclude-checks", "use_after_free", "--seed", SEED, "--no-color",
        *arguments,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(process.communicate(), RUN_TIMEOUT_SECONDS)
    text = output.decode(errors="replace")
    assert process.returncode == 0, text[-6000:]
    assert "No issues found" in text, text[-2000:]
    return text


def operations_tested(text: str) -> int:
    line = next(line for line in text.splitlines() if line.strip().startswith("Tested:"))
    return int(line.split(":")[1])


async def test_every_route_conforms_to_the_openapi_document(everything: LedgerStack) -> None:
    """Apps' routes run with an API key, users' routes with a registered user's token, the
    operator's routes in a second pass with the operator's token."""
    async with everything.client(None) as client:
        user = await register(client, "schemathesis")
        document = (await client.get("/openapi.json")).json()
    url = everything.gateway_url
    users = await schemathesis_run(
        url, "--exclude-path-regex", OPERATOR_ROUTES, "-H", f"X-Api-Key: {HEALTHAI_KEY}",
        "-H", f"Authorization: Bearer {user.token}",
    )  # fmt: skip
    operators = await schemathesis_run(
        url, "--include-path-regex", OPERATOR_ROUTES, "-H", "Authorization: Bearer dev-admin-token"
    )
    operations = sum(len(item) for item in document["paths"].values())
    assert (
        operations_tested(users) + operations_tested(operators) == operations
    )  # every route, added ones included
