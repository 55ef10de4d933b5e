"""The ledger's pure rules: catalogs and decisions."""

import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.ledger.domain.catalog import CatalogError, build_catalogs
from services.ledger.domain.model import (
    Account,
    CommandIdentity,
    NewDecision,
    NonceReused,
    Repeated,
    Status,
    decide,
    entry_id_for,
)
from services.ledger.settings import DEFAULT_CATALOG_FILE, load_catalogs
from shared.contracts.ledger import EntryRecorded, EntryRejected, RecordEntry
from shared.settings import ConfigurationError

SHARED = {"DAILY_REWARD": 1, "SIGNUP_CREDIT": 3, "CREDIT_SPEND": -1, "CREDIT_ADD": 10}
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
CATALOG = build_catalogs(SHARED, {"healthai": {**SHARED, "CONTENT_CREATION": -5}}).apps["healthai"]


def command(
    operation: str = "CREDIT_ADD", nonce: str = "n1", owner_id: str = "alice"
) -> RecordEntry:
    return RecordEntry(app="healthai", owner_id=owner_id, operation=operation, nonce=nonce)


def test_the_packaged_catalogs_hold_the_contract_operations() -> None:
    catalogs = load_catalogs(DEFAULT_CATALOG_FILE)
    assert dict(catalogs.apps["healthai"].operations) == {
        **SHARED,
        "CONTENT_CREATION": -5,
        "CONTENT_ACCESS": 0,
    }
    assert dict(catalogs.apps["travelai"].operations) == {
        **SHARED,
        "BOOKING_REWARD": 5,
        "LOYALTY_BONUS": 2,
    }


def test_a_catalog_lacking_shared_operations_is_refused_naming_app_and_operations() -> None:
    with pytest.raises(CatalogError) as raised:
        build_catalogs(SHARED, {"travelai": {"DAILY_REWARD": 1, "SIGNUP_CREDIT": 3}})
    assert "'travelai' lacks the shared operations: CREDIT_ADD, CREDIT_SPEND" in str(raised.value)


def test_a_catalog_may_not_change_a_shared_amount_or_use_odd_names() -> None:
    operations: dict[str, object] = {**SHARED, "CREDIT_ADD": 11, "lower": 1, "FLOAT": 1.5}
    with pytest.raises(CatalogError) as raised:
        build_catalogs(SHARED, {"healthai": operations})  # type: ignore[dict-item]
    message = str(raised.value)
    assert "CREDIT_ADD (11 instead of 10)" in message
    assert "'lower' must be UPPER_SNAKE_CASE" in message
    assert "FLOAT must be an integer" in message


def test_an_unreadable_catalog_file_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "catalogs.toml"
    path.write_text("[shared\n")
    with pytest.raises(ConfigurationError):
        load_catalogs(path)


def test_a_first_command_records_an_entry_and_advances_the_stream() -> None:
    decision, after = decide(
        command(),
        account=Account("healthai", "alice", 0, 0),
        earlier=None,
        catalog=CATALOG,
        identity=CommandIdentity("tests", "c1"),
        now=NOW,
    )
    assert isinstance(decision, NewDecision) and isinstance(decision.event, EntryRecorded)
    assert (after.balance, after.sequence) == (10, 1)
    assert decision.event.entry_id == entry_id_for("healthai", "n1")
    assert decision.decision.status is Status.RECORDED


def test_a_spend_beyond_the_balance_is_rejected_and_the_balance_stays() -> None:
    decision, after = decide(
        command("CONTENT_CREATION"),
        account=Account("healthai", "alice", 4, 7),
        earlier=None,
        catalog=CATALOG,
        identity=CommandIdentity("tests", "c1"),
        now=NOW,
    )
    assert isinstance(decision, NewDecision) and isinstance(decision.event, EntryRejected)
    assert decision.event.code == "insufficient_balance"
    assert (after.balance, after.sequence) == (4, 8)


def test_a_decided_nonce_replays_for_the_same_request_and_conflicts_otherwise() -> None:
    first, account = decide(
        command(),
        account=Account("healthai", "alice", 0, 0),
        earlier=None,
        catalog=CATALOG,
        identity=CommandIdentity("tests", "c1"),
        now=NOW,
    )
    assert isinstance(first, NewDecision)
    again, same = decide(
        command(), account=account, earlier=first.decision, catalog=CATALOG,
        identity=CommandIdentity("tests", "c2"), now=NOW,
    )  # fmt: skip
    assert isinstance(again, Repeated)
    assert same == account
    other, _ = decide(
        command("DAILY_REWARD"),
        account=account,
        earlier=first.decision,
        catalog=CATALOG,
        identity=CommandIdentity("tests", "c3"),
        now=NOW,
    )
    assert isinstance(other, NonceReused)


def test_no_sequence_of_commands_makes_a_balance_negative() -> None:
    rng = random.Random(7)
    account = Account("healthai", "alice", 0, 0)
    for index in range(2_000):
        operation = rng.choice(["CREDIT_SPEND", "CONTENT_CREATION", "CREDIT_ADD", "DAILY_REWARD"])
        _, account = decide(
            command(operation, nonce=f"n{index}"),
            account=account,
            earlier=None,
            catalog=CATALOG,
            identity=CommandIdentity("tests", f"c{index}"),
            now=NOW,
        )
        assert account.balance >= 0 and account.sequence == index + 1


def test_a_refusal_names_no_caller_chosen_text_so_it_fits_for_any_owner_id() -> None:
    """Reproduces the parked command: 128 tag-like characters in `repr` overflowed `detail`."""
    owner_id = "\U0001d54f" * 128  # MATHEMATICAL DOUBLE-STRUCK X, ten characters in `repr`
    decision, _ = decide(
        command("CONTENT_CREATION", owner_id=owner_id),
        account=Account("healthai", owner_id, 0, 0),
        earlier=None,
        catalog=CATALOG,
        identity=CommandIdentity("tests", "c1"),
        now=NOW,
    )
    assert isinstance(decision, NewDecision)
    assert isinstance(decision.event, EntryRejected)
    assert owner_id not in decision.event.detail
    assert len(decision.event.detail) < 200
