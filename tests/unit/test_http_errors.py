"""What a validation error echoes back: the input when it is short and writable as JSON, else
nothing (never a value that breaks the answer or misstates what was sent)."""

import orjson
import pytest

from shared.http.errors import ECHOED_INPUT_MAX_CHARACTERS, encode_json, validation_errors


def echoed(value: object) -> dict[str, object]:
    (item,) = validation_errors([{"type": "t", "loc": ("body", "x"), "msg": "m", "input": value}])
    orjson.loads(encode_json(item))  # the answer can always be written
    return item


@pytest.mark.parametrize(
    "value", [10**40, -(10**40), 2**63, float("inf"), float("-inf"), float("nan"), "x" * 1_000]
)
def test_an_input_json_cannot_hold_faithfully_is_not_echoed(value: object) -> None:
    assert "input" not in echoed(value)


@pytest.mark.parametrize("value", [2**63 - 1, -(2**63), 1.5, True, "short"])
def test_a_short_writable_input_is_echoed_as_sent(value: object) -> None:
    assert echoed(value)["input"] == value


def test_a_lone_surrogate_is_echoed_escaped_and_a_long_text_is_bounded() -> None:
    assert echoed("a\ud800b")["input"] != "a\ud800b"
    assert "input" not in echoed("y" * (ECHOED_INPUT_MAX_CHARACTERS + 1))
