"""Configuration: dev defaults, and production's refusal of unsafe secrets."""

import pytest

from shared.settings import SECRET_VARIABLES, ConfigurationError, PlatformSettings, parse_app_keys


def test_dev_uses_the_documented_defaults() -> None:
    settings = PlatformSettings(_env_file=None)
    settings.check_secrets()
    assert settings.app_keys == {"dev-healthai-key": "healthai", "dev-travelai-key": "travelai"}
    assert settings.admin_token == "dev-admin-token"


def test_production_names_every_unset_or_default_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SECRET_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LEDGERBUS_ENV", "production")
    monkeypatch.setenv("LEDGERBUS_ADMIN_TOKEN", "dev-admin-token")
    monkeypatch.setenv("LEDGERBUS_APP_KEYS", "healthai=s3cret,travelai=dev-travelai-key")
    with pytest.raises(ConfigurationError) as raised:
        PlatformSettings().check_secrets()
    message = str(raised.value)
    assert all(name in message for name in SECRET_VARIABLES)


def test_production_starts_with_real_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEDGERBUS_ENV", "production")
    monkeypatch.setenv("LEDGERBUS_JWT_SECRET", "j" * 32)
    monkeypatch.setenv("LEDGERBUS_ADMIN_TOKEN", "an-operator-token")
    monkeypatch.setenv("LEDGERBUS_APP_KEYS", "healthai=one,travelai=two")
    monkeypatch.setenv("LEDGERBUS_PIN_PEPPER", "p" * 32)
    PlatformSettings().check_secrets()


def test_app_keys_must_be_pairs_and_unique() -> None:
    assert parse_app_keys(" healthai = k1 , travelai=k2,") == {"k1": "healthai", "k2": "travelai"}
    for raw in ("healthai", "healthai=", "a=k,b=k"):
        with pytest.raises(ConfigurationError):
            parse_app_keys(raw)
