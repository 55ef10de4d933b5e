"""Use case: register tracking entries, each the next event of its user's stream."""

from collections.abc import Sequence

from services.tracking.adapters.decision_state import TrackingState
from services.tracking.domain.model import entry_id_for, register
from services.tracking.handlers.answers import HTTP_CREATED, entry_body
from services.tracking.settings import EVENTS_TOPIC
from shared.contracts.tracking import ENTRY_REGISTERED_V1, RegisterEntry
from shared.engine.messages import Incoming
from shared.engine.work import Work


async def register_entries(
    work: Work[TrackingState], commands: Sequence[Incoming[RegisterEntry]]
) -> None:
    state = work.state
    await state.load_sequences(incoming.data.user_id for incoming in commands)
    for incoming in commands:
        command, identity = incoming.data, incoming.identity
        event = register(
            command, entry_id=entry_id_for(identity.source, identity.message_id, command.user_id),
            sequence=state.next_sequence(command.user_id), now=work.now,
            command_id=identity.message_id,
        )  # fmt: skip
        emitted = work.emit(
            incoming, topic=EVENTS_TOPIC, key=str(command.user_id),
            message_type=ENTRY_REGISTERED_V1, data=event,
        )  # fmt: skip
        work.reply(
            identity, HTTP_CREATED, entry_body(event), scope=str(command.user_id), event=emitted
        )
