"""How far consumers lag behind the log: end offsets minus PostgreSQL checkpoints."""

from collections.abc import Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.observability.metrics import PROJECTION_LAG

METADATA_REQUEST_TIMEOUT_MILLISECONDS = 5_000


class LagReader:
    """A group-less consumer used only to read end offsets."""

    def __init__(self, bootstrap_servers: str, *, client_id: str) -> None:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers,
            client_id=client_id,
            enable_auto_commit=False,
            request_timeout_ms=METADATA_REQUEST_TIMEOUT_MILLISECONDS,
        )

    async def start(self) -> None:
        await self._consumer.start()

    async def stop(self) -> None:
        await self._consumer.stop()

    async def end_offsets(self, topic: str) -> dict[int, int]:
        partitions = self._consumer.partitions_for_topic(topic)
        if partitions is None:
            await self._consumer._client.force_metadata_update()  # noqa: SLF001
            partitions = self._consumer.partitions_for_topic(topic) or set()
        topic_partitions = [TopicPartition(topic, partition) for partition in sorted(partitions)]
        ends = await self._consumer.end_offsets(topic_partitions)
        return {tp.partition: offset for tp, offset in ends.items()}

    async def lag(self, consumer: str, topic: str, checkpoints: Mapping[int, int]) -> dict[str, int]:
        """Records not yet applied, per partition and in total; also exported as a gauge."""
        ends = await self.end_offsets(topic)
        per_partition = {
            str(partition): max(0, end - checkpoints.get(partition, 0))
            for partition, end in ends.items()
        }
        total = sum(per_partition.values())
        PROJECTION_LAG.labels(consumer).set(total)
        return {"total": total, **per_partition}
