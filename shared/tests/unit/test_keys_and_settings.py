import pytest
from pydantic import SecretStr, ValidationError

from siyu_shared.auth.keys import effective_scopes, hash_secret, new_key
from siyu_shared.settings import ServiceSettings, to_asyncpg_url, to_libpq_url


def test_new_keys_are_unique_and_only_their_hash_is_kept() -> None:
    first, first_hash = new_key(tenant="glowlab", scopes=("read",))
    second, _ = new_key(tenant="glowlab", scopes=("read",))
    assert first.plaintext != second.plaintext
    assert first.plaintext.startswith(f"siyu_{first.key_id}_")
    secret = first.plaintext.removeprefix(f"siyu_{first.key_id}_")
    assert len(secret) == 43
    assert hash_secret(secret) == first_hash


def test_new_key_refuses_bad_tenants_and_scopes() -> None:
    with pytest.raises(ValueError):
        new_key(tenant="Bad Tenant", scopes=("read",))
    with pytest.raises(ValueError):
        new_key(tenant="glowlab", scopes=("root",))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        new_key(tenant="glowlab", scopes=())


def test_scopes_imply_the_weaker_ones() -> None:
    assert effective_scopes(["admin"]) == {"read", "write", "admin"}
    assert effective_scopes(["write"]) == {"read", "write"}
    assert effective_scopes(["read", "bogus"]) == {"read"}


class _Settings(ServiceSettings):
    api_secret: SecretStr = SecretStr("dev-only-secret")


def test_settings_fall_back_to_unprefixed_connection_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@h:5432/db")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "h:9092")
    settings = _Settings()
    assert settings.async_database_url == "postgresql+asyncpg://u@h:5432/db"
    assert settings.kafka_bootstrap_servers == "h:9092"


def test_settings_refuse_development_secrets_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@h/db")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "h:9092")
    monkeypatch.setenv("SIYU_ENVIRONMENT", "production")
    with pytest.raises(ValidationError, match="development default"):
        _Settings()
    assert _Settings(api_secret=SecretStr("a-real-one")).environment == "production"


def test_url_helpers() -> None:
    assert to_asyncpg_url("postgres://a@b/c") == "postgresql+asyncpg://a@b/c"
    assert to_libpq_url("postgresql+asyncpg://a@b/c") == "postgresql://a@b/c"
    with pytest.raises(ValueError):
        to_asyncpg_url("mysql://a@b/c")
