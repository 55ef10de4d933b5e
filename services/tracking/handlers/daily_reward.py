"""Policy: a user's first entry of each UTC day earns HealthAI's DAILY_REWARD (ADR 0022).

Reacts to `tracking.events`. The reward is a `ledger.record_entry.v1` command sent through the
outbox with a nonce made of the user and the day, so however often an entry is redelivered or
replayed, and however many entries share a day, the ledger records one reward.
"""

from collections.abc import Sequence

from services.tracking.adapters.decision_state import TrackingState
from services.tracking.domain.model import reward_day, reward_nonce
from services.tracking.settings import LEDGER_COMMANDS_TOPIC, REWARD_APP, REWARD_OPERATION
from shared.contracts.ledger import RECORD_ENTRY_V1, RecordEntry, aggregate_key
from shared.contracts.tracking import EntryRegistered
from shared.engine.messages import Incoming
from shared.engine.work import Work


async def daily_reward(
    work: Work[TrackingState], events: Sequence[Incoming[EntryRegistered]]
) -> None:
    state = work.state
    await state.load_days((incoming.data.user_id, reward_day(incoming.data)) for incoming in events)
    for incoming in events:
        event = incoming.data
        day = reward_day(event)
        if not state.reward(event.user_id, day, work.now):
            continue
        owner = str(event.user_id)
        work.emit(
            incoming, topic=LEDGER_COMMANDS_TOPIC, key=aggregate_key(REWARD_APP, owner),
            message_type=RECORD_ENTRY_V1,
            data=RecordEntry(
                app=REWARD_APP, owner_id=owner, operation=REWARD_OPERATION,
                nonce=reward_nonce(event.user_id, day),
            ),
        )  # fmt: skip
