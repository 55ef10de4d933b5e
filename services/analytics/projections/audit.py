"""`ledgerbus audit --service analytics` (and `all`): every aggregate Redis answers from,
recomputed from the log and compared hash by hash, field by field.

The live aggregates move while the audit reads, so it compares at one instant: a script reads
the live generation's checkpoints and the hashes in one step, the log is replayed up to exactly
those checkpoints, and hashes the replay expects but the snapshot did not read (created since
the keys were listed) are read in a new snapshot, the replay going on to its checkpoints.
Invariants: no bucket below zero, and no amount on a day without transactions.
"""

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from redis.asyncio import Redis

from services.analytics.adapters.log_events import aggregate_event
from services.analytics.bootstrap import registries
from services.analytics.projections.expected import ExpectedAggregates, is_data_key, normalized
from services.analytics.settings import key_prefix
from shared.contracts.registry import MessageRegistry, ParsedMessage
from shared.engine.audit_report import AuditReport
from shared.kafka.log_end import LogEndProbe
from shared.redis_client import create_redis
from shared.settings import PlatformSettings

SNAPSHOTS_MAX = 5
"""Rounds of reading hashes that appeared meanwhile before the audit gives up."""
AUDIT_KEYS_PER_SNAPSHOT = 500
"""Hashes read in one script call: Redis runs a script alone, so each call is kept short."""
FETCH_TIMEOUT_MILLISECONDS = 1_000
FETCH_MAX_RECORDS = 20_000
IDLE_FETCHES_MAX = 30

SNAPSHOT = """
local prefix, generation, count = ARGV[1], ARGV[2], tonumber(ARGV[3])
if redis.call('GET', prefix .. 'generation') ~= generation then return false end
local base = prefix .. generation .. ':'
local checkpoints, hashes = {}, {}
for index = 4, 3 + count do
  checkpoints[#checkpoints + 1] = redis.call('GET', base .. 'checkpoint:' .. ARGV[index]) or '0'
end
for index = 4 + count, #ARGV do
  local key = base .. ARGV[index]
  if redis.call('TYPE', key).ok == 'zset' then
    hashes[#hashes + 1] = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
  else
    hashes[#hashes + 1] = redis.call('HGETALL', key)
  end
end
return {checkpoints, hashes}
"""


class AuditCannotRunError(RuntimeError):
    pass


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class LogReader:
    """Reads each partition of the consumed topics from offset 0 onward, up to targets."""

    def __init__(self, settings: PlatformSettings, on_progress: Callable[[int], None]) -> None:
        self._registries: Mapping[str, MessageRegistry] = registries(settings)
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False
        )
        self._probe = LogEndProbe(settings.kafka_bootstrap_servers, client_id="analytics-audit")
        self._on_progress = on_progress
        self.partitions: list[TopicPartition] = []
        self.positions: dict[TopicPartition, int] = {}
        self.expected = ExpectedAggregates()
        self.unreadable = 0

    async def start(self) -> int:
        """Assign every partition from offset 0; the log's total length now."""
        await self._consumer.start()
        await self._probe.start()
        for topic in self._registries:
            self.partitions += await self._probe.partitions(topic)
        self._consumer.assign(self.partitions)
        await self._consumer.seek_to_beginning(*self.partitions)
        self.positions = dict.fromkeys(self.partitions, 0)
        return sum((await self._probe.end_offsets(self.partitions)).values())

    async def stop(self) -> None:
        await self._probe.stop()
        await self._consumer.stop()

    async def advance(self, targets: Mapping[TopicPartition, int]) -> None:
        for partition in self.partitions:
            if self.positions[partition] < targets[partition]:
                self._consumer.resume(partition)
            else:
                self._consumer.pause(partition)
        idle = 0
        while any(self.positions[p] < targets[p] for p in self.partitions):
            batches = await self._consumer.getmany(
                timeout_ms=FETCH_TIMEOUT_MILLISECONDS, max_records=FETCH_MAX_RECORDS
            )
            idle = 0 if batches else idle + 1
            if idle > IDLE_FETCHES_MAX:
                raise AuditCannotRunError("the log did not deliver up to the checkpoints")
            for partition, records in batches.items():
                self._fold(partition, records, targets[partition])
        for partition in self.partitions:  # what was fetched past a target is read again
            self._consumer.seek(partition, self.positions[partition])

    def _fold(self, partition: TopicPartition, records: list[Any], target: int) -> None:
        registry = self._registries[partition.topic]
        folded = 0
        for record in records:
            if record.offset < self.positions[partition] or record.offset >= target:
                continue
            self.positions[partition] = record.offset + 1
            folded += 1
            parsed = registry.parse(record.value)
            if not isinstance(parsed, ParsedMessage):
                self.unreadable += 1
                continue
            event = aggregate_event(parsed.data, parsed.envelope.id)
            if event is not None:
                self.expected.apply(event)
        self._on_progress(folded)
        if self.positions[partition] >= target:
            self._consumer.pause(partition)
        else:
            self._consumer.resume(partition)


async def _data_keys(redis: Redis, base: str) -> set[str]:
    found = set()
    async for key in redis.scan_iter(match=f"{base}*", count=1_000):
        suffix = _text(key).removeprefix(base)
        if is_data_key(suffix):
            found.add(suffix)
    return found


async def _snapshot(
    redis: Redis, prefix: str, generation: str, partitions: list[TopicPartition],
    keys: list[str],
) -> tuple[dict[TopicPartition, int], dict[str, dict[str, str]]]:  # fmt: skip
    names = [f"{p.topic}:{p.partition}" for p in partitions]
    answer = await redis.eval(SNAPSHOT, 0, prefix, generation, len(names), *names, *keys)
    if answer is None:
        raise AuditCannotRunError("the live generation changed during the audit (a rebuild)")
    checkpoints = {p: int(_text(v)) for p, v in zip(partitions, answer[0], strict=True)}
    hashes = {}
    for key, flat in zip(keys, answer[1], strict=True):
        texts = [_text(item) for item in flat]
        if texts:
            hashes[key] = normalized(key, dict(zip(texts[0::2], texts[1::2], strict=True)))
    return checkpoints, hashes


def _compare(
    report: AuditReport, expected: ExpectedAggregates, live: dict[str, dict[str, str]],
    keys: list[str],
) -> None:  # fmt: skip
    for key in keys:
        want, have = expected.text_of(key), live.get(key, {})
        for name in sorted(set(want) | set(have)):
            report.rows_compared += 1
            if want.get(name) != have.get(name):
                report.add_difference(
                    f"analytics {key} {name}: Redis {have.get(name)!r}, log {want.get(name)!r}"
                )
        if key.startswith("user:"):
            _check_buckets(report, key, have)


def _check_buckets(report: AuditReport, key: str, fields: dict[str, str]) -> None:
    days: dict[str, dict[str, int]] = {}
    for name, value in fields.items():
        day, _, measure = name.partition(":")
        if measure != "best":  # a month's busiest day is text, compared above
            days.setdefault(day, {})[measure] = int(value)
    for day, values in sorted(days.items()):
        if min(values.values()) < 0:
            report.violations.append(f"analytics {key} {day}: a bucket below zero {values}")
        if values.get("count", 0) == 0 and (values.get("credit", 0) or values.get("debit", 0)):
            report.violations.append(f"analytics {key} {day}: amounts without transactions")


async def run_audit(
    settings: PlatformSettings, until: datetime | None,
    on_total: Callable[[int], None], on_progress: Callable[[int], None],
) -> AuditReport:  # fmt: skip
    report = AuditReport(service="analytics")
    if until is not None:
        report.notes.append("Redis keeps only the current aggregates: --until compares none")
        return report
    redis = create_redis(settings.redis_url)
    try:
        generation = await redis.get(f"{key_prefix(settings)}generation")
        if generation is None:
            building = await redis.get(f"{key_prefix(settings)}building")
            report.notes.append(
                "no live aggregates: a rebuild is under way (answers are 503 until it ends)"
                if building is not None else "no live aggregates: no aggregator has run yet"
            )  # fmt: skip
            return report
        await _audit_generation(
            settings, redis, _text(generation), report, on_total=on_total, on_progress=on_progress
        )
        return report
    finally:
        await redis.aclose()


async def _compare_chunk(
    redis: Redis, where: tuple[str, str], reader: LogReader, report: AuditReport,
    chunk: list[str],
) -> None:  # fmt: skip
    """Read a chunk of hashes with the checkpoints of that instant, replay forward to exactly
    those checkpoints, and compare the chunk."""
    prefix, generation = where
    checkpoints, live = await _snapshot(redis, prefix, generation, reader.partitions, chunk)
    if any(checkpoints[p] < reader.positions[p] for p in reader.partitions):
        raise AuditCannotRunError("a checkpoint moved back (Redis lost writes); audit again")
    await reader.advance(checkpoints)
    _compare(report, reader.expected, live, chunk)


async def _audit_generation(
    settings: PlatformSettings, redis: Redis, generation: str, report: AuditReport, *,
    on_total: Callable[[int], None], on_progress: Callable[[int], None],
) -> None:  # fmt: skip
    """Compare in chunks: each chunk's hashes are read in one script call with the checkpoints
    of that instant, and the replay moves forward to exactly those checkpoints before the
    chunk is compared (Redis is never held for the whole dataset). Hashes the replay expects
    but no listing found (created meanwhile) are read in further chunks."""
    prefix = key_prefix(settings)
    reader = LogReader(settings, on_progress)
    on_total(await reader.start())
    compared: set[str] = set()
    try:
        pending = sorted(await _data_keys(redis, f"{prefix}{generation}:"))
        for _ in range(SNAPSHOTS_MAX):
            # At least one snapshot, even of no hash: the replay must reach the checkpoints.
            for start in range(0, max(len(pending), 1), AUDIT_KEYS_PER_SNAPSHOT):
                chunk = pending[start : start + AUDIT_KEYS_PER_SNAPSHOT]
                await _compare_chunk(redis, (prefix, generation), reader, report, chunk)
                compared.update(chunk)
            pending = sorted(reader.expected.data_keys() - compared)
            if not pending:
                break
        else:
            raise AuditCannotRunError("new aggregates kept appearing; audit when quieter")
    finally:
        await reader.stop()
    report.events_applied = reader.expected.events_applied
    reached = [f"{p.topic}[{p.partition}]:{o}" for p, o in reader.positions.items()]
    report.notes.append("compared up to " + ", ".join(reached))
    if reader.unreadable:
        # The live aggregator skips such a record (its topic's projector halts on it); the
        # answers then leave it out, which the audit must not call a match.
        report.add_difference(f"analytics: {reader.unreadable} unreadable records counted nothing")
