"""How far consumers lag behind the log: end offsets minus PostgreSQL checkpoints."""

from collections.abc import Mapping

from shared.kafka.log_end import LogEndProbe
from shared.observability.metrics import PROJECTION_LAG


class LagReader:
    """Reads true end offsets (see `log_end`) and compares them with checkpoints."""

    def __init__(self, bootstrap_servers: str, *, client_id: str) -> None:
        self._probe = LogEndProbe(bootstrap_servers, client_id=client_id)

    async def start(self) -> None:
        await self._probe.start()

    async def stop(self) -> None:
        await self._probe.stop()

    async def end_offsets(self, topic: str) -> dict[int, int]:
        return await self._probe.topic_end_offsets(topic)

    def record(self, consumer: str, total: int) -> None:
        PROJECTION_LAG.labels(consumer).set(total)

    async def lag(
        self, consumer: str, topic: str, checkpoints: Mapping[int, int]
    ) -> dict[str, int]:
        """Records not yet applied, per partition and in total; also exported as a gauge."""
        ends = await self.end_offsets(topic)
        per_partition = {
            str(partition): max(0, end - checkpoints.get(partition, 0))
            for partition, end in ends.items()
        }
        total = sum(per_partition.values())
        PROJECTION_LAG.labels(consumer).set(total)
        return {"total": total, **per_partition}
