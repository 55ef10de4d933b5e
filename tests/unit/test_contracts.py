"""Envelope parsing: every way a record can be wrong has its own code."""

from datetime import UTC, datetime

import orjson
import pytest
from pydantic import ValidationError

from shared.contracts.base import utc_now
from shared.contracts.envelope import build_envelope, encode_envelope
from shared.contracts.ledger import LEDGER_COMMANDS, RECORD_ENTRY_V1, RecordEntry
from shared.contracts.registry import RECORD_VALUE_MAX_BYTES, ParsedMessage, RejectedRecord
from shared.kafka.positions import PositionError, never_written, parse_position, reached


def envelope_bytes(**data: object) -> bytes:
    body = {
        "app": "healthai",
        "owner_id": "alice",
        "operation": "CREDIT_ADD",
        "nonce": "n1",
        **data,
    }
    return orjson.dumps(
        {
            "specversion": "1.0",
            "id": "c1",
            "source": "tests",
            "type": RECORD_ENTRY_V1,
            "time": "2026-11-23T12:00:00+02:00",
            "data": body,
        }
    )


def test_a_valid_command_parses_and_its_time_becomes_utc() -> None:
    parsed = LEDGER_COMMANDS.parse(envelope_bytes())
    assert isinstance(parsed, ParsedMessage)
    assert parsed.data == RecordEntry(
        app="healthai", owner_id="alice", operation="CREDIT_ADD", nonce="n1"
    )
    assert parsed.envelope.time == datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


ABSENT = object()
"""An attribute value meaning: leave the attribute out of the envelope."""


def envelope_with(**attributes: object) -> bytes:
    envelope = orjson.loads(envelope_bytes())
    envelope.update(attributes)
    for name in [name for name, value in attributes.items() if value is ABSENT]:
        del envelope[name]
    return orjson.dumps(envelope)


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (b"", "empty_record"),
        (b"x" * (RECORD_VALUE_MAX_BYTES + 1), "record_too_large"),
        (b"{nope", "invalid_json"),
        (b"[1, 2]", "not_a_cloudevent"),
        (b'{"specversion": "1.0"}', "not_a_cloudevent"),
        (envelope_bytes().replace(b"record_entry", b"other"), "unknown_type"),
        (envelope_bytes(owner_id=""), "invalid_data"),
        (envelope_bytes(extra="field"), "invalid_data"),
        (envelope_bytes().replace(b"+02:00", b""), "not_a_cloudevent"),
        # Past the last UTC time Python holds once normalised: a refusal, never a crash that
        # would halt the partition (found by review).
        (envelope_with(time="9999-12-31T23:59:59-01:00"), "not_a_cloudevent"),
        (envelope_with(time="0001-01-01T00:30:00+01:00"), "not_a_cloudevent"),
    ],
)
def test_each_kind_of_bad_record_has_its_code(value: bytes, code: str) -> None:
    result = LEDGER_COMMANDS.parse(value)
    assert isinstance(result, RejectedRecord)
    assert result.code == code and result.message


@pytest.mark.parametrize(
    ("attributes", "extensions"),
    [
        (
            {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
            {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
        ),
        (
            {"partitionkey": "alice", "sampled": True, "hops": 2},
            {"partitionkey": "alice", "sampled": True, "hops": 2},
        ),
        ({"time": ABSENT}, {}),
        ({"datacontenttype": "application/json; charset=utf-8"}, {}),
        (
            {"unsetextension": None, "datacontenttype": None, "subject": None, "time": None},
            {"unsetextension": None},
        ),
        ({"big": 2**31 - 1, "small": -(2**31)}, {"big": 2**31 - 1, "small": -(2**31)}),
    ],
    ids=[
        "traceparent",
        "several extensions",
        "no time",
        "charset parameter",
        "null is unset",
        "32-bit integers",
    ],
)
def test_a_cloudevent_as_the_specification_allows_it_is_accepted(
    attributes: dict[str, object], extensions: dict[str, object]
) -> None:
    """Clients with default settings add extension attributes, leave `time` out or write
    unset attributes as null; the specification allows each, so refusing them would
    dead-letter valid commands."""
    parsed = LEDGER_COMMANDS.parse(envelope_with(**attributes))
    assert isinstance(parsed, ParsedMessage), parsed
    assert (parsed.envelope.model_extra or {}) == extensions


@pytest.mark.parametrize(
    "attributes",
    [
        {"TraceParent": "x"},
        {"trace_parent": "x"},
        {"averyveryverylongextensionname": "x"},
        {"nested": {"a": 1}},
        {"big": "x" * 1025},
        {f"ext{index}": index for index in range(17)},
        {"datacontenttype": "text/plain"},
        {"traceparent\n": "x"},
        {"seq": 2**31},
        {"seq": orjson.Fragment(str(10**30).encode())},
        {"note": "a\x00b"},
        {"note": "a\x85b"},
    ],
    ids=[
        "uppercase",
        "underscore",
        "too long a name",
        "nested value",
        "huge value",
        "too many",
        "not json",
        "newline after the name",
        "integer past 32 bits",
        "integer past 64 bits",
        "nul in a value",
        "c1 control in a value",
    ],
)
def test_an_attribute_the_specification_does_not_allow_is_not_a_cloudevent(
    attributes: dict[str, object],
) -> None:
    result = LEDGER_COMMANDS.parse(envelope_with(**attributes))
    assert isinstance(result, RejectedRecord)
    assert result.code == "not_a_cloudevent", result


def test_contract_models_are_frozen_and_forbid_extra_fields() -> None:
    entry = RecordEntry(app="healthai", owner_id="a", operation="CREDIT_ADD", nonce="n")
    with pytest.raises(ValidationError):
        RecordEntry(app="healthai", owner_id="a", operation="CREDIT_ADD", nonce="n", amount=1)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        entry.nonce = "other"  # type: ignore[misc]


def test_an_encoded_envelope_round_trips() -> None:
    data = RecordEntry(app="travelai", owner_id="b", operation="LOYALTY_BONUS", nonce="n")
    envelope = build_envelope(
        message_type=RECORD_ENTRY_V1, source="tests", subject="travelai:b", data=data
    )
    parsed = LEDGER_COMMANDS.parse(encode_envelope(envelope))
    assert isinstance(parsed, ParsedMessage) and parsed.data == data
    assert parsed.envelope.time is not None and parsed.envelope.time <= utc_now()


def test_positions_parse_and_compare() -> None:
    assert parse_position("2:1041") == {2: 1041}
    assert parse_position("2:5,3:77,2:9") == {2: 9, 3: 77}
    assert reached({2: 1042}, {2: 1041}) and not reached({2: 1041}, {2: 1041})
    for bad in ("", "2", "a:1", "2:-1"):
        with pytest.raises(PositionError):
            parse_position(bad)


def test_a_position_is_never_written_only_where_the_log_end_says_so() -> None:
    assert never_written({0: 5, 1: 9}, {0: 5, 1: 10}, {}) == [0]
    # A partition the end probe missed is not judged; a known checkpoint raises the end.
    assert never_written({3: 1273}, {0: 7}, {}) == []
    assert never_written({2: 40}, {2: 0}, {2: 41}) == []
