"""Base model and field types shared by every contract."""

import re
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints, WithJsonSchema

IDENTIFIER_MAX_LENGTH_CHARACTERS = 128
"""Owner ids, nonces and message ids are bounded so one record can never carry a huge key.
The bound counts the id once normalised to NFC (how it is stored)."""
DECOMPOSED_INPUT_FACTOR = 4
"""A decomposed (NFD) spelling can be several code points per stored character; input up to
this many times a bound is read, then measured once normalised."""
SOURCE_MAX_LENGTH_CHARACTERS = 256
APP_NAME_MAX_LENGTH_CHARACTERS = 32
OPERATION_NAME_MAX_LENGTH_CHARACTERS = 64

FORBIDDEN_CHARACTER_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
"""Controls, format characters (bidi overrides, zero-width and tag characters), surrogates and
line or paragraph separators: invisible or reordering characters let two ids that look alike
name different accounts, and NUL or a lone surrogate cannot be stored or encoded at all."""

FORBIDDEN_CHARACTER_RANGES: tuple[tuple[int, int], ...] = (
    (0x0000, 0x001F), (0x007F, 0x009F), (0x00AD, 0x00AD), (0x0600, 0x0605), (0x061C, 0x061C),
    (0x06DD, 0x06DD), (0x070F, 0x070F), (0x0890, 0x0891), (0x08E2, 0x08E2), (0x180E, 0x180E),
    (0x200B, 0x200F), (0x2028, 0x202E), (0x2060, 0x2064), (0x2066, 0x206F), (0xD800, 0xDFFF),
    (0xFEFF, 0xFEFF), (0xFFF9, 0xFFFB), (0x110BD, 0x110BD), (0x110CD, 0x110CD),
    (0x13430, 0x13438), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
)  # fmt: skip
"""The code points of the forbidden categories in Python 3.11's Unicode database (14.0); a unit
test recomputes them from `unicodedata`, so a newer database cannot drift silently."""


def _escape(code_point: int) -> str:
    """A form Rust's regex (pydantic), Python's `re` (schemathesis) and JavaScript all read:
    `\\uXXXX` for the basic plane, the character itself beyond it (there is no common escape)."""
    return f"\\u{code_point:04x}" if code_point <= 0xFFFF else chr(code_point)


def _character_class(extra: str = "") -> str:
    """The body of a class matching every forbidden character (surrogates are checked in
    Python: Rust strings cannot hold them, so the regex cannot name them)."""
    pieces = [
        _escape(low) if low == high else f"{_escape(low)}-{_escape(high)}"
        for low, high in FORBIDDEN_CHARACTER_RANGES
        if not 0xD800 <= low <= 0xDFFF
    ]
    return "".join(pieces) + extra


def forbidden_character_class(extra: str = "") -> str:
    """The body of a regex class matching every forbidden character (and `extra`), for the
    schema patterns of other visible text (names, notes, emails)."""
    return _character_class(extra)


IDENTIFIER_PATTERN = f"^[^{_character_class()}]+$"
_PATH_CLASS = _character_class("/")
PATH_IDENTIFIER_PATTERN = (
    f"^(?:[^{_PATH_CLASS}.][^{_PATH_CLASS}]*|\\.[^{_PATH_CLASS}.][^{_PATH_CLASS}]*"
    f"|\\.\\.[^{_PATH_CLASS}]+)$"
)
"""A path identifier also refuses `/` (it would split the URL path) and the dot segments `.` and
`..` (clients normalise them away), written without look-ahead, which Rust's regex lacks."""


class ContractModel(BaseModel):
    """Frozen, strict about unknown fields: the shape of everything crossing an edge."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False)


def _require_utc(value: datetime) -> datetime:
    """Reject naive times and normalise every aware time to UTC (a no-op for `Z` times)."""
    offset = value.utcoffset()
    if offset is None:
        raise ValueError("time must carry a UTC offset, for example 2026-01-31T12:00:00Z")
    if not offset:
        return value
    try:
        return value.astimezone(UTC)
    except OverflowError:
        # 9999-12-31T23:59:59-01:00 is past the last UTC time Python can hold; pydantic would
        # let the OverflowError through as a crash, not a validation error.
        raise ValueError("time must fall within years 1 to 9999 once in UTC") from None


UtcDateTime = Annotated[datetime, AfterValidator(_require_utc)]
"""An aware datetime, always normalised to UTC."""


_FORBIDDEN_SEARCH = re.compile(f"[{_character_class()}\\ud800-\\udfff]")
"""Finds a forbidden character in C; Python's `re`, unlike Rust's, can name surrogates."""


def forbidden_character(value: str) -> str | None:
    """A description of the first forbidden character of `value`, or None when it has none.

    Every id of every record passes here, so the common answer is found in C: printable ASCII
    (the only forbidden ASCII characters are controls, which are not printable), else one
    regex search over the ranges a unit test derives from the categories.
    """
    if value.isascii() and value.isprintable():
        return None
    found = _FORBIDDEN_SEARCH.search(value)
    if found is None:
        return None
    character = found.group()
    category = unicodedata.category(character)
    assert category in FORBIDDEN_CHARACTER_CATEGORIES, f"U+{ord(character):04X} is {category}"
    return f"character {found.start() + 1} (U+{ord(character):04X}, category {category})"


def _identifier_rules(maximum_length: int, *, path_segment: bool) -> AfterValidator:
    def check(value: str) -> str:
        # Canonically equivalent spellings must name one account, so ids are stored in NFC.
        normalised = unicodedata.normalize("NFC", value)
        if len(normalised) > maximum_length:
            raise ValueError(f"at most {maximum_length} characters once normalised to NFC")
        found = forbidden_character(normalised)
        if found is not None:
            raise ValueError(f"{found} is not allowed in an identifier")
        if path_segment and "/" in normalised:
            raise ValueError("'/' is not allowed in an id that names a URL path segment")
        if path_segment and normalised in (".", ".."):
            raise ValueError("'.' and '..' are not ids: clients remove them from URL paths")
        return normalised

    return AfterValidator(check)


def _schema(maximum_length: int, pattern: str) -> WithJsonSchema:
    """The schema states the rules (so generated clients and schemathesis know them); the
    validator enforces them with a message naming the offending character."""
    return WithJsonSchema(
        {"type": "string", "minLength": 1, "maxLength": maximum_length, "pattern": pattern}
    )


Identifier = Annotated[
    str,
    StringConstraints(
        min_length=1, max_length=IDENTIFIER_MAX_LENGTH_CHARACTERS * DECOMPOSED_INPUT_FACTOR
    ),
    _schema(IDENTIFIER_MAX_LENGTH_CHARACTERS, IDENTIFIER_PATTERN),
    _identifier_rules(IDENTIFIER_MAX_LENGTH_CHARACTERS, path_segment=False),
]
"""A free-form identifier chosen by a client: visible characters only, bounded, in NFC."""

PathIdentifier = Annotated[
    str,
    StringConstraints(
        min_length=1, max_length=IDENTIFIER_MAX_LENGTH_CHARACTERS * DECOMPOSED_INPUT_FACTOR
    ),
    _schema(IDENTIFIER_MAX_LENGTH_CHARACTERS, PATH_IDENTIFIER_PATTERN),
    _identifier_rules(IDENTIFIER_MAX_LENGTH_CHARACTERS, path_segment=True),
]
"""An identifier that also appears as one URL path segment (an owner id): no `/`, not `.`."""

SourceText = Annotated[
    str,
    StringConstraints(
        min_length=1, max_length=SOURCE_MAX_LENGTH_CHARACTERS * DECOMPOSED_INPUT_FACTOR
    ),
    _schema(SOURCE_MAX_LENGTH_CHARACTERS, IDENTIFIER_PATTERN),
    _identifier_rules(SOURCE_MAX_LENGTH_CHARACTERS, path_segment=False),
]
"""A CloudEvents `source`: part of a message's identity, so held to the identifier rules."""

AppName = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z][a-z0-9_-]*$", max_length=APP_NAME_MAX_LENGTH_CHARACTERS),
]
"""An application name such as `healthai`: lowercase, so it is safe in keys and URLs."""

OperationName = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]{0,63}$")]
"""A ledger operation name such as `CREDIT_SPEND`, as catalogs define them."""

RequestedOperation = Annotated[
    str,
    StringConstraints(min_length=1, max_length=OPERATION_NAME_MAX_LENGTH_CHARACTERS),
    _schema(OPERATION_NAME_MAX_LENGTH_CHARACTERS, IDENTIFIER_PATTERN),
    _identifier_rules(OPERATION_NAME_MAX_LENGTH_CHARACTERS, path_segment=False),
]
"""An operation as a command names it: any visible text, so that a name outside the catalog is
decided (`unknown_operation`) by the processor rather than refused as malformed."""


VISIBLE_TEXT_PATTERN = (
    f"^[^{_character_class()}]*[^{_character_class()}\\s][^{_character_class()}]*$"
)
"""Visible text for schemas: no forbidden character (ADR 0016), and not only whitespace."""


def visible_text(maximum_characters: int, maximum_bytes: int | None = None) -> Callable[[str], str]:
    """A validator of visible text (a name, a note, a label): in NFC, without forbidden
    characters, not blank, and within its bounds once normalised, since NFC can make a
    string longer (U+1D160 becomes three characters of four bytes each)."""

    def check(value: str) -> str:
        normalised = unicodedata.normalize("NFC", value)
        found = forbidden_character(normalised)
        if found is not None:
            raise ValueError(f"{found} is not allowed here")
        if not normalised.strip():
            raise ValueError("must not be blank")
        too_long = len(normalised) > maximum_characters or (
            maximum_bytes is not None and len(normalised.encode()) > maximum_bytes
        )
        if too_long:
            bytes_bound = "" if maximum_bytes is None else f" and {maximum_bytes} bytes of UTF-8"
            raise ValueError(
                f"must be at most {maximum_characters} characters{bytes_bound} once normalised"
                " (NFC)"
            )
        return normalised

    return check


def utc_now() -> datetime:
    """The current time in UTC; the one clock every service reads."""
    return datetime.now(UTC)
