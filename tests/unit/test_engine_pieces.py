"""The engine's pure pieces: derived ids, dead letters, error kinds, replies, units of work."""

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError

from shared.contracts.envelope import CloudEvent
from shared.contracts.ledger import RecordEntry
from shared.engine.dead_letters import (
    DEAD_LETTER_HEADERS_MAX_BYTES,
    DEAD_LETTER_VALUE_MAX_BYTES,
    ERROR_MESSAGE_HEADER_MAX_BYTES,
    dead_letter,
    utf8_within,
)
from shared.engine.ids import derived_id
from shared.engine.inbox import NOTIFY_PAYLOAD_MAX_BYTES, notification, render_body
from shared.engine.messages import Incoming, ReplyKey
from shared.engine.partition_handler import HaltError, TransientError, is_transient
from shared.engine.work import Work
from tests.support.records import consumer_record

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def test_derived_ids_depend_on_the_whole_cause_and_the_index() -> None:
    first = derived_id("src", "c1", 0)
    assert first == derived_id("src", "c1", 0)
    assert len({first, derived_id("src", "c1", 1), derived_id("other", "c1", 0)}) == 3


def test_a_dead_letter_keeps_the_record_and_says_why_and_where() -> None:
    record = consumer_record("t.commands", 2, 41, b"k", b"value")
    letter = dead_letter(record, "invalid_json", "not JSON")
    headers = dict(letter.headers)
    assert (letter.topic, letter.key, letter.value) == ("t.commands.dlq", b"k", b"value")
    assert headers["error_code"] == b"invalid_json"
    assert (headers["original_partition"], headers["original_offset"]) == (b"2", b"41")
    assert "ledgerbus-truncated" not in headers


def test_an_oversized_dead_letter_is_truncated_and_says_its_original_size() -> None:
    value = b"x" * (DEAD_LETTER_VALUE_MAX_BYTES + 10)
    record = consumer_record("t.commands", 0, 0, b"k", value)
    letter = dead_letter(record, "record_too_large", "too large")
    headers = dict(letter.headers)
    assert len(letter.value) == DEAD_LETTER_VALUE_MAX_BYTES
    assert headers["ledgerbus-truncated"] == b"true"
    assert headers["original_size"] == str(len(value)).encode()


def test_huge_original_headers_are_dropped_and_counted() -> None:
    record = consumer_record("t.commands", 0, 0, b"k", b"v")
    record.headers = [("h", b"y" * DEAD_LETTER_HEADERS_MAX_BYTES)] * 2
    headers = dict(dead_letter(record, "invalid_json", "x").headers)
    assert headers["ledgerbus-headers-dropped"] == b"2"
    assert "h" not in headers


def test_error_messages_are_cut_on_a_character_boundary() -> None:
    cut = utf8_within("é" * ERROR_MESSAGE_HEADER_MAX_BYTES, ERROR_MESSAGE_HEADER_MAX_BYTES)
    assert len(cut) <= ERROR_MESSAGE_HEADER_MAX_BYTES
    assert cut.decode("utf-8") == "é" * (ERROR_MESSAGE_HEADER_MAX_BYTES // 2)
    assert utf8_within("lone \ud800", 100) == b"lone \\ud800"


def test_a_refused_size_is_not_transient_but_a_lost_connection_is() -> None:
    assert not is_transient(MessageSizeTooLargeError())
    assert not is_transient(HaltError("x"))
    assert not is_transient(KeyError("a bug"))
    assert is_transient(KafkaConnectionError())
    assert is_transient(TransientError("conflict"))


def test_a_reply_body_gets_its_position_last_and_renders_identically() -> None:
    body = '{"id":"e","balance":10}'
    assert render_body(body, None) == body.encode()
    assert render_body(body, "1:7") == b'{"id":"e","balance":10,"position":"1:7"}'
    assert render_body(body, "1:7") == render_body(body, "1:7")


def test_a_notification_too_large_for_postgres_names_only_the_command() -> None:
    key = ReplyKey("src", "c1")
    small = orjson.loads(notification(key, 201, b'{"a":1}'))
    assert small["body"] == {"a": 1}
    big = orjson.loads(notification(key, 201, orjson.dumps({"a": "x" * NOTIFY_PAYLOAD_MAX_BYTES})))
    assert big == {"source": "src", "message_id": "c1"}


def incoming(command_id: str) -> Incoming[Any]:
    data = RecordEntry(app="healthai", owner_id="alice", operation="CREDIT_ADD", nonce="n")
    envelope = CloudEvent(
        specversion="1.0", id=command_id, source="tests", type="ledger.record_entry.v1",
        time=NOW, data=data.model_dump(),
    )  # fmt: skip
    return Incoming(consumer_record("c", 0, 0, b"k", b"v"), envelope, data, notify=True)


def work() -> Work[None]:
    return Work(connection=None, state=None, now=NOW, source="ledgerbus/tests",
                topic_of=lambda topic: f"p.{topic}")  # fmt: skip


def test_emitted_messages_are_named_after_their_cause_and_order() -> None:
    unit, cause = work(), incoming("c1")
    data = cause.data
    first = unit.emit(cause, topic="events", key="k", message_type="t", data=data)
    second = unit.emit(cause, topic="events", key="k", message_type="t", data=data)
    assert first.message_id == derived_id("tests", "c1", 0)
    assert second.message_id == derived_id("tests", "c1", 1)
    envelope = orjson.loads(unit.messages[0].value)
    assert (envelope["id"], envelope["causationid"]) == (first.message_id, "c1")
    assert unit.messages[0].topic == "p.events"


def test_replies_wait_for_the_position_of_their_event_and_retries_share_it() -> None:
    unit, cause, retry = work(), incoming("c1"), incoming("c2")
    emitted = unit.emit(cause, topic="events", key="k", message_type="t", data=cause.data)
    unit.reply(cause.identity, 201, {"id": 1}, scope="healthai", event=emitted)
    unit.reply(retry.identity, 200, {"id": 1}, scope="healthai", position_of=cause.identity)
    replies, messages = unit.finished_replies({})
    assert [reply.awaits_position for reply in replies] == [True, True]
    assert messages[0].reply_keys == (cause.identity, retry.identity)


def test_a_reply_taking_an_earlier_position_reads_it_from_the_inbox() -> None:
    from shared.engine.inbox import StoredPosition

    unit, retry = work(), incoming("c2")
    earlier = ReplyKey("tests", "c1")
    unit.reply(retry.identity, 200, {"id": 1}, scope=None, position_of=earlier)
    assert unit.positions_wanted() == [earlier]
    replies, _ = unit.finished_replies({earlier: StoredPosition("3:9", awaits=False)})
    assert (replies[0].position, replies[0].awaits_position) == ("3:9", False)
    with pytest.raises(TransientError):
        unit.finished_replies({earlier: StoredPosition(None, awaits=True)})
