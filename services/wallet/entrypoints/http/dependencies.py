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
    PROJECTOR_NAME,
    SCHEMA,
)
from shared.crypto.sealing import seal
from shared.engine.inbox import ReplyReader
from shared.http.commands import CommandSender
from shared.http.errors import DomainHTTPError
from shared.http.gateway_context import GatewayContext
from shared.http.read_positions import ReadPositions
from shared.http.service_wiring import ServiceTopics, commands_and_reads
from shared.http.user_tokens import UserTokens
from shared.settings import PlatformSettings
from shared.waiters import CheckpointWatcher

WALLET_TOPICS = ServiceTopics(
    "wallet", SCHEMA, PROCESSOR_NAME, PROJECTOR_NAME, COMMANDS_TOPIC, EVENTS_TOPIC,
    POSITIONS_CHANNEL,
)  # fmt: skip


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
        shared = await commands_and_reads(context, WALLET_TOPICS)
        context.app.state.wallet = WalletHttp(
            identity=IdentityStore(context.pool), pins=PinHasher(settings.pin_pepper),
            tokens=UserTokens(settings.jwt_secret),
            reads=WalletReads(context.pool, settings.topic(EVENTS_TOPIC)),
            replies=shared.replies, sender=shared.sender, checkpoints=shared.checkpoints,
            positions=shared.positions,
        )  # fmt: skip

    return open_wallet_http
