"""How tracking outcomes are answered over HTTP (the stored reply of each command)."""

from typing import Any

from shared.contracts.tracking import EntryRegistered

HTTP_CREATED = 201


def entry_body(event: EntryRegistered) -> dict[str, Any]:
    """The entry as `POST /tracking/entries` answers it (the position is added on publish)."""
    return {
        "id": str(event.entry_id), "user_id": str(event.user_id), "type": event.type,
        "date": event.date, "year": event.year,
        "meta_data": event.meta_data.model_dump(mode="json"), "created_on": event.created_on,
    }  # fmt: skip
