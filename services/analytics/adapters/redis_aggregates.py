"""The analytics aggregates in Redis, changed only by one Lua script per partition batch
(ADR 0017): it checks the generation, the owner's epoch and the expected checkpoint, skips
events at or below their stream's last sequence, applies the rest and moves the checkpoint, all
at once (Redis runs a script alone, and persists and replicates it as one unit).

Keys, under `<prefix><generation>:`:
- `epoch:<topic>:<partition>` and `checkpoint:<topic>:<partition>`: ownership and progress;
- `streams`: each stream's last applied sequence;
- `user:<user id>`: the user's day buckets, fields `<day>:count`, `<day>:credit`, `<day>:debit`;
- `records`: each recorded transaction's contribution (`user|day|direction|amount`), so an
  amendment or a void takes back what the previous version added;
- `app:<app>` and `tracking:<user id>`: plain counters (ledger entries per app, tracking
  entries per year and type), incremented by `counters` events.
`<prefix>generation` names the live generation; its absence means Redis lost the data, and
`<prefix>building` names the generation a rebuild writes from offset 0 until it has caught up
and becomes the live one.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from uuid import UUID, uuid4

import orjson
from redis.asyncio import Redis

from services.analytics.domain.summary import Bucket, Contribution

BATCH_EVENTS_MAX = 1_000

APPLY_BATCH = """
local prefix, generation = ARGV[1], ARGV[2]
local topic, partition, epoch = ARGV[3], ARGV[4], ARGV[5]
local expected, next_offset = ARGV[6], ARGV[7]
if redis.call('GET', prefix .. 'generation') ~= generation
    and redis.call('GET', prefix .. 'building') ~= generation then
  return {'stale_generation'}
end
local base = prefix .. generation .. ':'
local where = topic .. ':' .. partition
if redis.call('GET', base .. 'epoch:' .. where) ~= epoch then
  return {'fenced'}
end
local checkpoint = redis.call('GET', base .. 'checkpoint:' .. where) or '0'
if checkpoint ~= expected then
  return {'checkpoint_moved', checkpoint}
end
local function bucket(user, day, count, credit, debit)
  local key = base .. 'user:' .. user
  redis.call('HINCRBY', key, day .. ':count', count)
  redis.call('HINCRBY', key, day .. ':credit', credit)
  redis.call('HINCRBY', key, day .. ':debit', debit)
end
local function contribute(text, sign)
  local user, day, direction, amount = string.match(text, '^([^|]+)|([^|]+)|([^|]+)|(%d+)$')
  local value = sign * tonumber(amount)
  if direction == 'credit' then
    bucket(user, day, sign, value, 0)
  else
    bucket(user, day, sign, 0, value)
  end
end
local applied, skipped = 0, 0
for _, event in ipairs(cjson.decode(ARGV[8])) do
  local last = tonumber(redis.call('HGET', base .. 'streams', event[1]) or '0')
  if tonumber(event[2]) <= last then
    skipped = skipped + 1
  else
    redis.call('HSET', base .. 'streams', event[1], event[2])
    local kind, key, text = event[3], event[4], event[5]
    if kind == 'movement' then
      contribute(text, 1)
    elseif kind == 'counters' then
      for _, counter in ipairs(event[6]) do
        redis.call('HINCRBY', base .. counter[1], counter[2], counter[3])
      end
    elseif kind == 'record' then
      local previous = redis.call('HGET', base .. 'records', key)
      if previous then contribute(previous, -1) end
      if text == '' then
        redis.call('HDEL', base .. 'records', key)
      else
        contribute(text, 1)
        redis.call('HSET', base .. 'records', key, text)
      end
    end
    applied = applied + 1
  end
end
redis.call('SET', base .. 'checkpoint:' .. where, next_offset)
return {'ok', tostring(applied), tostring(skipped)}
"""


FINISH_REBUILD = """
local prefix, building = ARGV[1], ARGV[2]
if redis.call('GET', prefix .. 'building') ~= building then
  return 0
end
redis.call('SET', prefix .. 'generation', building)
redis.call('DEL', prefix .. 'building')
return 1
"""


class FencedError(RuntimeError):
    """Another owner claimed the partition, or the generation changed: drop the batch."""


@dataclass(frozen=True, slots=True)
class AggregateEvent:
    """One event as the script applies it: its stream and sequence (for dedupe), and the
    transaction it sets (`movement` or `record`; an empty text voids a record)."""

    stream: str
    sequence: int
    kind: str
    """`movement`, `record`, or `counters` (plain increments of named hash fields)."""
    key: str
    contribution: Contribution | None
    counters: tuple[tuple[str, str, int], ...] = ()
    """For `counters`: (hash key under the generation, field, increment)."""

    def encoded(self) -> list[Any]:
        text = "" if self.contribution is None else encode(self.contribution)
        return [self.stream, self.sequence, self.kind, self.key, text,
                [list(counter) for counter in self.counters]]  # fmt: skip


def encode(contribution: Contribution) -> str:
    c = contribution
    return f"{c.user_id}|{c.day.isoformat()}|{c.direction}|{c.amount}"


@dataclass(frozen=True, slots=True)
class Ownership:
    """A claimed partition: the generation it writes and the epoch that fences others."""

    generation: str
    topic: str
    partition: int
    epoch: int


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


@dataclass(slots=True)
class BatchResult:
    applied: int
    skipped: int


@dataclass(slots=True)
class RedisAggregates:
    redis: Redis
    prefix: str
    _script: Any = field(default=None)

    def __post_init__(self) -> None:
        self._script = self.redis.register_script(APPLY_BATCH)

    async def generation(self) -> str | None:
        value = await self.redis.get(f"{self.prefix}generation")
        return None if value is None else _text(value)

    async def start_generation(self, generation: str) -> None:
        """Make `generation` the live one (a rebuild switches once it has caught up)."""
        await self.redis.set(f"{self.prefix}generation", generation)

    async def writable_generation(self) -> str:
        """The generation to write: the live one, or else the one being rebuilt (begun now,
        under a new name, when Redis holds neither: it lost its data, or never had any)."""
        live = await self.generation()
        if live is not None:
            return live
        await self.redis.set(f"{self.prefix}building", f"g-{uuid4().hex}", nx=True)
        building = await self.redis.get(f"{self.prefix}building")
        assert building is not None, "set above unless another consumer set it first"
        return _text(building)

    async def finish_rebuild(self, building: str) -> bool:
        """Switch the answers to `building` once it has caught up; False if it is not the
        generation being built (another consumer switched it already, or Redis lost it)."""
        switched = await self.redis.eval(FINISH_REBUILD, 0, self.prefix, building)
        return bool(switched)

    async def claim(self, generation: str, topic: str, partition: int) -> tuple[Ownership, int]:
        """Become the partition's owner: a new epoch (fencing the previous owner) and the
        checkpoint to resume from."""
        base = f"{self.prefix}{generation}:"
        epoch = int(await self.redis.incr(f"{base}epoch:{topic}:{partition}"))
        checkpoint = await self.redis.get(f"{base}checkpoint:{topic}:{partition}")
        return Ownership(generation, topic, partition, epoch), int(checkpoint or 0)

    async def apply_batch(
        self, owned: Ownership, expected: int, next_offset: int,
        events: Sequence[AggregateEvent],
    ) -> BatchResult:  # fmt: skip
        """Apply a batch that moves the checkpoint from `expected` to `next_offset`."""
        assert len(events) <= BATCH_EVENTS_MAX, "a batch is bounded"
        assert next_offset >= expected, "a checkpoint only moves forward"
        payload = orjson.dumps([event.encoded() for event in events]).decode()
        answer = await self._script(
            args=[self.prefix, owned.generation, owned.topic, owned.partition, owned.epoch,
                  expected, next_offset, payload]
        )  # fmt: skip
        status = _text(answer[0])
        if status != "ok":
            raise FencedError(f"{owned.topic}[{owned.partition}]: {status}")
        return BatchResult(int(answer[1]), int(answer[2]))

    async def buckets(self, generation: str, user_id: UUID) -> dict[date, Bucket]:
        raw = await self.redis.hgetall(f"{self.prefix}{generation}:user:{user_id}")
        fields: dict[date, dict[str, int]] = {}
        for name, value in raw.items():
            day, _, measure = _text(name).partition(":")
            fields.setdefault(date.fromisoformat(day), {})[measure] = int(value)
        return {
            day: Bucket(values.get("count", 0), values.get("credit", 0), values.get("debit", 0))
            for day, values in fields.items()
        }

    async def counters(self, generation: str, key: str) -> dict[str, int]:
        raw = await self.redis.hgetall(f"{self.prefix}{generation}:{key}")
        return {_text(name): int(value) for name, value in raw.items()}

    async def checkpoint(self, generation: str, topic: str, partition: int) -> int:
        value = await self.redis.get(f"{self.prefix}{generation}:checkpoint:{topic}:{partition}")
        return int(value or 0)
