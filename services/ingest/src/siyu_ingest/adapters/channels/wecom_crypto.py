"""WeCom callback crypto: msg_signature (SHA-1 over the sorted parts) and AES-256-CBC message encryption.

``AESKey = base64(EncodingAESKey + "=")`` (32 bytes), IV = its first 16 bytes, PKCS#7 padding to a 32-byte
block; plaintext = 16 random bytes + 4-byte big-endian length + message + receive id (the CorpID).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from siyu_ingest.adapters.channels.base import same_digest
from siyu_ingest.domain.errors import BadSignature, Malformed

BLOCK = 32


def signature(token: str, timestamp: str, nonce: str, encrypted: str) -> str:
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypted])).encode()).hexdigest()


def check_signature(given: str, token: str, timestamp: str, nonce: str, encrypted: str) -> None:
    if not same_digest(given.lower(), signature(token, timestamp, nonce, encrypted)):
        raise BadSignature("msg_signature does not match")


def _key(encoding_aes_key: str) -> bytes:
    try:
        key = base64.b64decode(encoding_aes_key + "=")
    except binascii.Error as exc:
        raise Malformed("EncodingAESKey is not base64") from exc
    if len(key) != 32:
        raise Malformed("EncodingAESKey must decode to 32 bytes")
    return key


def decrypt(encrypted: str, *, encoding_aes_key: str, receive_id: str) -> bytes:
    key = _key(encoding_aes_key)
    try:
        data = base64.b64decode(encrypted, validate=True)
    except binascii.Error as exc:
        raise Malformed("Encrypt is not base64") from exc
    if not data or len(data) % 16:
        raise Malformed("Encrypt is not whole AES blocks")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    plain = decryptor.update(data) + decryptor.finalize()
    pad = plain[-1]
    if not 1 <= pad <= BLOCK or len(plain) < 20 + pad:
        raise Malformed("bad padding in the decrypted message")
    plain = plain[:-pad]
    (length,) = struct.unpack(">I", plain[16:20])
    message, received = plain[20 : 20 + length], plain[20 + length :]
    if len(message) != length:
        raise Malformed("decrypted message length does not match")
    if received.decode(errors="replace") != receive_id:
        raise BadSignature("the message is for another CorpID")
    return message


def encrypt(message: bytes, *, encoding_aes_key: str, receive_id: str) -> str:
    """The inverse of ``decrypt`` (for fixtures and the benchmark: what WeCom sends)."""
    key = _key(encoding_aes_key)
    plain = os.urandom(16) + struct.pack(">I", len(message)) + message + receive_id.encode()
    pad = BLOCK - len(plain) % BLOCK
    plain += bytes([pad]) * pad
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()
