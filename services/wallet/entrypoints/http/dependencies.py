"""What the wallet's routes need, built by the gateway at start, and how routes get it."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated
from uuid import UUID

from fastapi import Depends, Request

from services.wallet.adapters.identity_store import IdentityStore
from services.wallet.adapters.pins import PinHasher
from services.wallet.adapters.read_models import WalletReads
from services.wallet.settings import (
    COMMANDS_TOPIC,
    EVENTS_TOPIC,
    POSITIONS_CHANNEL,
    PROCESSOR_NAME,
    SCHEMA,
)
from shared.crypto.sealing import seal
from shared.engine.inbox import ReplyReader, replies_channel
from shared.http.commands import GATEWAY_SOURCE, CommandSender, ReplyWaiter
from shared.http.errors import DomainHTTPError
from shared.http.gateway_context import GatewayContext
from shared.http.read_positions import ReadPositions
from shared.http.user_tokens import UserTokens
from shared.settings import PlatformSettings
from shared.waiters import CheckpointWatcher


@dataclass(frozen=True, slots=True)
class WalletHttp:
    identity: IdentityStore
    pins: PinHasher
    tokens: UserTokens
    reads: WalletReads
    replies: ReplyReader
    sender: CommandSender
    checkpoints: CheckpointWatcher
    positions: ReadPositions

    async def seal_for(self, user: UUID, text: str) -> str:
        """`text` sealed with the user's key; 409 once their personal data was erased."""
        key = (await self.identity.keys([user])).get(user)
        if key is None:
            raise DomainHTTPError(
                409, "personal_data_erased",
                "This user's personal data was erased; nothing personal can be recorded.",
            )  # fmt: skip
        return seal(key, str(user), text)


async def _wallet(request: Request) -> WalletHttp:
    # async on purpose: FastAPI runs a plain `def` dependency in a thread, a hop per request.
    wallet = request.app.state.wallet
    assert isinstance(wallet, WalletHttp)
    return wallet


WalletDependencies = Annotated[WalletHttp, Depends(_wallet)]


def configure(settings: PlatformSettings) -> Callable[[GatewayContext], Awaitable[None]]:
    async def open_wallet_http(context: GatewayContext) -> None:
        partitions = len(await context.lag.end_offsets(settings.topic(EVENTS_TOPIC)))
        context.app.state.wallet = _wallet_http(context, partitions)

    return open_wallet_http


def _wallet_http(context: GatewayContext, events_partitions: int) -> WalletHttp:
    """Build the routes' dependencies; subscribes to the wallet's channels on the hub."""
    settings, pool, hub = context.settings, context.pool, context.hub
    reads = WalletReads(pool, settings.topic(EVENTS_TOPIC))
    replies = ReplyReader(pool, SCHEMA, PROCESSOR_NAME)
    waiter = ReplyWaiter(hub, replies_channel(SCHEMA), replies, GATEWAY_SOURCE)
    sender = CommandSender(
        service="wallet", publisher=context.publisher, waiter=waiter,
        topic=settings.topic(COMMANDS_TOPIC),
        timeout_seconds=settings.ledgerbus_command_timeout_seconds,
    )  # fmt: skip
    checkpoints = CheckpointWatcher(hub, POSITIONS_CHANNEL, reads.checkpoints)
    positions = ReadPositions(
        "wallet read model", checkpoints, context.lag, settings.topic(EVENTS_TOPIC),
        EVENTS_TOPIC, events_partitions,
    )  # fmt: skip
    return WalletHttp(
        identity=IdentityStore(pool), pins=PinHasher(settings.pin_pepper),
        tokens=UserTokens(settings.jwt_secret), reads=reads, replies=replies, sender=sender,
        checkpoints=checkpoints, positions=positions,
    )  # fmt: skip
