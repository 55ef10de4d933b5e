"""What the gateway shares with every service's routes when it starts."""

from dataclasses import dataclass

import asyncpg
from fastapi import FastAPI
from redis.asyncio import Redis

from shared.kafka.command_publisher import CommandPublisher
from shared.kafka.lag import LagReader
from shared.postgres.notify import NotificationHub
from shared.settings import PlatformSettings


@dataclass(frozen=True, slots=True)
class GatewayContext:
    app: FastAPI
    settings: PlatformSettings
    pool: asyncpg.Pool
    hub: NotificationHub
    """One LISTEN connection for the whole gateway; subscribe before it starts."""
    publisher: CommandPublisher
    lag: LagReader
    """True log ends (partition counts, lag)."""
    redis: Redis
