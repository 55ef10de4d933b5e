"""Deterministic message ids: what a message causes is named after its cause.

An event or command emitted while handling a message gets the id `uuid5(cause, index)`, where
the cause is named by its CloudEvents `source` and `id` (the pair the specification makes
unique) and the index counts the messages that cause emitted so far. Handling the same message
twice (a redelivery, a replay, a retried batch) therefore emits the same ids, and every consumer
downstream recognises the repeat.
"""

from uuid import NAMESPACE_URL, uuid5

DERIVED_ID_NAMESPACE = uuid5(NAMESPACE_URL, "https://ledgerbus.dev/engine/derived-ids")
IDENTITY_SEPARATOR = "\x1f"
"""The unit separator cannot occur in a valid source or id (control characters are refused)."""


def derived_id(cause_source: str, cause_id: str, index: int) -> str:
    """The id of the `index`-th message emitted while handling the message (source, id)."""
    assert index >= 0, "emission indexes count from zero"
    assert IDENTITY_SEPARATOR not in cause_source, "sources carry no control characters"
    assert IDENTITY_SEPARATOR not in cause_id, "ids carry no control characters"
    name = f"{cause_source}{IDENTITY_SEPARATOR}{cause_id}{IDENTITY_SEPARATOR}{index}"
    return str(uuid5(DERIVED_ID_NAMESPACE, name))
