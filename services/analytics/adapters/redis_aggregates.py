"""The analytics aggregates in Redis, changed only by one Lua script per partition batch
(ADR 0017): it checks the generation, the owner's epoch and the expected checkpoint, skips
events at or below their stream's last sequence, applies the rest and moves the checkpoint, all
at once (Redis runs a script alone, and persists and replicates it as one unit).

Keys, under `<prefix><generation>:`:
- `epoch:<topic>:<partition>` and `checkpoint:<topic>:<partition>`: ownership and progress;
- `streams`: each stream's last applied sequence;
- `user:<user id>`: the user's day buckets, fields `<day>:count`, `<day>:credit`, `<day>:debit`,
  and month buckets (`<YYYY-MM>:count` and so on, with `<YYYY-MM>:best` = `<count>|<day>`, the
  month's busiest day, the earliest on a tie); an emptied bucket has no fields;
- `months:<user id>`: a sorted set of the months with transactions (score `YYYYMM`);
- `records`: each recorded transaction's contribution (`user|day|direction|amount`), so an
  amendment or a void takes back what the previous version added;
- `app:<app>` and `tracking:<user id>`: plain counters (ledger entries per app, tracking
  entries per year and type), incremented by `counters` events;
- `caught_up`: per partition, the last time (milliseconds) its owner had applied everything
  the log held when it fetched; the smallest is the answers' `as_of`.
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
from redis.exceptions import RedisError

from services.analytics.adapters.redis_reads import day_buckets
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
-- Every change an event makes is checked before any is made: Redis does not undo a script's
-- writes when a command fails (HINCRBY past 2^63), and half an event must never be applied.
local LIMIT = 9.0e18
-- Increments travel as decimal text: a Lua number would reach Redis as "4e+18".
-- A transaction counts in its day's bucket and in its month's (`YYYY-MM`), so that a summary
-- over many months reads a month's totals rather than its every day.
local function changes_of(text, sign, into, touched)
  local user, day, direction, amount = string.match(text, '^([^|]+)|([^|]+)|([^|]+)|(%d+)$')
  local key = base .. 'user:' .. user
  local value = (sign < 0 and '-' or '') .. amount
  for _, period in ipairs({day, string.sub(day, 1, 7)}) do
    into[#into + 1] = {key, period .. ':count', tostring(sign)}
    into[#into + 1] = {key, period .. ':credit', direction == 'credit' and value or '0'}
    into[#into + 1] = {key, period .. ':debit', direction == 'credit' and '0' or value}
  end
  touched[#touched + 1] = {user, day}
end
-- After a change to a day: an emptied day or month leaves no fields behind (a user who
-- amends one record a thousand times keeps two buckets, not a thousand), the months index
-- lists months with transactions, and a month's busiest day is found again among its days.
local function settle(user, day)
  local key, month = base .. 'user:' .. user, string.sub(day, 1, 7)
  if tonumber(redis.call('HGET', key, day .. ':count') or '0') == 0 then
    redis.call('HDEL', key, day .. ':count', day .. ':credit', day .. ':debit')
  end
  local months = base .. 'months:' .. user
  if tonumber(redis.call('HGET', key, month .. ':count') or '0') == 0 then
    redis.call('HDEL', key, month .. ':count', month .. ':credit', month .. ':debit',
      month .. ':best')
    redis.call('ZREM', months, month)
    return
  end
  redis.call('ZADD', months, tonumber(string.sub(month, 1, 4) .. string.sub(month, 6, 7)), month)
  local fields = {}
  for number = 1, 31 do fields[number] = string.format('%s-%02d:count', month, number) end
  local counts = redis.call('HMGET', key, unpack(fields))
  local best_count, best_day = 0, ''
  for number = 1, 31 do
    local count = tonumber(counts[number] or '0')
    if count > best_count then
      best_count, best_day = count, string.format('%s-%02d', month, number)
    end
  end
  redis.call('HSET', key, month .. ':best', string.format('%d|%s', best_count, best_day))
end
local function fits(changes)
  for _, change in ipairs(changes) do
    local current = tonumber(redis.call('HGET', change[1], change[2]) or '0')
    if math.abs(current + tonumber(change[3])) >= LIMIT then return false end
  end
  return true
end
local applied, skipped = 0, 0
for _, event in ipairs(cjson.decode(ARGV[8])) do
  local last = tonumber(redis.call('HGET', base .. 'streams', event[1]) or '0')
  if tonumber(event[2]) <= last then
    skipped = skipped + 1
  else
    local kind, key, text = event[3], event[4], event[5]
    local changes, previous, touched = {}, false, {}
    if kind == 'movement' then
      changes_of(text, 1, changes, touched)
    elseif kind == 'counters' then
      for _, counter in ipairs(event[6]) do
        changes[#changes + 1] = {base .. counter[1], counter[2], counter[3]}
      end
    elseif kind == 'record' then
      previous = redis.call('HGET', base .. 'records', key)
      if previous then changes_of(previous, -1, changes, touched) end
      if text ~= '' then changes_of(text, 1, changes, touched) end
    end
    if not fits(changes) then
      local stop = event[7] >= 0 and tostring(event[7]) or expected
      redis.call('SET', base .. 'checkpoint:' .. where, stop)
      return {'overflow', stop, tostring(applied), tostring(skipped)}
    end
    redis.call('HSET', base .. 'streams', event[1], event[2])
    for _, change in ipairs(changes) do
      redis.call('HINCRBY', change[1], change[2], change[3])
    end
    for _, place in ipairs(touched) do settle(place[1], place[2]) end
    if kind == 'record' then
      if text == '' then
        redis.call('HDEL', base .. 'records', key)
      else
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
  return {0, ''}
end
local previous = redis.call('GET', prefix .. 'generation') or ''
-- Answers never go back in time: the new generation must hold at least what the live one
-- holds on every partition, or it keeps building.
if previous ~= '' then
  for index = 3, #ARGV do
    local name = 'checkpoint:' .. ARGV[index]
    local old = tonumber(redis.call('GET', prefix .. previous .. ':' .. name) or '0')
    if tonumber(redis.call('GET', prefix .. building .. ':' .. name) or '0') < old then
      return {0, ''}
    end
  end
end
redis.call('SET', prefix .. 'generation', building)
redis.call('DEL', prefix .. 'building')
return {1, previous}
"""
ABANDON_REBUILD = """
if redis.call('GET', ARGV[1] .. 'building') == ARGV[2] then
  redis.call('DEL', ARGV[1] .. 'building')
  return 1
end
return 0
"""
WRITABLE_GENERATION_TRIES = 5
DROP_KEYS_PER_CALL = 500
"""Keys unlinked per call when an old generation is deleted (a bounded pause for Redis)."""


MARK_CAUGHT_UP = """
local prefix, generation, at = ARGV[1], ARGV[2], ARGV[3]
if redis.call('GET', prefix .. 'generation') ~= generation
    and redis.call('GET', prefix .. 'building') ~= generation then
  return {}
end
local base = prefix .. generation .. ':'
local moved = {}
for index = 4, #ARGV, 5 do
  local where = ARGV[index] .. ':' .. ARGV[index + 1]
  if redis.call('GET', base .. 'epoch:' .. where) == ARGV[index + 2] then
    local checkpoint = redis.call('GET', base .. 'checkpoint:' .. where) or '0'
    if checkpoint ~= ARGV[index + 3] then
      moved[#moved + 1] = where
    elseif tonumber(checkpoint) >= tonumber(ARGV[index + 4]) then
      local known = tonumber(redis.call('HGET', base .. 'caught_up', where) or '0')
      if tonumber(at) > known then redis.call('HSET', base .. 'caught_up', where, at) end
    end
  end
end
return moved
"""
"""Marks partitions caught up as of `at` (milliseconds) when their checkpoint in Redis has
reached the log end probed at `at`, and returns the partitions whose checkpoint is not the one
their owner believes (Redis restarted and lost its last writes): the owner claims them again."""

CLAIM = """
local prefix, generation, where = ARGV[1], ARGV[2], ARGV[3]
if redis.call('GET', prefix .. 'generation') ~= generation
    and redis.call('GET', prefix .. 'building') ~= generation then
  return {'stale_generation'}
end
local base = prefix .. generation .. ':'
local epoch = redis.call('INCR', base .. 'epoch:' .. where)
redis.call('HSETNX', base .. 'caught_up', where, '0')
return {epoch, redis.call('GET', base .. 'checkpoint:' .. where) or '0'}
"""


class AggregateOverflowError(RuntimeError):
    """An event would take an aggregate past what Redis's integers hold. The events before it
    are applied and the checkpoint stands at it (`offset`); the partition must halt there."""

    def __init__(self, where: str, offset: int) -> None:
        super().__init__(f"{where}: an aggregate would overflow at offset {offset}")
        self.offset = offset


class FencedError(RuntimeError):
    """Another owner claimed the partition, or the generation changed: drop the batch.

    `reason` is `fenced` (a newer epoch owns it), `checkpoint_moved` (another owner went on)
    or `stale_generation` (Redis no longer holds this generation as live or being built)."""

    def __init__(self, reason: str, where: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.reason = reason


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
    offset: int = -1
    """The record's offset in its partition (-1 when unknown): where an overflow stops."""

    def encoded(self) -> list[Any]:
        text = "" if self.contribution is None else encode(self.contribution)
        counters = [[key, name, str(amount)] for key, name, amount in self.counters]
        return [self.stream, self.sequence, self.kind, self.key, text, counters, self.offset]


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

    _mark: Any = field(default=None)
    _claim: Any = field(default=None)

    def __post_init__(self) -> None:
        self._script = self.redis.register_script(APPLY_BATCH)
        self._mark = self.redis.register_script(MARK_CAUGHT_UP)
        self._claim = self.redis.register_script(CLAIM)

    async def generation(self) -> str | None:
        value = await self.redis.get(f"{self.prefix}generation")
        return None if value is None else _text(value)

    async def start_generation(self, generation: str) -> None:
        """Make `generation` the live one (a rebuild switches once it has caught up)."""
        await self.redis.set(f"{self.prefix}generation", generation)

    async def writable_generation(self) -> str:
        """The generation to write: the live one, or else the one being rebuilt (begun now,
        under a new name, when Redis holds neither: it lost its data, or never had any)."""
        for _ in range(WRITABLE_GENERATION_TRIES):
            live = await self.generation()
            if live is not None:
                return live
            await self.redis.set(f"{self.prefix}building", f"g-{uuid4().hex}", nx=True)
            building = await self.redis.get(f"{self.prefix}building")
            if building is not None:
                return _text(building)
            # A rebuild finished between the two calls: the live generation is named now.
        raise RedisError("no writable generation after repeated tries")

    async def begin_rebuild(self) -> str:
        """Start building a new generation beside the live one (which keeps answering) and
        return its name; a rebuild already under way is abandoned for this one."""
        building = f"g-{uuid4().hex}"
        replaced = await self.redis.set(f"{self.prefix}building", building, get=True)
        if isinstance(replaced, bytes | str) and _text(replaced) != await self.generation():
            await self.drop_generation(_text(replaced))
        return building

    async def abandon_rebuild(self, building: str) -> None:
        """Forget a rebuild that will not finish (its command stopped): unless it became the
        live generation, its marker and keys go."""
        if await self.redis.eval(ABANDON_REBUILD, 0, self.prefix, building):
            await self.drop_generation(building)

    async def building(self) -> str | None:
        value = await self.redis.get(f"{self.prefix}building")
        return None if value is None else _text(value)

    async def finish_rebuild(self, building: str, partitions: Sequence[tuple[str, int]]) -> bool:
        """Switch the answers to `building` once it has caught up; False if it is not the
        generation being built (another consumer switched it already, or Redis lost it), or
        if on some of `partitions` it holds less than the live generation."""
        names = [f"{topic}:{partition}" for topic, partition in partitions]
        answer = await self.redis.eval(FINISH_REBUILD, 0, self.prefix, building, *names)
        switched, previous = int(answer[0]), _text(answer[1])
        if switched and previous and previous != building:
            await self.drop_generation(previous)
        return bool(switched)

    async def drop_generation(self, generation: str) -> int:
        """Delete a generation no answer reads any more (reads check the live one atomically);
        the number of keys deleted."""
        assert generation, "never the whole prefix"
        dropped = 0
        batch: list[Any] = []
        async for key in self.redis.scan_iter(match=f"{self.prefix}{generation}:*", count=1_000):
            batch.append(key)
            if len(batch) >= DROP_KEYS_PER_CALL:
                dropped += int(await self.redis.unlink(*batch))
                batch = []
        if batch:
            dropped += int(await self.redis.unlink(*batch))
        return dropped

    async def claim(self, generation: str, topic: str, partition: int) -> tuple[Ownership, int]:
        """Become the partition's owner: a new epoch (fencing the previous owner) and the
        checkpoint to resume from."""
        answer = await self._claim(args=[self.prefix, generation, f"{topic}:{partition}"])
        if len(answer) == 1:
            raise FencedError("stale_generation", f"{topic}[{partition}]")
        epoch, checkpoint = int(answer[0]), int(answer[1])
        return Ownership(generation, topic, partition, epoch), checkpoint

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
        if status == "overflow":
            raise AggregateOverflowError(f"{owned.topic}[{owned.partition}]", int(answer[1]))
        if status != "ok":
            raise FencedError(status, f"{owned.topic}[{owned.partition}]")
        return BatchResult(int(answer[1]), int(answer[2]))

    async def mark_caught_up(
        self, generation: str, owned: Sequence[tuple[Ownership, int, int]], at_milliseconds: int
    ) -> list[tuple[str, int]]:
        """For each (ownership, checkpoint its owner believes, log end probed at
        `at_milliseconds`): mark it caught up as of then if Redis's checkpoint reached the end.
        Returns the (topic, partition) whose checkpoint in Redis is not the one believed."""
        arguments: list[Any] = [self.prefix, generation, at_milliseconds]
        for ownership, believed, end in owned:
            assert ownership.generation == generation, "one generation a call"
            arguments += [ownership.topic, ownership.partition, ownership.epoch, believed, end]
        if len(arguments) == 3:
            return []
        moved = await self._mark(args=arguments)
        found = []
        for where in moved:
            topic, _, partition = _text(where).rpartition(":")
            found.append((topic, int(partition)))
        return found

    async def buckets(self, generation: str, user_id: UUID) -> dict[date, Bucket]:
        raw = await self.redis.hgetall(f"{self.prefix}{generation}:user:{user_id}")
        return day_buckets({_text(name): _text(value) for name, value in raw.items()})

    async def counters(self, generation: str, key: str) -> dict[str, int]:
        raw = await self.redis.hgetall(f"{self.prefix}{generation}:{key}")
        return {_text(name): int(value) for name, value in raw.items()}

    async def checkpoints(
        self, generation: str, partitions: Sequence[tuple[str, int]]
    ) -> dict[tuple[str, int], int]:
        """Each (topic, partition)'s checkpoint in `generation`, in one round trip."""
        if not partitions:
            return {}
        names = [f"{self.prefix}{generation}:checkpoint:{t}:{p}" for t, p in partitions]
        values = await self.redis.mget(names)
        return {where: int(value or 0) for where, value in zip(partitions, values, strict=True)}

    async def checkpoint(self, generation: str, topic: str, partition: int) -> int:
        value = await self.redis.get(f"{self.prefix}{generation}:checkpoint:{topic}:{partition}")
        return int(value or 0)
