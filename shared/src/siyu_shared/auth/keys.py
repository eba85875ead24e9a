"""Tenant-scoped API keys: issued once in clear, stored as a SHA-256 hash, checked in constant time.

A key looks like ``siyu_<key_id>_<secret>``. The key id finds the row; the secret (256 random bits, so a fast
hash is enough: nothing to brute-force) is compared against the stored hash. Scopes are ordered:
admin implies write implies read.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from siyu_shared.messaging.tables import api_keys_table
from siyu_shared.values import TENANT_PATTERN, is_tenant

Scope = Literal["read", "write", "admin"]
SCOPES: tuple[Scope, ...] = ("read", "write", "admin")
_IMPLIED: dict[Scope, frozenset[Scope]] = {
    "read": frozenset({"read"}),
    "write": frozenset({"read", "write"}),
    "admin": frozenset({"read", "write", "admin"}),
}
_KEY = re.compile(r"^siyu_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key, its tenant and everything its scopes allow."""

    key_id: str
    tenant: str
    scopes: frozenset[Scope]

    def allows(self, scope: Scope) -> bool:
        return scope in self.scopes


@dataclass(frozen=True, slots=True)
class IssuedKey:
    key_id: str
    tenant: str
    scopes: tuple[Scope, ...]
    plaintext: str


def hash_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def new_key(*, tenant: str, scopes: tuple[Scope, ...]) -> tuple[IssuedKey, bytes]:
    """A fresh key and the hash to store. The plaintext is shown once and never stored."""
    if not is_tenant(tenant):
        raise ValueError(f"tenant {tenant!r} must match {TENANT_PATTERN}")
    unknown = set(scopes) - set(SCOPES)
    if unknown or not scopes:
        raise ValueError(f"scopes must be a non-empty subset of {SCOPES}")
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return IssuedKey(key_id, tenant, scopes, f"siyu_{key_id}_{secret}"), hash_secret(secret)


def effective_scopes(granted: list[str] | tuple[str, ...]) -> frozenset[Scope]:
    scopes: set[Scope] = set()
    for scope in granted:
        if scope in _IMPLIED:
            scopes |= _IMPLIED[scope]
    return frozenset(scopes)


async def store_key(session: AsyncSession, *, issued: IssuedKey, secret_hash: bytes, name: str) -> None:
    await session.execute(
        insert(api_keys_table).values(
            key_id=issued.key_id,
            tenant=issued.tenant,
            name=name,
            scopes=list(issued.scopes),
            secret_hash=secret_hash,
        )
    )


async def issue_key(session: AsyncSession, *, tenant: str, scopes: tuple[Scope, ...], name: str) -> IssuedKey:
    issued, secret_hash = new_key(tenant=tenant, scopes=scopes)
    await store_key(session, issued=issued, secret_hash=secret_hash, name=name)
    return issued


async def revoke_key(session: AsyncSession, *, key_id: str) -> bool:
    revoked = await session.scalar(
        update(api_keys_table)
        .where(api_keys_table.c.key_id == key_id, api_keys_table.c.revoked_at.is_(None))
        .values(revoked_at=func.now())
        .returning(api_keys_table.c.key_id)
    )
    return revoked is not None


async def authenticate(session: AsyncSession, presented: str) -> Principal | None:
    """The principal behind a presented key, or None if it is malformed, unknown, revoked or wrong."""
    match = _KEY.match(presented.strip())
    if match is None:
        return None
    key_id, secret = match.groups()
    row = (
        await session.execute(
            select(api_keys_table.c.tenant, api_keys_table.c.scopes, api_keys_table.c.secret_hash).where(
                api_keys_table.c.key_id == key_id, api_keys_table.c.revoked_at.is_(None)
            )
        )
    ).first()
    if row is None or not hmac.compare_digest(row.secret_hash, hash_secret(secret)):
        return None
    return Principal(key_id=key_id, tenant=row.tenant, scopes=effective_scopes(row.scopes))
