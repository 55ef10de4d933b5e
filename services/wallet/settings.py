"""Wallet settings: names of its topics and processes, and its limits."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

SCHEMA = "wallet"
MIGRATIONS_FOLDER = Path(__file__).with_name("migrations")
COMMANDS_TOPIC = "wallet.commands"
EVENTS_TOPIC = "wallet.events"
PROCESSOR_NAME = "wallet-processor"
PROJECTOR_NAME = "wallet-projector"
POSITIONS_CHANNEL = "wallet_positions"
"""NOTIFY channel on which the projector announces each partition's new checkpoint."""
OPENING_BALANCE_PAISA = 500_000
"""What every new wallet receives from the system account (5000 taka): the contract's figure."""


class WalletSettings(BaseSettings):
    model_config = SettingsConfigDict(frozen=True, extra="ignore", case_sensitive=False)

    wallet_batch_max_records: int = Field(default=1_000, ge=1, le=10_000)
    wallet_transfer_deadline_seconds: float = Field(default=30.0, gt=0, le=3_600)
    """When a transfer's credit leg has not answered by then, the recipient's partition is
    asked to cancel it (it decides cancelled or applied, in its own order)."""
    wallet_registration_repair_seconds: float = Field(default=10.0, gt=0, le=3_600)
    """A user older than this without a wallet gets the opening command again."""
