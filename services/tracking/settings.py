"""Tracking settings: names, topics and the processing limits."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

SCHEMA = "tracking"
MIGRATIONS_FOLDER = Path(__file__).with_name("migrations")
COMMANDS_TOPIC = "tracking.commands"
EVENTS_TOPIC = "tracking.events"
LEDGER_COMMANDS_TOPIC = "ledger.commands"
PROCESSOR_NAME = "tracking-processor"
PROJECTOR_NAME = "tracking-projector"
REWARD_APP = "healthai"
REWARD_OPERATION = "DAILY_REWARD"
WRITING_APPS = frozenset({REWARD_APP})
"""Apps whose backends may register entries for their users: an entry can earn HealthAI's
reward, so another app's key must not mint HealthAI credits (found by review)."""


class TrackingSettings(BaseSettings):
    model_config = SettingsConfigDict(frozen=True, extra="ignore", case_sensitive=False)

    tracking_batch_max_records: int = Field(default=1_000, ge=1, le=10_000)
