"""Identifier rules: what a client may choose as an id, the same at every edge."""

import re
import sys
import unicodedata

import pytest
from pydantic import TypeAdapter, ValidationError

from shared.contracts.base import (
    FORBIDDEN_CHARACTER_CATEGORIES,
    FORBIDDEN_CHARACTER_RANGES,
    IDENTIFIER_MAX_LENGTH_CHARACTERS,
    IDENTIFIER_PATTERN,
    PATH_IDENTIFIER_PATTERN,
    Identifier,
    PathIdentifier,
    forbidden_character,
)

IDENTIFIER = TypeAdapter(Identifier)
PATH = TypeAdapter(PathIdentifier)


def test_the_forbidden_ranges_are_exactly_the_forbidden_categories() -> None:
    computed: list[tuple[int, int]] = []
    for code_point in range(sys.maxunicode + 1):
        if unicodedata.category(chr(code_point)) not in FORBIDDEN_CHARACTER_CATEGORIES:
            continue
        if computed and computed[-1][1] == code_point - 1:
            computed[-1] = (computed[-1][0], code_point)
        else:
            computed.append((code_point, code_point))
    assert tuple(computed) == FORBIDDEN_CHARACTER_RANGES


def test_the_fast_search_finds_exactly_the_forbidden_categories() -> None:
    """`forbidden_character` answers from a regex and an ASCII shortcut; walking every code
    point proves they say what the categories say."""
    for code_point in range(sys.maxunicode + 1):
        character = chr(code_point)
        forbidden = unicodedata.category(character) in FORBIDDEN_CHARACTER_CATEGORIES
        found = forbidden_character(f"ok{character}")
        assert (found is not None) == forbidden, hex(code_point)
        if found is not None:
            assert found.startswith(f"character 3 (U+{code_point:04X},"), found


def test_the_schema_pattern_refuses_every_forbidden_character_the_validator_refuses() -> None:
    pattern, path_pattern = re.compile(IDENTIFIER_PATTERN), re.compile(PATH_IDENTIFIER_PATTERN)
    for low, high in FORBIDDEN_CHARACTER_RANGES:
        for code_point in range(low, high + 1):
            if 0xD800 <= code_point <= 0xDFFF:
                continue  # surrogates are refused by the validator alone (see base.py)
            text = f"a{chr(code_point)}b"
            assert pattern.match(text) is None, hex(code_point)
            assert path_pattern.match(text) is None, hex(code_point)
    for allowed in ("alice", "Ærøskøbing", "用户-42", "a b", "x😀", "...", ".a", "e\u0301"):
        assert pattern.match(allowed), allowed
        assert path_pattern.match(allowed), allowed


@pytest.mark.parametrize(
    "value",
    ["a\x00b", "a\u202eb", "a\U000e0041b", "a\u200bb", "a\u2028b", "a\ud800b", "\x7f", ""],
)
def test_invisible_reordering_and_unencodable_characters_are_refused(value: str) -> None:
    for adapter in (IDENTIFIER, PATH):
        with pytest.raises(ValidationError):
            adapter.validate_python(value)


def test_ids_are_stored_in_nfc_so_equivalent_spellings_name_one_account() -> None:
    assert IDENTIFIER.validate_python("e\u0301") == "\u00e9"
    assert PATH.validate_python("Cafe\u0301") == "Caf\u00e9"


def test_length_counts_after_normalisation() -> None:
    assert IDENTIFIER.validate_python("x" * IDENTIFIER_MAX_LENGTH_CHARACTERS)
    with pytest.raises(ValidationError):
        IDENTIFIER.validate_python("x" * (IDENTIFIER_MAX_LENGTH_CHARACTERS + 1))
    with pytest.raises(ValidationError):
        IDENTIFIER.validate_python("x" * 10_000)


def test_a_decomposed_spelling_of_a_valid_id_is_accepted() -> None:
    """An NFD client (macOS file names, some keyboards) spells one stored character with two
    code points; the bound is on the stored, NFC form, so the same id is accepted either way."""
    composed = "\u00e9" * (IDENTIFIER_MAX_LENGTH_CHARACTERS - 22) + "x" * 22
    decomposed = unicodedata.normalize("NFD", composed)
    assert len(decomposed) > IDENTIFIER_MAX_LENGTH_CHARACTERS
    assert IDENTIFIER.validate_python(decomposed) == composed
    assert PATH.validate_python(decomposed) == composed


@pytest.mark.parametrize("value", ["a/b", ".", ".."])
def test_a_path_identifier_is_one_url_segment(value: str) -> None:
    assert IDENTIFIER.validate_python(value) == value
    with pytest.raises(ValidationError):
        PATH.validate_python(value)


def test_a_refusal_names_the_character_without_echoing_the_pattern() -> None:
    with pytest.raises(ValidationError) as raised:
        IDENTIFIER.validate_python("ok\u202eevil")
    message = str(raised.value)
    assert "U+202E" in message
    assert "pattern" not in message
