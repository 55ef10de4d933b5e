"""End users' bearer tokens: HS256 JWTs issued at login and checked by the gateway.

The algorithm is pinned (a token saying `alg: none` or RS256 is refused before its signature is
even considered), and `iss`, `aud`, `exp`, `iat` and `sub` are required and checked, so a token
minted for another audience, an expired one or a tampered one is a 401.
"""

import hashlib
import time
import uuid
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import jwt

TOKEN_ALGORITHM = "HS256"
TOKEN_ISSUER = "ledgerbus"
TOKEN_AUDIENCE = "ledgerbus-users"
TOKEN_LIFETIME_SECONDS = 1_800
CLOCK_SKEW_LEEWAY_SECONDS = 5
"""A token issued by a host whose clock runs a little ahead is still accepted."""
TOKEN_MAX_CHARACTERS = 4_096
"""A longer bearer value is refused unread."""
REQUIRED_CLAIMS = ("iss", "aud", "exp", "iat", "sub")


class InvalidTokenError(ValueError):
    """The bearer value is not a valid user token; the message says why, for logs only."""


@dataclass(frozen=True, slots=True)
class IssuedToken:
    access_token: str
    expires_in: int


class UserTokens:
    def __init__(self, secret: str) -> None:
        # The signing key is the secret's SHA-256: always the 256 bits HS256 wants, whatever
        # the length of the configured secret.
        assert secret, "a JWT secret is configured"
        self._secret = hashlib.sha256(secret.encode()).digest()

    def issue(self, user_id: UUID, *, now: float | None = None) -> IssuedToken:
        issued_at = int(time.time() if now is None else now)
        claims: dict[str, Any] = {
            "iss": TOKEN_ISSUER,
            "aud": TOKEN_AUDIENCE,
            "sub": str(user_id),
            "iat": issued_at,
            "exp": issued_at + TOKEN_LIFETIME_SECONDS,
            "jti": uuid.uuid4().hex,
        }
        token = jwt.encode(claims, self._secret, algorithm=TOKEN_ALGORITHM)
        return IssuedToken(token, TOKEN_LIFETIME_SECONDS)

    def verify(self, token: str) -> UUID:
        """The user id the token was issued to, or `InvalidTokenError`."""
        if len(token) > TOKEN_MAX_CHARACTERS:
            raise InvalidTokenError("the token is too long")
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[TOKEN_ALGORITHM],
                audience=TOKEN_AUDIENCE,
                issuer=TOKEN_ISSUER,
                leeway=CLOCK_SKEW_LEEWAY_SECONDS,
                options={"require": list(REQUIRED_CLAIMS)},
            )
            return UUID(str(claims["sub"]))
        except (jwt.PyJWTError, ValueError) as error:
            raise InvalidTokenError(type(error).__name__) from error
