"""Ceilings: what the bare parts do on this machine, in this run."""

import time
from collections.abc import Sequence
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer

from shared.kafka.log_end import LogEndProbe

FETCH_MAX_RECORDS = 20_000
PARTITION_FETCH_BYTES = 8 * 1024 * 1024


async def raw_consume_rate(bootstrap: str, topic: str) -> tuple[float, int]:
    """Records per second a bare aiokafka consumer reads the whole topic at (no parsing)."""
    probe = LogEndProbe(bootstrap, client_id="bench-ceiling")
    await probe.start()
    partitions = await probe.partitions(topic)
    ends = await probe.end_offsets(partitions)
    await probe.stop()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        max_partition_fetch_bytes=PARTITION_FETCH_BYTES,
        fetch_max_bytes=4 * PARTITION_FETCH_BYTES,
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        total, wanted = 0, sum(ends.values())
        started = time.perf_counter()
        while total < wanted:
            batch = await consumer.getmany(timeout_ms=1000, max_records=FETCH_MAX_RECORDS)
            total += sum(len(records) for records in batch.values())
        return total / (time.perf_counter() - started), total
    finally:
        await consumer.stop()


async def raw_copy_rate(
    dsn: str, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> float:
    """Rows per second asyncpg's COPY writes into a fresh clone of `table` (same indexes)."""
    connection = await asyncpg.connect(dsn)
    try:
        schema, name = table.split(".")
        await connection.execute("DROP TABLE IF EXISTS public.bench_clone")
        await connection.execute(
            f"CREATE TABLE public.bench_clone (LIKE {schema}.{name} INCLUDING ALL)"
        )
        started = time.perf_counter()
        await connection.copy_records_to_table(
            "bench_clone", schema_name="public", columns=list(columns), records=rows
        )
        rate = len(rows) / (time.perf_counter() - started)
        await connection.execute("DROP TABLE public.bench_clone")
        return rate
    finally:
        await connection.close()
