"""Ledger settings: where the catalogs live and the processing limits."""

import tomllib
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.ledger.domain.catalog import CatalogError, Catalogs, build_catalogs
from shared.settings import ConfigurationError

DEFAULT_CATALOG_FILE = Path(__file__).with_name("catalogs.toml")
SCHEMA = "ledger"
MIGRATIONS_FOLDER = Path(__file__).with_name("migrations")
COMMANDS_TOPIC = "ledger.commands"
EVENTS_TOPIC = "ledger.events"
PROCESSOR_NAME = "ledger-processor"
PROJECTOR_NAME = "ledger-projector"


class LedgerSettings(BaseSettings):
    model_config = SettingsConfigDict(frozen=True, extra="ignore", case_sensitive=False)

    ledger_catalog_file: Path = DEFAULT_CATALOG_FILE
    ledger_batch_max_records: int = Field(default=1_000, ge=1, le=10_000)


def load_catalogs(path: Path) -> Catalogs:
    """Read and check the catalog file; any problem stops the service with a message."""
    try:
        document = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ConfigurationError(f"cannot read the ledger catalog file {path}: {error}") from error
    shared = document.get("shared", {})
    apps = document.get("apps", {})
    if not isinstance(shared, dict) or not isinstance(apps, dict):
        raise ConfigurationError(f"{path}: expected a [shared] table and [apps.<name>] tables")
    try:
        return build_catalogs(shared, apps)
    except CatalogError as error:
        raise ConfigurationError(f"{path}: {error}") from error
