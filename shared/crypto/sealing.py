"""Sealing personal data with a per-user key: AES-256-GCM, bound to the user's id.

A sealed value is `v1.` followed by the base64url (unpadded) of a fresh 96-bit nonce and the
ciphertext with its tag. The user id is the associated data, so a value sealed for one user
cannot be passed off as another's. Whoever holds the key (`wallet.user_keys`) can open it;
deleting the key shreds every copy, in the log included (ADR 0021).
"""

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SEALED_VERSION_PREFIX = "v1."
KEY_BYTES = 32
NONCE_BYTES = 12
PLAINTEXT_MAX_BYTES = 1_400
"""What fits the contracts' sealed field (2,048 characters) once encrypted and encoded."""


class SealError(ValueError):
    """The value is not sealed for this user with this key (tampered, or another key)."""


def new_key() -> bytes:
    return os.urandom(KEY_BYTES)


def seal(key: bytes, owner: str, plaintext: str) -> str:
    data = plaintext.encode()
    assert len(key) == KEY_BYTES, "sealing keys are 256-bit"
    assert len(data) <= PLAINTEXT_MAX_BYTES, "sealed values are bounded"
    nonce = os.urandom(NONCE_BYTES)
    sealed = nonce + AESGCM(key).encrypt(nonce, data, owner.encode())
    return SEALED_VERSION_PREFIX + base64.urlsafe_b64encode(sealed).rstrip(b"=").decode()


def unseal(key: bytes, owner: str, sealed: str) -> str:
    if not sealed.startswith(SEALED_VERSION_PREFIX):
        raise SealError("not a sealed value of a known version")
    text = sealed[len(SEALED_VERSION_PREFIX) :]
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        plain = AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], owner.encode())
    except (ValueError, InvalidTag) as error:
        raise SealError("the value does not open with this user's key") from error
    return plain.decode()
