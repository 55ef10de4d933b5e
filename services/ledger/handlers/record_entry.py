"""Use case: decide `RecordEntry` commands, in log order, against accounts and nonces.

Each new decision emits exactly one event (`ledger.entry_recorded.v1` or
`ledger.entry_rejected.v1`) and answers the command; a repeated nonce answers the first
outcome again; a nonce reused for another request, an app without a catalog and an operation
outside the catalog are answered without an event.
"""

from collections.abc import Sequence
from typing import assert_never

from services.ledger.adapters.decision_state import LedgerState
from services.ledger.domain.catalog import Catalogs
from services.ledger.domain.model import (
    CommandIdentity,
    NewDecision,
    NonceReused,
    Repeated,
    Status,
    decide,
)
from services.ledger.handlers.answers import (
    HTTP_UNPROCESSABLE,
    decision_answer,
    nonce_reused,
    unknown_app,
    unknown_operation,
)
from services.ledger.settings import EVENTS_TOPIC
from shared.contracts.ledger import (
    ENTRY_RECORDED_V1,
    ENTRY_REJECTED_V1,
    EntryRecorded,
    RecordEntry,
    aggregate_key,
)
from shared.engine.messages import Incoming, ReplyKey
from shared.engine.work import Work


class RecordEntries:
    """The handler registered for `RecordEntry`; it needs the catalogs, given at wiring."""

    def __init__(self, catalogs: Catalogs) -> None:
        self._catalogs = catalogs

    async def __call__(
        self, work: Work[LedgerState], commands: Sequence[Incoming[RecordEntry]]
    ) -> None:
        await work.state.load([incoming.data for incoming in commands])
        for incoming in commands:
            self._decide_one(work, incoming)

    def _decide_one(self, work: Work[LedgerState], incoming: Incoming[RecordEntry]) -> None:
        command, state = incoming.data, work.state
        catalog = self._catalogs.for_app(command.app)
        if catalog is None:
            work.reject(incoming, *unknown_app(command.app), status=HTTP_UNPROCESSABLE,
                        scope=command.app)  # fmt: skip
            return
        if catalog.amount_of(command.operation) is None:
            work.reject(incoming, *unknown_operation(command.app), status=HTTP_UNPROCESSABLE,
                        scope=command.app)  # fmt: skip
            return
        known = state.decision(command.app, command.nonce)
        identity = CommandIdentity(*incoming.identity)
        decision, after = decide(
            command, account=state.account(command.app, command.owner_id),
            earlier=known.decision if known else None, catalog=catalog, identity=identity,
            now=work.now,
        )  # fmt: skip
        if isinstance(decision, NewDecision):
            recorded = type(decision.event) is EntryRecorded
            emitted = work.emit(
                incoming, topic=EVENTS_TOPIC, key=aggregate_key(command.app, command.owner_id),
                message_type=ENTRY_RECORDED_V1 if recorded else ENTRY_REJECTED_V1,
                data=decision.event,
            )  # fmt: skip
            state.record(decision.decision, after, emitted)
            status, body = decision_answer(decision.decision, first=True)
            work.reply(
                incoming.identity, status, body, scope=command.app,
                event=emitted if recorded else None,
            )  # fmt: skip
        elif isinstance(decision, Repeated):
            assert known is not None, "a repeat has an earlier decision"
            earlier = decision.earlier
            status, body = decision_answer(earlier, first=False)
            if earlier.status is not Status.RECORDED:
                work.reply(incoming.identity, status, body, scope=command.app)
            elif known.emitted is not None:  # decided earlier in this very batch
                work.reply(incoming.identity, status, body, scope=command.app, event=known.emitted)
            else:
                first = ReplyKey(earlier.decided_by.source, earlier.decided_by.command_id)
                work.reply(incoming.identity, status, body, scope=command.app, position_of=first)
        elif isinstance(decision, NonceReused):
            status, body = nonce_reused(command.app)
            work.reply(incoming.identity, status, body, scope=command.app)
        else:
            assert_never(decision)
