"""What a name, an email and a PIN may be, and how an email is compared.

Pure rules shared by registration and login; the HTTP schemas apply them at the edge.
"""

import re
import unicodedata

PIN_PATTERN = re.compile(r"[0-9]{5}")
"""Exactly five ASCII digits (`fullmatch`): the seed's rule, without its `int()` loophole
that let `" 1234"` or `"1_234"` through."""
EMAIL_MAX_CHARACTERS = 254
NAME_MAX_CHARACTERS = 100
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s.][^@\s]*\.[^@\s.]+")


def is_pin(value: str) -> bool:
    return PIN_PATTERN.fullmatch(value) is not None


def is_email(value: str) -> bool:
    return len(value) <= EMAIL_MAX_CHARACTERS and _EMAIL.fullmatch(value) is not None


def email_key(email: str) -> str:
    """How emails are compared: NFC, then case-folded (`Bob@X.com` is `bob@x.com`)."""
    return unicodedata.normalize("NFC", email).casefold()
