"""The AsyncAPI 3.0.0 document of the public topics, generated from the contract registries.

The document is built directly as JSON from the registries, without a broker, so that every
message is named by its type string (`ledger.record_entry.v1`), every topic is exactly one
channel, and every payload is the JSON Schema of the typed envelope the services validate
against. `tests/unit/test_asyncapi.py` checks the result with the official AsyncAPI parser.
"""

import html
import inspect
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from shared.contracts.envelope import CLOUDEVENTS_CONTENT_TYPE
from shared.contracts.registry import MessageKind, MessageRegistry, MessageType, typed_envelope

ASYNCAPI_VERSION = "3.0.0"
DOCUMENT_TITLE = "Ledgerbus"
DOCUMENT_DESCRIPTION = (
    "Ledgerbus topics. Every value is a CloudEvents 1.0 envelope in structured JSON mode; the"
    " record key is the aggregate id. Records that fail validation go to `<topic>.dlq` unchanged"
    " with `error_code` and `error_message` headers."
)

SERVER_ID = "production"
SERVER_HOST = "kafka:9092"
SERVER_PROTOCOL = "kafka"
SERVER_DESCRIPTION = "Apache Kafka (KRaft) in production"

KAFKA_BINDING_VERSION = "0.5.0"
RECORD_KEY_DESCRIPTION = (
    "The aggregate id: every record of one aggregate goes to one partition, so it keeps its order."
)
SCHEMA_REFERENCE_PREFIX = "#/components/schemas/"
SCHEMA_REFERENCE_TEMPLATE = SCHEMA_REFERENCE_PREFIX + "{model}"

DEAD_LETTER_TOPIC_SUFFIX = ".dlq"
DEAD_LETTER_MESSAGE_KEY = "dead_letter"
DEAD_LETTER_CONTENT_TYPE = "application/octet-stream"

ASYNCAPI_REACT_COMPONENT_URL = "https://unpkg.com/@asyncapi/react-component@3.2.1"
ASYNCAPI_REACT_SCRIPT_URL = ASYNCAPI_REACT_COMPONENT_URL + "/browser/standalone/index.js"
ASYNCAPI_REACT_STYLESHEET_URL = ASYNCAPI_REACT_COMPONENT_URL + "/styles/default.min.css"

_UNSAFE_IDENTIFIER_CHARACTERS = re.compile(r"[^A-Za-z0-9_]")
_COMPONENT_KEY = re.compile(r"^[A-Za-z0-9_.\-]+$")

# JSON Schema keywords whose value maps names to schemas: the names are not keywords.
_SCHEMA_MAP_KEYWORDS = frozenset({"properties", "patternProperties", "$defs", "definitions"})
# Keywords whose value is data, not a schema: nothing inside them is a reference.
_DATA_KEYWORDS = frozenset({"const", "enum", "default", "examples", "example"})
# Characters that could end or comment out a script element, escaped as JSON allows.
_SCRIPT_ESCAPES = {ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026"}

JsonObject = dict[str, Any]


def component_key(name: str) -> str:
    """A channel, message or operation id derived from a topic or type name.

    AsyncAPI ids must be safe in JSON pointers and in generated code, so every character other
    than a letter, a digit or `_` becomes `_`: `ledger.record_entry.v1` is `ledger_record_entry_v1`.
    """
    assert name, "a component key needs a non-empty name"
    return _UNSAFE_IDENTIFIER_CHARACTERS.sub("_", name)


def build_asyncapi_document(
    topics: Sequence[tuple[str, MessageRegistry]],
    version: str,
    *,
    title: str = DOCUMENT_TITLE,
    description: str = DOCUMENT_DESCRIPTION,
) -> JsonObject:
    """The AsyncAPI 3.0.0 document of `topics`, each a topic name and the registry it carries.

    Pure and deterministic: the same registries always give the same document. Raises
    ValueError when two topics, or two different message types, would share one id.
    """
    builder = _DocumentBuilder()
    for topic, registry in topics:
        builder.add_topic(topic, registry)
    for topic, _ in topics:
        builder.add_dead_letter_topic(topic + DEAD_LETTER_TOPIC_SUFFIX, topic)
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {"title": title, "version": version, "description": description},
        "defaultContentType": CLOUDEVENTS_CONTENT_TYPE,
        "servers": {
            SERVER_ID: {
                "host": SERVER_HOST,
                "protocol": SERVER_PROTOCOL,
                "description": SERVER_DESCRIPTION,
            }
        },
        "channels": builder.channels,
        "operations": builder.operations,
        "components": {"schemas": builder.schemas, "messages": builder.messages},
    }


def render_asyncapi_html(document: Mapping[str, Any]) -> str:
    """A standalone HTML page showing `document` with the AsyncAPI React component.

    The document is inlined as JSON with `<`, `>` and `&` written as JSON escapes, so no text in
    a description can close the script element (`</script>`) or open a comment inside it.
    """
    inlined = json.dumps(document, ensure_ascii=False, sort_keys=False).translate(_SCRIPT_ESCAPES)
    configuration = json.dumps({"show": {"sidebar": True, "errors": True}})
    page_title = html.escape(f"{document['info']['title']} AsyncAPI")
    return f"""<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <title>{page_title}</title>
    <link rel="stylesheet" href="{ASYNCAPI_REACT_STYLESHEET_URL}">
  </head>
  <body>
    <div id="asyncapi"></div>
    <script src="{ASYNCAPI_REACT_SCRIPT_URL}"></script>
    <script>
      window.AsyncApiStandalone.render(
        {{schema: {inlined}, config: {configuration}}},
        document.getElementById("asyncapi")
      );
    </script>
  </body>
</html>
"""


class _DocumentBuilder:
    """Accumulates channels, operations and components while the topics are added."""

    def __init__(self) -> None:
        self.channels: JsonObject = {}
        self.operations: JsonObject = {}
        self.schemas: JsonObject = {}
        self.messages: JsonObject = {}
        self._message_types: dict[str, MessageType] = {}

    def add_topic(self, topic: str, registry: MessageRegistry) -> None:
        message_types = registry.all()
        if not message_types:
            raise ValueError(f"the registry of topic {topic} has no message types")
        keys = [self._add_message(message_type) for message_type in message_types]
        kinds = {message_type.kind for message_type in message_types}
        channel_id = self._add_channel(topic, keys, _topic_description(topic, kinds))
        commands = [
            key
            for key, message_type in zip(keys, message_types, strict=True)
            if message_type.kind is MessageKind.COMMAND
        ]
        if commands:
            self._add_operation(
                channel_id,
                "send",
                commands,
                "Publish a command",
                "What outside producers do: publish a command, keyed by the aggregate id.",
            )
        self._add_operation(channel_id, "receive", keys, *_receive_texts(kinds))

    def add_dead_letter_topic(self, topic: str, original_topic: str) -> None:
        if DEAD_LETTER_MESSAGE_KEY not in self.messages:
            self.messages[DEAD_LETTER_MESSAGE_KEY] = _dead_letter_message()
        description = (
            f"Records of `{original_topic}` that could not be processed: any record as it was,"
            " with headers `error_code` and `error_message`."
        )
        channel_id = self._add_channel(topic, [DEAD_LETTER_MESSAGE_KEY], description)
        self._add_operation(
            channel_id,
            "receive",
            [DEAD_LETTER_MESSAGE_KEY],
            "Inspect dead letters",
            "What operators do: read the records that were refused, and why.",
        )

    def _add_message(self, message_type: MessageType) -> str:
        key = component_key(message_type.name)
        known = self._message_types.get(key)
        if known is not None:
            # The same type on two topics is one message; two types sharing an id are a mistake.
            if known != message_type:
                raise ValueError(f"message types {known.name} and {message_type.name} share {key}")
            return key
        if key == DEAD_LETTER_MESSAGE_KEY:
            raise ValueError(f"message type {message_type.name} takes the dead letter's id")
        self._message_types[key] = message_type
        envelope_schema = typed_envelope(message_type).model_json_schema(
            ref_template=SCHEMA_REFERENCE_TEMPLATE
        )
        payload = _hoist_definitions(envelope_schema, self.schemas)
        self.messages[key] = _message(message_type, payload)
        return key

    def _add_channel(self, topic: str, message_keys: list[str], description: str) -> str:
        channel_id = component_key(topic)
        if channel_id in self.channels:
            known = self.channels[channel_id]["address"]
            raise ValueError(f"topics {known} and {topic} share the channel id {channel_id}")
        self.channels[channel_id] = {
            "address": topic,
            "title": topic,
            "description": description,
            "messages": {key: {"$ref": f"#/components/messages/{key}"} for key in message_keys},
        }
        return channel_id

    def _add_operation(
        self, channel_id: str, action: str, message_keys: list[str], title: str, summary: str
    ) -> None:
        operation_id = f"{action}_{channel_id}"
        assert operation_id not in self.operations, f"operation {operation_id} is added twice"
        self.operations[operation_id] = {
            "action": action,
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "title": title,
            "summary": summary,
            # AsyncAPI 3 requires an operation's messages to be those of its channel, by reference.
            "messages": [
                {"$ref": f"#/channels/{channel_id}/messages/{key}"} for key in message_keys
            ],
        }


def _message(message_type: MessageType, payload: JsonObject) -> JsonObject:
    data_description = inspect.cleandoc(message_type.data_model.__doc__ or "")
    return {
        "name": message_type.name,
        "title": message_type.name,
        "summary": message_type.description,
        "description": (
            f"A {message_type.kind.value} in a CloudEvents 1.0 envelope whose `type` is"
            f" `{message_type.name}` and whose `data` is `{message_type.data_model.__name__}`."
            f" {data_description}"
        ).strip(),
        "contentType": CLOUDEVENTS_CONTENT_TYPE,
        "tags": [{"name": message_type.kind.value}],
        "correlationId": {
            "description": "The id of the message that started the exchange, when there is one.",
            "location": "$message.payload#/correlationid",
        },
        "payload": payload,
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": RECORD_KEY_DESCRIPTION},
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
    }


def _dead_letter_message() -> JsonObject:
    header_descriptions = {
        "error_code": "Why the record was refused, for example `invalid_data` or `unknown_type`.",
        "error_message": "A one-line human description of what is wrong with the record.",
        "original_topic": "The topic the record was read from.",
        "original_partition": "The partition the record was read from, in decimal.",
        "original_offset": "The offset of the record in that partition, in decimal.",
    }
    return {
        "name": DEAD_LETTER_MESSAGE_KEY,
        "title": "Dead letter",
        "summary": "Any record as it was, with headers error_code and error_message.",
        "description": (
            "The refused record copied unchanged (key, value and headers), with headers added"
            " to say why and where it came from."
        ),
        "contentType": DEAD_LETTER_CONTENT_TYPE,
        "headers": {
            "type": "object",
            "properties": {
                name: {"type": "string", "description": description}
                for name, description in header_descriptions.items()
            },
            "required": list(header_descriptions),
            "additionalProperties": {
                "description": "A header of the original record, kept, or a further remark."
            },
        },
        "payload": {"description": "The original record value as it was; it may not be JSON."},
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": "The original record key, unchanged."},
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
    }


def _topic_description(topic: str, kinds: set[MessageKind]) -> str:
    carried = " and ".join(f"{kind.value}s" for kind in MessageKind if kind in kinds)
    return (
        f"The {carried} of `{topic}`, each a CloudEvents 1.0 envelope keyed by the aggregate id."
        f" Records that cannot be processed go to `{topic}{DEAD_LETTER_TOPIC_SUFFIX}` unchanged."
    )


def _receive_texts(kinds: set[MessageKind]) -> tuple[str, str]:
    """The title and summary of a topic's receive operation, saying who receives what."""
    readers = []
    if MessageKind.COMMAND in kinds:
        readers.append(
            "What the processor does: receive each command, in order per aggregate id, decide,"
            " and record the outcome as events."
        )
    if MessageKind.EVENT in kinds:
        readers.append("What consumers do: receive the events, in order per aggregate id.")
    title = "Process a command" if MessageKind.EVENT not in kinds else "Consume the events"
    return title, " ".join(readers)


def _hoist_definitions(schema: JsonObject, schemas: JsonObject) -> JsonObject:
    """Move a pydantic schema's `$defs` into `schemas`, returning the schema without them.

    A definition keeps its pydantic name when that name is free or holds the same schema;
    otherwise it is renamed, and references to it are rewritten, so that models of the same
    name from different services never overwrite each other.
    """
    definitions: JsonObject = schema.pop("$defs", {})
    names = _assign_schema_names(definitions, schemas)
    for name, definition in definitions.items():
        schemas[names[name]] = _rewrite_references(definition, names)
    payload: JsonObject = _rewrite_references(schema, names)
    return payload


def _assign_schema_names(definitions: JsonObject, schemas: JsonObject) -> dict[str, str]:
    for name in definitions:
        if not _COMPONENT_KEY.match(name):
            raise ValueError(f"the schema name {name!r} is not a valid AsyncAPI component key")
    names = {name: name for name in definitions}
    # Each pass renames at least one clashing definition to a free name, which never clashes
    # again; renaming can only make the definitions that refer to it clash, so this ends.
    for _ in range(len(definitions) + 1):
        clashing = [
            name
            for name, definition in definitions.items()
            if names[name] in schemas
            and schemas[names[name]] != _rewrite_references(definition, names)
        ]
        if not clashing:
            return names
        for name in clashing:
            names[name] = _free_schema_name(name, schemas, set(names.values()))
    raise AssertionError("schema names did not settle; the renaming argument above is wrong")


def _free_schema_name(name: str, schemas: JsonObject, taken: set[str]) -> str:
    for suffix in range(2, len(schemas) + len(taken) + 3):
        candidate = f"{name}_{suffix}"
        if candidate not in schemas and candidate not in taken:
            return candidate
    raise AssertionError("there are more candidates than names taken, so one is free")


def _rewrite_references(node: Any, names: Mapping[str, str]) -> Any:
    """A copy of a schema with references renamed and pydantic's OpenAPI discriminators removed.

    Pydantic writes `discriminator` as an OpenAPI object; in an AsyncAPI schema it must be a
    property name of the schema itself, which a `oneOf` of variants is not. The variants'
    `const` types already say which is which, so the object is dropped.
    """
    if isinstance(node, list):
        return [_rewrite_references(item, names) for item in node]
    if not isinstance(node, dict):
        return node
    rewritten: JsonObject = {}
    for keyword, value in node.items():
        if keyword == "$ref" and isinstance(value, str):
            rewritten[keyword] = _renamed_reference(value, names)
        elif keyword == "discriminator" and isinstance(value, dict):
            continue
        elif keyword in _SCHEMA_MAP_KEYWORDS and isinstance(value, dict):
            rewritten[keyword] = {
                name: _rewrite_references(schema, names) for name, schema in value.items()
            }
        elif keyword in _DATA_KEYWORDS:
            rewritten[keyword] = value
        else:
            rewritten[keyword] = _rewrite_references(value, names)
    return rewritten


def _renamed_reference(reference: str, names: Mapping[str, str]) -> str:
    if not reference.startswith(SCHEMA_REFERENCE_PREFIX):
        raise ValueError(f"the schema reference {reference} is not to a component schema")
    name = reference.removeprefix(SCHEMA_REFERENCE_PREFIX)
    if name not in names:
        raise ValueError(f"the schema reference {reference} has no definition")
    return SCHEMA_REFERENCE_PREFIX + names[name]
