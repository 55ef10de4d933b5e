"""The OpenAPI document tells the truth: schemathesis, every check, every route, on the live
gateway. The configuration (tests/schemathesis.toml) lists the schema-valid requests the
contract refuses, each with its reason; the seed is fixed so CI is repeatable (run it with
other seeds and `--max-examples` locally to search further)."""

import asyncio
import sys
from pathlib import Path

import pytest

from tests.support.stacks import HEALTHAI_KEY, LedgerStack

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]
CONFIG = Path(__file__).resolve().parents[1] / "schemathesis.toml"
SEED = "20261123"
RUN_TIMEOUT_SECONDS = 300.0


async def test_every_route_conforms_to_the_openapi_document(ledger: LedgerStack) -> None:
    schemathesis = Path(sys.executable).with_name("schemathesis")
    process = await asyncio.create_subprocess_exec(
        str(schemathesis), "--config-file", str(CONFIG), "run",
        f"{ledger.gateway_url}/openapi.json", "--checks", "all", "--seed", SEED,
        "-H", f"X-Api-Key: {HEALTHAI_KEY}", "--no-color",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(process.communicate(), RUN_TIMEOUT_SECONDS)
    text = output.decode(errors="replace")
    assert process.returncode == 0, text[-6000:]
    async with ledger.client(None) as client:
        document = (await client.get("/openapi.json")).json()
    operations = sum(len(item) for item in document["paths"].values())
    assert f"Tested: {operations}" in text, text[-2000:]  # every route, added ones included
    assert "No issues found" in text, text[-2000:]
