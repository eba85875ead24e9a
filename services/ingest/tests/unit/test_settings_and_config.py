"""Settings refuse development secrets in production; the demo channel file loads."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from siyu_ingest.adapters.credentials import load_channels_file
from siyu_ingest.adapters.vault import Vault
from siyu_ingest.settings import IngestSettings

EXAMPLE = Path(__file__).resolve().parents[2] / "channels.example.yaml"
BASE = {"database_url": "postgresql://u@h/d", "kafka_bootstrap_servers": "k:9092"}


def test_production_refuses_the_development_keys() -> None:
    with pytest.raises(ValidationError, match="development default"):
        IngestSettings(**BASE, environment="production")
    IngestSettings(
        **BASE,
        environment="production",
        identity_hmac_key=SecretStr("real-hmac-key"),
        pii_key=SecretStr("real-pii-key"),
    )


def test_the_example_channel_file_configures_every_channel() -> None:
    entries = load_channels_file(EXAMPLE)
    assert {channel for tenant, channel in entries if tenant == "glowlab"} == {
        "xiaohongshu",
        "douyin",
        "oceanengine",
        "doudian",
        "tmall",
        "wecom",
    }
    assert entries[("glowlab", "xiaohongshu")]["accounts"] == {"xhs-kol-9": "kol"}
    assert load_channels_file(None) == {}


def test_vault_matches_by_keyed_hash_and_seals_with_context() -> None:
    vault = Vault.from_settings(IngestSettings(**BASE))
    other = Vault.from_settings(IngestSettings(**BASE, identity_hmac_key=SecretStr("another")))
    assert vault.match_key("phone", "+8613800138000") == vault.match_key("phone", "+8613800138000")
    assert vault.match_key("phone", "+8613800138000") != other.match_key("phone", "+8613800138000")
    sealed = vault.seal(b"+8613800138000", context=b"glowlab")
    assert b"138" not in sealed
    assert vault.open(sealed, context=b"glowlab") == b"+8613800138000"
    with pytest.raises(Exception):  # noqa: B017 - the AEAD tag fails for another tenant's context
        vault.open(sealed, context=b"other")
