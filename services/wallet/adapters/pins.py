"""PIN hashing: argon2id at OWASP's minimum over an HMAC of the PIN with a secret pepper.

The pepper lives in the secrets (`LEDGERBUS_PIN_PEPPER`), not in the database: five digits are
only 100,000 guesses, so a stolen `wallet.users` must not be enough to try them. argon2 runs in
a bounded thread pool (it releases the GIL), never on the event loop.
"""

import asyncio
import hashlib
import hmac
import os
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

ARGON2_MEMORY_KIB = 19_456
ARGON2_TIME_COST = 2
ARGON2_PARALLELISM = 1
ARGON2_HASH_BYTES = 32
ARGON2_SALT_BYTES = 16
PIN_HASH_THREADS_MAX = 4
"""Concurrent hashes at most: each holds 19 MiB, and more threads than cores gain nothing."""


class PinHasher:
    def __init__(self, pepper: str) -> None:
        assert pepper, "a pepper is configured"
        self._pepper = pepper.encode()
        self._hasher = PasswordHasher(
            time_cost=ARGON2_TIME_COST, memory_cost=ARGON2_MEMORY_KIB,
            parallelism=ARGON2_PARALLELISM, hash_len=ARGON2_HASH_BYTES,
            salt_len=ARGON2_SALT_BYTES, type=Type.ID,
        )  # fmt: skip
        self._threads = ThreadPoolExecutor(PIN_HASH_THREADS_MAX, thread_name_prefix="pin-hash")
        self._decoy = self._hasher.hash(os.urandom(16).hex())
        """Verified for unknown emails, so an unknown account costs what a known one does."""

    def _peppered(self, pin: str) -> str:
        return hmac.new(self._pepper, pin.encode(), hashlib.sha256).hexdigest()

    async def hash(self, pin: str) -> str:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads, self._hasher.hash, self._peppered(pin))

    async def verify(self, pin_hash: str | None, pin: str) -> bool:
        """True when `pin` matches; with no hash (an unknown user) the decoy is checked."""
        loop = asyncio.get_running_loop()
        return (
            await loop.run_in_executor(
                self._threads, self._verify, pin_hash or self._decoy, self._peppered(pin)
            )
            and pin_hash is not None
        )

    def _verify(self, pin_hash: str, peppered: str) -> bool:
        try:
            return self._hasher.verify(pin_hash, peppered)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)
