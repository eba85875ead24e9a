"""Keyed hashing (for matching identifiers) and AES-GCM encryption (for storing personal data and secrets)."""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from siyu_ingest.settings import IngestSettings


@dataclass(frozen=True, slots=True)
class Vault:
    hmac_key: bytes
    aes_key: bytes

    @classmethod
    def from_settings(cls, settings: IngestSettings) -> Vault:
        return cls(
            hmac_key=settings.identity_hmac_key.get_secret_value().encode(),
            aes_key=hashlib.sha256(settings.pii_key.get_secret_value().encode()).digest(),
        )

    def match_key(self, kind: str, value: str) -> str:
        """The keyed hash an identifier is matched by (the value itself is never compared in clear)."""
        return hmac.new(self.hmac_key, f"{kind}\x00{value}".encode(), hashlib.sha256).hexdigest()

    def seal(self, plaintext: bytes, *, context: bytes = b"") -> bytes:
        nonce = os.urandom(12)
        return nonce + AESGCM(self.aes_key).encrypt(nonce, plaintext, context)

    def open(self, sealed: bytes, *, context: bytes = b"") -> bytes:
        return AESGCM(self.aes_key).decrypt(sealed[:12], sealed[12:], context)
