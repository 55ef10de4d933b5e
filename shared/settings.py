"""Platform settings read from the environment, with the contract's names and dev defaults.

In `production` every process refuses to start while a secret is unset or still equals its
dev default, and names each offending variable, so a forgotten secret never reaches users.
"""

from collections.abc import Mapping
from functools import cached_property
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_JWT_SECRET = "dev-jwt-secret"
DEV_PIN_PEPPER = "dev-pin-pepper"
DEV_ADMIN_TOKEN = "dev-admin-token"
DEV_APP_KEYS = "healthai=dev-healthai-key,travelai=dev-travelai-key"

DEV_SESSION_TIMEOUT_MILLISECONDS = 2_500
PRODUCTION_SESSION_TIMEOUT_MILLISECONDS = 10_000

SECRET_VARIABLES = (
    "LEDGERBUS_JWT_SECRET",
    "LEDGERBUS_ADMIN_TOKEN",
    "LEDGERBUS_APP_KEYS",
    "LEDGERBUS_PIN_PEPPER",
)


class ConfigurationError(RuntimeError):
    """The process cannot start with this configuration; the message says what to change."""


class PlatformSettings(BaseSettings):
    """What every Ledgerbus process reads. Field names match the contract's variables."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", case_sensitive=False)

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    database_url: str = "postgresql://postgres@127.0.0.1:5432/ledgerbus"
    redis_url: str = "redis://127.0.0.1:6379/0"
    ledgerbus_env: Literal["dev", "production"] = "dev"
    ledgerbus_http_port: int = Field(default=8000, ge=1, le=65535)
    ledgerbus_http_host: str = "127.0.0.1"
    ledgerbus_kafka_port: int = Field(default=9092, ge=1, le=65535)
    ledgerbus_jwt_secret: str | None = None
    ledgerbus_pin_pepper: str | None = None
    """Mixed into every PIN before hashing (HMAC), and kept out of the database: a stolen copy
    of `wallet.users` alone cannot be brute-forced (ADR 0021)."""
    ledgerbus_admin_token: str | None = None
    ledgerbus_app_keys: str | None = None
    ledgerbus_topic_prefix: str = Field(default="", pattern=r"^[A-Za-z0-9._-]*$")
    """Prefix for every topic and consumer group: tests use it to isolate runs on one broker."""
    ledgerbus_ops_port: int = Field(default=0, ge=0, le=65535)
    """Port of a worker's /health, /ready and /metrics; 0 turns that server off."""
    ledgerbus_log_format: Literal["console", "json"] = "console"
    ledgerbus_log_level: str = "INFO"
    ledgerbus_command_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    """How long the gateway waits for a processor to decide a command before answering 504."""
    ledgerbus_session_timeout_milliseconds: int | None = Field(default=None, ge=1_000, le=300_000)
    """How long a silent consumer keeps its partitions before its group hands them on. Unset:
    2.5 s in dev (the embedded broker re-owns a dead member's partitions within about 5 s of a
    SIGKILL), 10 s in production (Apache Kafka refuses less than its
    `group.min.session.timeout.ms`, 6 s by default)."""

    @property
    def session_timeout_milliseconds(self) -> int:
        if self.ledgerbus_session_timeout_milliseconds is not None:
            return self.ledgerbus_session_timeout_milliseconds
        if self.is_production:
            return PRODUCTION_SESSION_TIMEOUT_MILLISECONDS
        return DEV_SESSION_TIMEOUT_MILLISECONDS

    @property
    def is_production(self) -> bool:
        return self.ledgerbus_env == "production"

    @property
    def postgres_dsn(self) -> str:
        """The URL asyncpg accepts: SQLAlchemy's `+asyncpg` driver suffix is dropped."""
        return self.database_url.replace("postgresql+asyncpg://", "postgresql://", 1)

    @property
    def jwt_secret(self) -> str:
        return self.ledgerbus_jwt_secret or DEV_JWT_SECRET

    @property
    def pin_pepper(self) -> str:
        return self.ledgerbus_pin_pepper or DEV_PIN_PEPPER

    @property
    def admin_token(self) -> str:
        return self.ledgerbus_admin_token or DEV_ADMIN_TOKEN

    @cached_property
    def app_keys(self) -> Mapping[str, str]:
        """API key to app name, parsed from `app=key,app=key`."""
        return parse_app_keys(self.ledgerbus_app_keys or DEV_APP_KEYS)

    def topic(self, name: str) -> str:
        return f"{self.ledgerbus_topic_prefix}{name}"

    def group(self, name: str) -> str:
        return f"{self.ledgerbus_topic_prefix}{name}"

    def check_secrets(self) -> None:
        """Refuse production with an unset or dev-default secret, naming each variable."""
        if not self.is_production:
            return
        offending = [name for name in SECRET_VARIABLES if _is_unsafe(self, name)]
        if offending:
            raise ConfigurationError(
                "LEDGERBUS_ENV=production refuses to start: "
                + ", ".join(offending)
                + " must be set to a value that is not the dev default."
            )


def _is_unsafe(settings: PlatformSettings, variable: str) -> bool:
    if variable == "LEDGERBUS_JWT_SECRET":
        return settings.ledgerbus_jwt_secret in (None, "", DEV_JWT_SECRET)
    if variable == "LEDGERBUS_PIN_PEPPER":
        return settings.ledgerbus_pin_pepper in (None, "", DEV_PIN_PEPPER)
    if variable == "LEDGERBUS_ADMIN_TOKEN":
        return settings.ledgerbus_admin_token in (None, "", DEV_ADMIN_TOKEN)
    raw = settings.ledgerbus_app_keys
    if raw in (None, ""):
        return True
    dev_keys = set(parse_app_keys(DEV_APP_KEYS))
    return bool(dev_keys & set(parse_app_keys(raw)))


def parse_app_keys(raw: str) -> Mapping[str, str]:
    """Parse `app=key,app=key` into key to app, refusing malformed or repeated keys."""
    keys: dict[str, str] = {}
    for pair in (piece.strip() for piece in raw.split(",")):
        if not pair:
            continue
        app, separator, key = pair.partition("=")
        if not separator or not app.strip() or not key.strip():
            raise ConfigurationError(
                f"LEDGERBUS_APP_KEYS: {pair!r} is not of the form app=key (example: "
                "healthai=some-secret,travelai=another-secret)."
            )
        if key.strip() in keys:
            raise ConfigurationError("LEDGERBUS_APP_KEYS: one key is given to two apps.")
        keys[key.strip()] = app.strip()
    return keys


def load_settings() -> PlatformSettings:
    """Read and check the environment; called by each entrypoint, never at import time."""
    settings = PlatformSettings()
    settings.check_secrets()
    return settings
