"""The vault config, ``fusefs.conf`` (FORMAT.md §6): parsing and unlocking.

Unlocking yields the master key ``M`` and the parameters every other file of
the vault is read with. The config version read here is the vault's format
version: :func:`refreader.layouts.layout_for` turns it into the byte layouts
of the log, packs and snapshots.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import struct
from dataclasses import dataclass
from typing import Any

from refreader.errors import IntegrityError, WrongKeyError
from refreader.primitives import CIPHER_NAMES, aead_open, argon2id_master, hkdf, make_aead

MAX_CONFIG_LEN = 64 * 1024
KNOWN_VERSIONS = (1, 2)
KNOWN_FEATURES: frozenset[str] = frozenset()  # §6.1: none defined yet
CIPHER_IDS = {name: ident for ident, name in CIPHER_NAMES.items()}
CREATED_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z\Z")

FIELDS = (
    "version",
    "vault_id",
    "created",
    "cipher",
    "segment_size",
    "compression",
    "features",
    "kdf",
    "password_check",
    "sealed_master_key",
    "master_key_check",
    "config_mac",
)


@dataclass(frozen=True)
class Config:
    """The parsed (not yet authenticated) fields of §6.1."""

    version: int
    vault_id: bytes
    created: str
    cipher: int
    segment_size: int
    zstd_level: int  # 0: compression "none"
    features: tuple[str, ...]
    kdf_m: int
    kdf_t: int
    kdf_p: int
    kdf_salt: bytes
    password_check: bytes
    seal_nonce: bytes
    sealed_master_key: bytes
    master_key_check: bytes
    config_mac: bytes

    def binding(self) -> bytes:
        """``B`` of §6.2: every parameter that shapes the vault."""
        created = self.created.encode("ascii")
        out = b"fusefs/vault/config" + struct.pack(
            "<I16sBIBBI", self.version, self.vault_id, self.cipher, self.segment_size,
            1 if self.zstd_level else 0, self.zstd_level, len(created),
        )  # fmt: skip
        out += created + struct.pack("<I", len(self.features))
        for feature in self.features:
            raw = feature.encode("utf-8")
            out += struct.pack("<I", len(raw)) + raw
        return out

    def kdf_block(self) -> bytes:
        """``K`` of §6.2 (28 bytes)."""
        return struct.pack("<III16s", self.kdf_m, self.kdf_t, self.kdf_p, self.kdf_salt)


def _invalid(what: str) -> IntegrityError:
    return IntegrityError(f"invalid config: {what}")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _invalid(f"duplicated field {key!r}")
        seen[key] = value
    return seen


def _int(value: Any, what: str, low: int, high: int) -> int:
    if type(value) is not int:  # bool is an int subclass: refuse it too
        raise _invalid(f"{what} is not an integer")
    if not low <= value <= high:
        raise _invalid(f"{what} {value} out of range {low}..{high}")
    return value


def _hex(value: Any, what: str, length: int) -> bytes:
    if not isinstance(value, str) or not re.fullmatch(r"[0-9a-f]*", value):
        raise _invalid(f"{what} is not lowercase hex")
    if len(value) != 2 * length:
        raise _invalid(f"{what} is not {length} bytes")
    return bytes.fromhex(value)


def _object(value: Any, what: str, fields: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _invalid(f"{what} is not an object")
    if set(value) != set(fields):
        missing = sorted(set(fields) - set(value))
        unknown = sorted(set(value) - set(fields))
        raise _invalid(f"{what}: missing fields {missing}, unknown fields {unknown}")
    return value


def parse_config(raw: bytes) -> Config:
    """Steps 1 and 2 of §6.3: everything checkable without a key."""
    if len(raw) > MAX_CONFIG_LEN:
        raise _invalid(f"larger than {MAX_CONFIG_LEN} bytes")
    if not raw.strip():
        raise _invalid("empty")
    try:
        doc = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError) as e:
        if isinstance(e, IntegrityError):
            raise
        raise _invalid(f"not JSON ({e})") from None
    if not isinstance(doc, dict):
        raise _invalid("not a JSON object")
    if type(doc.get("version")) is not int:
        raise _invalid("version missing or not an integer")
    if doc["version"] not in KNOWN_VERSIONS:
        raise IntegrityError(f"unsupported config version {doc['version']}")
    features = doc.get("features")
    if isinstance(features, list):
        unknown = [f for f in features if f not in KNOWN_FEATURES]
        if unknown:
            raise IntegrityError(f"the vault needs features this reader does not have: {unknown}")
    _object(doc, "config", FIELDS)
    if not isinstance(features, list):
        raise _invalid("features is not an array")
    if not isinstance(doc["created"], str) or not CREATED_RE.match(doc["created"]):
        raise _invalid("created is not YYYY-MM-DDTHH:MM:SSZ")
    if doc["cipher"] not in CIPHER_IDS:
        raise _invalid(f"unknown cipher {doc['cipher']!r}")
    segment_size = _int(doc["segment_size"], "segment_size", 16384, 1048576)
    if segment_size & (segment_size - 1):
        raise _invalid(f"segment_size {segment_size} is not a power of two")
    compression = doc["compression"]
    if isinstance(compression, dict) and compression.get("algorithm") == "none":
        _object(compression, "compression", ("algorithm",))
        level = 0
    elif isinstance(compression, dict) and compression.get("algorithm") == "zstd":
        _object(compression, "compression", ("algorithm", "level"))
        level = _int(compression["level"], "compression level", 1, 22)
    else:
        raise _invalid("compression is neither none nor zstd")
    kdf = _object(doc["kdf"], "kdf", ("algorithm", "m_kib", "t", "p", "salt"))
    if kdf["algorithm"] != "argon2id":
        raise _invalid(f"unknown kdf {kdf['algorithm']!r}")
    p = _int(kdf["p"], "kdf.p", 1, 64)
    m = _int(kdf["m_kib"], "kdf.m_kib", 8 * p, 4194304)
    sealed = _object(doc["sealed_master_key"], "sealed_master_key", ("nonce", "ciphertext"))
    return Config(
        version=doc["version"],
        vault_id=_hex(doc["vault_id"], "vault_id", 16),
        created=doc["created"],
        cipher=CIPHER_IDS[doc["cipher"]],
        segment_size=segment_size,
        zstd_level=level,
        features=tuple(features),
        kdf_m=m,
        kdf_t=_int(kdf["t"], "kdf.t", 1, 64),
        kdf_p=p,
        kdf_salt=_hex(kdf["salt"], "kdf.salt", 16),
        password_check=_hex(doc["password_check"], "password_check", 16),
        seal_nonce=_hex(sealed["nonce"], "sealed_master_key.nonce", 12),
        sealed_master_key=_hex(sealed["ciphertext"], "sealed_master_key.ciphertext", 48),
        master_key_check=_hex(doc["master_key_check"], "master_key_check", 16),
        config_mac=_hex(doc["config_mac"], "config_mac", 32),
    )


def _master_key_check(master: bytes) -> bytes:
    return hkdf(master, b"", b"fusefs/vault/master-key-check", 16)


def _verify_mac(config: Config, master: bytes) -> None:
    mac_key = hkdf(master, config.vault_id, b"fusefs/vault/config-mac", 32)
    mac = hmac.new(mac_key, config.binding(), hashlib.sha256).digest()
    if not hmac.compare_digest(mac, config.config_mac):
        raise IntegrityError("config modified or damaged (config_mac)")


def unlock_with_password(config: Config, password: bytes) -> bytes:
    """Steps 3-5 of §6.3 (password path): the master key."""
    derived = argon2id_master(password, config.kdf_salt, config.kdf_m, config.kdf_t, config.kdf_p)
    check = hkdf(derived, config.kdf_salt, b"fusefs/vault/password-check", 16)
    if not hmac.compare_digest(check, config.password_check):
        raise WrongKeyError("wrong password")
    seal_key = hkdf(derived, config.kdf_salt, b"fusefs/vault/master-key-seal", 32)
    aad = config.binding() + config.kdf_block()
    master = aead_open(
        make_aead(config.cipher, seal_key), config.seal_nonce, config.sealed_master_key, aad
    )
    if master is None:
        raise IntegrityError("config modified or damaged (sealed master key does not open)")
    if not hmac.compare_digest(_master_key_check(master), config.master_key_check):
        raise IntegrityError("config modified or damaged (master_key_check)")
    _verify_mac(config, master)
    return master


def unlock_with_master_key(config: Config, master: bytes) -> bytes:
    """Steps 3-4 of §6.3 (printed master key path)."""
    if not hmac.compare_digest(_master_key_check(master), config.master_key_check):
        raise WrongKeyError("wrong master key")
    _verify_mac(config, master)
    return master
