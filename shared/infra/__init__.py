"""Start the real infrastructure (Kafka, PostgreSQL, Redis) without Docker, and supervise processes.

Importing this package starts nothing and connects to nothing; the heavy client libraries
are imported only when a server is started.
"""

from shared.infra.embedded import (
    EmbeddedKafka,
    EmbeddedPostgres,
    EmbeddedRedis,
    EmbeddedStartError,
    PortInUseError,
)
from shared.infra.ports import free_port, port_is_free, wait_for_port
from shared.infra.process_group import ProcessGroup, ProcessSpec
from shared.infra.provision import Infrastructure, Origin, Provisioned, ProvisionedPart, provision

__all__ = [
    "EmbeddedKafka",
    "EmbeddedPostgres",
    "EmbeddedRedis",
    "EmbeddedStartError",
    "Infrastructure",
    "Origin",
    "PortInUseError",
    "ProcessGroup",
    "ProcessSpec",
    "Provisioned",
    "ProvisionedPart",
    "free_port",
    "port_is_free",
    "provision",
    "wait_for_port",
]
