"""The AsyncAPI document: a channel per topic, a message per type, valid for the official parser.

The document is checked twice: here for the properties the parser does not know about (a topic
listed twice is valid AsyncAPI, but wrong for us), and by `tools/asyncapi/validate.mjs`, which
runs the official `@asyncapi/parser` with its default ruleset.
"""

import json
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

import pytest
from pydantic import Field

from shared.contracts.asyncapi import (
    DEAD_LETTER_MESSAGE_KEY,
    build_asyncapi_document,
    component_key,
    render_asyncapi_html,
)
from shared.contracts.base import ContractModel
from shared.contracts.envelope import CLOUDEVENTS_CONTENT_TYPE
from shared.contracts.ledger import LEDGER_COMMANDS, LEDGER_EVENTS
from shared.contracts.registry import MessageKind, MessageRegistry, MessageType

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
VALIDATOR_DIRECTORY = REPOSITORY_ROOT / "tools" / "asyncapi"
VALIDATOR_SCRIPT = VALIDATOR_DIRECTORY / "validate.mjs"
VALIDATION_TIMEOUT_SECONDS = 120
"""Node starts and the parser loads its rulesets in a few seconds; a minute more is a hang."""

SEVERITY_ERROR = 0
SEVERITY_WARNING = 1
EXPECTED_INFORMATION_CODES = frozenset({"asyncapi-latest-version"})
"""The parser's one remark at severity information: 3.1.0 exists and we write 3.0.0 on purpose,
the version FastStream and the AsyncAPI React component in the HTML page are built around."""

LEDGER_TOPICS = [("ledger.commands", LEDGER_COMMANDS), ("ledger.events", LEDGER_EVENTS)]


@pytest.fixture(scope="module")
def ledger_document() -> dict[str, Any]:
    return build_asyncapi_document(LEDGER_TOPICS, "1.2.3")


def validate_with_official_parser(document: dict[str, Any]) -> dict[str, Any]:
    """Run the official parser on `document`; fail, never skip, when it is not installed."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed: install Node 20 and run `make tools`")
    if not (VALIDATOR_DIRECTORY / "node_modules" / "@asyncapi" / "parser").is_dir():
        pytest.fail("the AsyncAPI parser is not installed in tools/asyncapi: run `make tools`")
    completed = subprocess.run(
        [node, str(VALIDATOR_SCRIPT)],
        input=json.dumps(document),
        capture_output=True,
        text=True,
        timeout=VALIDATION_TIMEOUT_SECONDS,
        check=False,
    )
    assert completed.returncode == 0, f"{completed.stdout}\n{completed.stderr}"
    report: dict[str, Any] = json.loads(completed.stdout)
    return report


def assert_no_errors_nor_warnings(report: dict[str, Any]) -> None:
    diagnostics = report["diagnostics"]
    serious = [d for d in diagnostics if d["severity"] in (SEVERITY_ERROR, SEVERITY_WARNING)]
    assert serious == [], json.dumps(serious, indent=2)
    remarks = {diagnostic["code"] for diagnostic in diagnostics}
    assert remarks <= EXPECTED_INFORMATION_CODES, json.dumps(diagnostics, indent=2)
    assert report["parsed"] is True


def references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from references(value)
    elif isinstance(node, list):
        for item in node:
            yield from references(item)


def resolve(document: dict[str, Any], reference: str) -> Any:
    assert reference.startswith("#/"), f"{reference} points outside the document"
    node: Any = document
    for token in reference.removeprefix("#/").split("/"):
        name = token.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict), f"{reference} goes through a non-object at {name}"
        assert name in node, f"{reference} does not resolve: no {name}"
        node = node[name]
    return node


def test_each_topic_is_exactly_one_channel(ledger_document: dict[str, Any]) -> None:
    addresses = [channel["address"] for channel in ledger_document["channels"].values()]
    assert Counter(addresses).most_common(1)[0][1] == 1, addresses
    assert sorted(addresses) == sorted(
        ["ledger.commands", "ledger.events", "ledger.commands.dlq", "ledger.events.dlq"]
    )
    assert set(ledger_document["channels"]) == {component_key(a) for a in addresses}


def test_every_registered_type_is_one_message_named_by_its_type(
    ledger_document: dict[str, Any],
) -> None:
    messages = ledger_document["components"]["messages"]
    names = Counter(message["name"] for message in messages.values())
    for topic, registry in LEDGER_TOPICS:
        channel = ledger_document["channels"][component_key(topic)]
        for message_type in registry.all():
            key = component_key(message_type.name)
            assert names[message_type.name] == 1
            message = messages[key]
            assert message["name"] == message["title"] == message_type.name
            assert message["summary"] == message_type.description
            assert message["contentType"] == CLOUDEVENTS_CONTENT_TYPE
            assert message["bindings"]["kafka"]["key"]["type"] == "string"
            assert "aggregate id" in message["bindings"]["kafka"]["key"]["description"]
            assert channel["messages"][key] == {"$ref": f"#/components/messages/{key}"}
        assert len(channel["messages"]) == len(registry.all())
    registered = {t.name for _, registry in LEDGER_TOPICS for t in registry.all()}
    assert set(names) == registered | {DEAD_LETTER_MESSAGE_KEY}


def test_every_payload_fixes_its_type(ledger_document: dict[str, Any]) -> None:
    for message in ledger_document["components"]["messages"].values():
        if message["name"] == DEAD_LETTER_MESSAGE_KEY:
            continue
        type_schema = message["payload"]["properties"]["type"]
        fixed = type_schema.get("const", (type_schema.get("enum") or [None])[0])
        assert fixed == message["name"]
        assert "type" in message["payload"]["required"]
        assert "$defs" not in message["payload"]


def test_the_document_is_self_contained(ledger_document: dict[str, Any]) -> None:
    found = list(references(ledger_document))
    assert "#/components/schemas/RecordEntry" in found
    for reference in found:
        resolve(ledger_document, reference)
    json.dumps(ledger_document, allow_nan=False)


def test_operations_say_who_sends_and_who_receives(ledger_document: dict[str, Any]) -> None:
    operations = ledger_document["operations"]
    actions = sorted((o["channel"]["$ref"], o["action"]) for o in operations.values())
    assert actions == [
        ("#/channels/ledger_commands", "receive"),
        ("#/channels/ledger_commands", "send"),
        ("#/channels/ledger_commands_dlq", "receive"),
        ("#/channels/ledger_events", "receive"),
        ("#/channels/ledger_events_dlq", "receive"),
    ]
    events = operations["receive_ledger_events"]["messages"]
    assert len(events) == len(LEDGER_EVENTS.all())


def test_dead_letter_channels_document_their_headers(ledger_document: dict[str, Any]) -> None:
    letter = ledger_document["components"]["messages"][DEAD_LETTER_MESSAGE_KEY]
    headers = letter["headers"]["properties"]
    for header in (
        "error_code",
        "error_message",
        "original_topic",
        "original_partition",
        "original_offset",
    ):
        assert headers[header]["type"] == "string"
    channel = ledger_document["channels"]["ledger_events_dlq"]
    assert list(channel["messages"]) == [DEAD_LETTER_MESSAGE_KEY]


def test_the_official_parser_accepts_the_ledger_document(ledger_document: dict[str, Any]) -> None:
    report = validate_with_official_parser(ledger_document)
    assert report["errorCount"] == 0
    assert_no_errors_nor_warnings(report)


def other_service_topics() -> list[tuple[str, MessageRegistry]]:
    """A made-up service whose models reuse a ledger name and use a discriminated union."""

    class Card(ContractModel):
        method: Literal["card"]
        last_digits: str

    class Transfer(ContractModel):
        method: Literal["transfer"]
        account: str

    class RecordEntry(ContractModel):
        """A different model that happens to share the ledger command's name."""

        payment: Annotated[Card | Transfer, Field(discriminator="method")]
        amount: int

    class EntryRecorded(ContractModel):
        amount: int

    commands = MessageRegistry(
        [MessageType("wallet.record_entry.v1", MessageKind.COMMAND, RecordEntry, "Top up.")]
    )
    events = MessageRegistry(
        [MessageType("wallet.entry_recorded.v1", MessageKind.EVENT, EntryRecorded, "Done.")]
    )
    return [("wallet.commands", commands), ("wallet.events", events)]


def test_models_of_the_same_name_from_two_services_both_survive() -> None:
    document = build_asyncapi_document([*LEDGER_TOPICS, *other_service_topics()], "1.2.3")
    schemas = document["components"]["schemas"]
    ledger_data = document["components"]["messages"]["ledger_record_entry_v1"]["payload"]
    wallet_data = document["components"]["messages"]["wallet_record_entry_v1"]["payload"]
    assert ledger_data["properties"]["data"] == {"$ref": "#/components/schemas/RecordEntry"}
    assert wallet_data["properties"]["data"] == {"$ref": "#/components/schemas/RecordEntry_2"}
    assert "nonce" in schemas["RecordEntry"]["properties"]
    assert "payment" in schemas["RecordEntry_2"]["properties"]
    assert "discriminator" not in json.dumps(schemas["RecordEntry_2"])
    for reference in references(document):
        resolve(document, reference)
    assert_no_errors_nor_warnings(validate_with_official_parser(document))


def test_the_document_is_the_same_every_time() -> None:
    assert build_asyncapi_document(LEDGER_TOPICS, "1") == build_asyncapi_document(
        LEDGER_TOPICS, "1"
    )


def test_a_topic_listed_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="share the channel id"):
        build_asyncapi_document([*LEDGER_TOPICS, ("ledger.events", LEDGER_EVENTS)], "1")


def test_the_html_page_embeds_the_document_and_cannot_be_closed_early() -> None:
    document = build_asyncapi_document(
        LEDGER_TOPICS, "1", description="Beware </script><script>alert(1)</script> & <!--"
    )
    page = render_asyncapi_html(document)
    assert page.count("</script>") == 2, "only the page's own two script elements may close"
    assert "<!--" not in page
    start = page.index("{schema: ") + len("{schema: ")
    end = page.index(", config: ")
    assert json.loads(page[start:end]) == document
    assert "AsyncApiStandalone.render" in page
    assert "<title>Ledgerbus AsyncAPI</title>" in page
