"""Cryptographic primitives as FORMAT.md §1 names them: HKDF-SHA256, Argon2id, the two AEADs."""

from __future__ import annotations

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MASTER_KEY_LEN = 32
TAG_LEN = 16
NONCE_LEN = 12

CIPHER_AES_256_GCM = 1
CIPHER_CHACHA20_POLY1305 = 2
CIPHER_NAMES = {
    CIPHER_AES_256_GCM: "aes-256-gcm",
    CIPHER_CHACHA20_POLY1305: "chacha20-poly1305",
}


def hkdf(master: bytes, stream_id: bytes, info: bytes, length: int) -> bytes:
    """HKDF-SHA256 (RFC 5869) with salt = stream id (§1)."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=stream_id, info=info).derive(master)


def payload_info(version: int, cipher: int) -> bytes:
    """``fusefs/stream/v{1,2}/payload/{aes-256-gcm,chacha20-poly1305}`` (§1)."""
    return f"fusefs/stream/v{version}/payload/{CIPHER_NAMES[cipher]}".encode("ascii")


def argon2id_master(password: bytes, salt: bytes, m: int, t: int, p: int) -> bytes:
    """master = Argon2id(password, salt, m KiB, t passes, p lanes), v0x13, 32 bytes (§1)."""
    kdf = Argon2id(salt=salt, length=MASTER_KEY_LEN, iterations=t, lanes=p, memory_cost=m)
    return kdf.derive(password)


def make_aead(cipher: int, key: bytes) -> AESGCM | ChaCha20Poly1305:
    if cipher == CIPHER_AES_256_GCM:
        return AESGCM(key)
    return ChaCha20Poly1305(key)


def aead_open(
    aead: AESGCM | ChaCha20Poly1305, nonce: bytes, sealed: bytes, aad: bytes
) -> bytes | None:
    """Open ciphertext || 16-byte tag; None when it does not authenticate."""
    try:
        return aead.decrypt(nonce, sealed, aad)
    except InvalidTag:
        return None
