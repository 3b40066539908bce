"""Ed25519 signatures of the registry's history lines: the keys (``FINML_SIGNING_KEY_FILE``, the
private key of the training role; ``FINML_VERIFY_KEY_FILE``, the public key of the scoring
workers), signing a line and checking one. What each mode protects against, and what it does
not: ``docs/registry.md`` (Integrity: hash chain and signatures).

Ed25519 is RFC 8032; the implementation is the ``cryptography`` package's.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.errors import RegistryError
from models.files import json_default

log = logging.getLogger(__name__)

SIGNATURE_KEY = "signature"
"""The key of a history line that holds its signature, ``ed25519:<key id>:<base64 signature>``."""
ALGORITHM = "ed25519"


def canonical_bytes(record: Mapping[str, Any]) -> bytes:
    """The bytes a line's signature covers: its JSON without the ``signature`` key, keys sorted
    (the form :func:`models.jsonl.append_jsonl` writes)."""
    body = {k: v for k, v in record.items() if k != SIGNATURE_KEY}
    return json.dumps(body, sort_keys=True, default=json_default).encode()


def key_id(public_key) -> str:
    """First 16 hex digits of the SHA-256 of the raw 32-byte public key: names the key in
    signatures and messages (not secret)."""
    from cryptography.hazmat.primitives import serialization

    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True)
class SigningKeys:
    """The configured keys: ``public`` always (Ed25519 public key), ``private`` only for a role
    that may write the history (None for a scoring worker); ``key_id`` names the public key."""

    public: Any
    private: Any = None
    key_id: str = ""

    @property
    def can_sign(self) -> bool:
        return self.private is not None

    def sign(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """``record`` as it will be stored (its JSON round trip) with its ``signature``.

        Raises:
            RegistryError: no private key (a verification-only role cannot write the history).
        """
        if self.private is None:
            raise RegistryError("the registry's history is signed (FINML_VERIFY_KEY_FILE is set) but no signing key "
                                "is configured: set FINML_SIGNING_KEY_FILE (the training role's private key) to "
                                "write a history line")
        stored = json.loads(json.dumps(dict(record), sort_keys=True, default=json_default))
        stored.pop(SIGNATURE_KEY, None)
        sig = base64.b64encode(self.private.sign(canonical_bytes(stored))).decode()
        stored[SIGNATURE_KEY] = f"{ALGORITHM}:{self.key_id}:{sig}"
        return stored

    def check(self, record: Mapping[str, Any]) -> str | None:
        """None when the record's ``signature`` verifies with the public key, else the problem in
        words (missing, malformed, made with another key, or not matching the content)."""
        from cryptography.exceptions import InvalidSignature

        value = record.get(SIGNATURE_KEY)
        if not value:
            return "not signed"
        parts = str(value).split(":")
        if len(parts) != 3 or parts[0] != ALGORITHM:
            return f"malformed signature {str(value)[:40]!r}"
        if parts[1] != self.key_id:
            return f"signed with key {parts[1]}, not the configured key {self.key_id}"
        try:
            self.public.verify(base64.b64decode(parts[2], validate=True), canonical_bytes(record))
        except (InvalidSignature, ValueError):
            return "signature does not verify (the line was changed after it was signed)"
        return None


def _read_key_file(path: Path, setting: str, registry_root: Path | None, private: bool) -> bytes:
    from models.registry_tree import refuse_inside_registry

    if registry_root is not None:
        refuse_inside_registry(path, registry_root, setting, RegistryError)
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except OSError as err:
        raise RegistryError(f"{setting}={path}: cannot read the key file ({err.strerror or err})") from None
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise RegistryError(f"{setting}={path}: the key file is writable by group or others (mode "
                            f"{oct(mode & 0o777)}), so anyone could replace it; chmod go-w it")
    if private and mode & stat.S_IROTH:
        log.warning("%s=%s is readable by every user (mode %s): the signing key should be readable by the "
                    "training role only (chmod 600)", setting, path, oct(mode & 0o777))
    return data


def load_keys(signing_key_file: Path | None, verify_key_file: Path | None,
              registry_root: Path | None = None) -> SigningKeys | None:
    """The configured keys, or None when neither file is set (unsigned mode).

    Args:
        signing_key_file: PEM (PKCS#8) Ed25519 private key; its public half is the verify key
            when ``verify_key_file`` is not set.
        verify_key_file: PEM (SubjectPublicKeyInfo) Ed25519 public key.
        registry_root: the registry root; a key file that resolves inside it is refused (whoever
            can write the registry could then replace the key).

    Raises:
        RegistryError: a key file inside the registry, unreadable, writable by group or others,
            not an Ed25519 key, or a verify key that is not the signing key's public half.
    """
    if signing_key_file is None and verify_key_file is None:
        return None
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

    private = public = None
    if signing_key_file is not None:
        data = _read_key_file(Path(signing_key_file), "FINML_SIGNING_KEY_FILE", registry_root, private=True)
        try:
            private = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as err:
            raise RegistryError(f"FINML_SIGNING_KEY_FILE={signing_key_file}: not a PEM private key ({err})") from None
        if not isinstance(private, Ed25519PrivateKey):
            raise RegistryError(f"FINML_SIGNING_KEY_FILE={signing_key_file}: not an Ed25519 key")
        public = private.public_key()
    if verify_key_file is not None:
        data = _read_key_file(Path(verify_key_file), "FINML_VERIFY_KEY_FILE", registry_root, private=False)
        try:
            given = serialization.load_pem_public_key(data)
        except ValueError as err:
            raise RegistryError(f"FINML_VERIFY_KEY_FILE={verify_key_file}: not a PEM public key ({err})") from None
        if not isinstance(given, Ed25519PublicKey):
            raise RegistryError(f"FINML_VERIFY_KEY_FILE={verify_key_file}: not an Ed25519 key")
        if public is not None and key_id(given) != key_id(public):
            raise RegistryError(f"FINML_VERIFY_KEY_FILE={verify_key_file} is not the public half of "
                                f"FINML_SIGNING_KEY_FILE={signing_key_file}")
        public = given
    return SigningKeys(public=public, private=private, key_id=key_id(public))


def configured_keys(registry_root: Path) -> SigningKeys | None:
    """:func:`load_keys` with the files named by the settings (``FINML_SIGNING_KEY_FILE``,
    ``FINML_VERIFY_KEY_FILE``), read now."""
    from models.settings import get_settings

    settings = get_settings()
    return load_keys(settings.signing_key_file, settings.verify_key_file, registry_root)


def generate_keypair(private_path: Path, public_path: Path) -> str:
    """Write a new Ed25519 key pair: the private key (PEM, PKCS#8, mode 0600, created
    exclusively: an existing file is never overwritten) and its public key (PEM, mode 0644).
    Returns the key id.

    Raises:
        FileExistsError: either file exists; FileNotFoundError: the folder of either does not
            exist (checked before anything is written; the folder is not created).
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private_path, public_path = Path(private_path), Path(public_path)
    for path in (private_path, public_path):
        if not path.parent.is_dir():
            raise FileNotFoundError(f"{path}: cannot create the key file: its folder {path.parent} does not exist "
                                    "(create it first, readable by the role that holds the key only)")
    if public_path.exists():
        raise FileExistsError(f"{public_path} exists; not overwriting a key")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    public_path.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                          serialization.PublicFormat.SubjectPublicKeyInfo))
    return key_id(key.public_key())
