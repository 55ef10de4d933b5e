"""`ledgerbus audit` and `ledgerbus projections rebuild ledger` on a live system."""

import json
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests.support.commands import ledgerbus
from tests.support.stacks import LedgerStack
from tests.support.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]


async def record(client: httpx.AsyncClient, owner_id: str, operation: str) -> dict[str, str]:
    response = await client.post(
        "/ledger/", json={"owner_id": owner_id, "operation": operation, "nonce": uuid.uuid4().hex}
    )
    assert response.status_code in (201, 409), response.text
    return dict(response.json())


async def caught_up(client: httpx.AsyncClient) -> None:
    async def lag() -> int:
        checks = (await client.get("/ready")).json()["checks"]
        return int(checks["consumers"]["details"]["ledger-projector"]["lag"])

    await eventually(lag, lambda total: total == 0, "the projector to catch up")


def environment_of(ledger: LedgerStack) -> dict[str, str]:
    return {**os.environ, **ledger.environment}


async def test_audit_matches_then_names_a_tampered_owner_then_rebuild_repairs(
    ledger: LedgerStack, tmp_path: Path
) -> None:
    owners = [f"audit-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    async with ledger.client() as client:
        for owner_id in owners:
            await record(client, owner_id, "CREDIT_ADD")
            await record(client, owner_id, "CREDIT_SPEND")
        cut = datetime.now(UTC)
        await record(client, owners[0], "CONTENT_CREATION")
        await record(client, owners[1], "CONTENT_CREATION")
        await caught_up(client)
        report_path = tmp_path / "audit.json"
        clean = await ledgerbus(
            environment_of(ledger), "audit", "--service", "ledger", "--json", str(report_path)
        )
        assert clean.exit_code == 0, clean.output
        report = json.loads(report_path.read_text())[0]
        assert report["status"] == "match"
        assert report["events_applied"] == 8

        cut_path = tmp_path / "cut.json"
        as_of = await ledgerbus(
            environment_of(ledger), "audit", "--service", "ledger", "--until", cut.isoformat(),
            "--json", str(cut_path),
        )  # fmt: skip
        assert as_of.exit_code == 0, as_of.output
        at_cut = json.loads(cut_path.read_text())[0]
        assert at_cut["events_applied"] == 6
        assert "2 events after the --until cut were left out" in at_cut["notes"]
        assert at_cut["rows_compared"] == 6 + 3  # entries before the cut, balances at it

        await ledger.fetch(
            "UPDATE ledger.entries SET amount = amount + 1 WHERE owner_id = $1"
            " AND operation = 'CREDIT_ADD'",
            owners[0],
        )
        tampered_path = tmp_path / "tampered-cut.json"
        before_cut = await ledgerbus(
            environment_of(ledger), "audit", "--service", "ledger", "--until", cut.isoformat(),
            "--json", str(tampered_path),
        )  # fmt: skip
        assert before_cut.exit_code == 1, before_cut.output
        differences = json.loads(tampered_path.read_text())[0]["differences"]
        assert len(differences) == 1
        assert differences[0].startswith("entries ")

        victim = owners[2]
        await _tamper(ledger, victim)
        tampered = await ledgerbus(environment_of(ledger), "audit", "--service", "ledger")
        assert tampered.exit_code == 1, tampered.output
        assert f"healthai:{victim}" in tampered.output
        assert f"healthai:{owners[1]}" not in tampered.output

        rebuilt = await ledgerbus(environment_of(ledger), "projections", "rebuild", "ledger")
        assert rebuilt.exit_code == 0, rebuilt.output
        assert (await client.get(f"/ledger/{victim}")).json()["balance"] == 9
        after = await record(client, victim, "DAILY_REWARD")
        balance = await client.get(f"/ledger/{victim}", params={"min_position": after["position"]})
        assert balance.json()["balance"] == 10
        await caught_up(client)
        again = await ledgerbus(environment_of(ledger), "audit", "--service", "ledger")
        assert again.exit_code == 0, again.output


async def _tamper(ledger: LedgerStack, owner_id: str) -> None:
    rows = await ledger.fetch(
        "UPDATE ledger.balances SET balance = balance + 7 WHERE app = 'healthai' AND owner_id = $1"
        " RETURNING balance",
        owner_id,
    )
    assert [row["balance"] for row in rows] == [16]
