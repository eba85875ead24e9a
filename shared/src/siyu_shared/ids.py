"""Name-based ids (RFC 4122 version 5 UUIDs as text), built without the ``uuid`` module's object overhead.

Deterministic ids are written for every event, ledger entry and touch, often several per unit of work on hot
paths, so the text of ``uuid.uuid5(namespace, name)`` is built straight from the SHA-1 hex digest: the namespace
is hashed once, each id continues a copy, the version nibble is written as ``5`` and the variant nibble is mapped
to ``8``–``b``.
"""

from __future__ import annotations

import hashlib
import uuid

# The RFC 4122 variant (binary 10xx) over the digest's 17th hex digit.
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


class NameIds:
    """``str(uuid.uuid5(namespace, name))`` for one namespace, cheaply."""

    __slots__ = ("_seeded", "namespace")

    def __init__(self, namespace: uuid.UUID) -> None:
        self.namespace = namespace
        self._seeded = hashlib.sha1(namespace.bytes)

    def __call__(self, name: str) -> str:
        sha = self._seeded.copy()
        sha.update(name.encode())
        h = sha.hexdigest()
        return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


url_ids = NameIds(uuid.NAMESPACE_URL)
