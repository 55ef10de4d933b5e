"""Reading the analytics aggregates for an answer: one script call returns the live generation,
the hash asked for under it and every partition's caught-up time, so an answer never mixes two
generations (a rebuild switches them, and the old one is then deleted).
"""

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from fractions import Fraction
from typing import Any

from redis.asyncio import Redis

from services.analytics.domain.summary import Bucket, Summary

READ = """
local prefix, suffix = ARGV[1], ARGV[2]
local generation = redis.call('GET', prefix .. 'generation')
if not generation then
  return {false, redis.call('GET', prefix .. 'building') or false}
end
local base = prefix .. generation .. ':'
return {generation, redis.call('HGETALL', base .. suffix), redis.call('HVALS', base .. 'caught_up')}
"""

SUMMARY = """
local prefix, user, first_day, last_day = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local generation = redis.call('GET', prefix .. 'generation')
if not generation then
  return {false, redis.call('GET', prefix .. 'building') or false}
end
local base = prefix .. generation .. ':'
local key = base .. 'user:' .. user
local function score(day) return tonumber(string.sub(day, 1, 4) .. string.sub(day, 6, 7)) end
local months = redis.call('ZRANGEBYSCORE', base .. 'months:' .. user,
  first_day == '' and '-inf' or score(first_day), last_day == '' and '+inf' or score(last_day))
-- Amounts are split at nine digits and each part summed apart: a Lua number is a double,
-- exact only below 2^53, and a sum of paisa may pass that.
local sums = {credit = {0, 0}, debit = {0, 0}}
local count, best_day, best_count = 0, false, 0
local function add(measure, text)
  sums[measure][1] = sums[measure][1] + (tonumber(string.sub(text, 1, -10)) or 0)
  sums[measure][2] = sums[measure][2] + tonumber(string.sub(text, -9))
end
local function consider(value, day)
  if value > best_count or (value == best_count and value > 0 and day < best_day) then
    best_day, best_count = day, value
  end
end
local function inside(day)
  return (first_day == '' or day >= first_day) and (last_day == '' or day <= last_day)
end
for _, month in ipairs(months) do
  if inside(month .. '-01') and inside(month .. '-31') then
    local totals = redis.call('HMGET', key, month .. ':count', month .. ':credit',
      month .. ':debit', month .. ':best')
    count = count + tonumber(totals[1] or '0')
    add('credit', totals[2] or '0')
    add('debit', totals[3] or '0')
    local busiest, day = string.match(totals[4] or '', '^(%d+)|(.+)$')
    if busiest then consider(tonumber(busiest), day) end
  else
    local fields = {}
    for number = 1, 31 do
      local day = string.format('%s-%02d', month, number)
      fields[#fields + 1] = day .. ':count'
      fields[#fields + 1] = day .. ':credit'
      fields[#fields + 1] = day .. ':debit'
    end
    local values = redis.call('HMGET', key, unpack(fields))
    for number = 1, 31 do
      local day = string.format('%s-%02d', month, number)
      local value = tonumber(values[3 * number - 2] or '0')
      if value > 0 and inside(day) then
        count = count + value
        add('credit', values[3 * number - 1] or '0')
        add('debit', values[3 * number] or '0')
        consider(value, day)
      end
    end
  end
end
local function text(number) return string.format('%.0f', number) end
return {generation, {text(count), text(sums.credit[1]), text(sums.credit[2]),
  text(sums.debit[1]), text(sums.debit[2]), best_day, text(best_count)},
  redis.call('HVALS', base .. 'caught_up')}
"""
"""The summary over the user's buckets, added up inside Redis in one round trip: a month
wholly inside the range by its month bucket (totals and busiest day), the months at the range's
edges day by day; only months with transactions are visited (the months index). The cost is
bounded by the months with activity in the range, not by the days. Days are `YYYY-MM-DD`, so
text order is date order; amounts are summed exactly in two parts."""
AMOUNT_SPLIT = 10**9
"""The script sums each amount's digits above and below this apart (see SUMMARY)."""

CHECKPOINTS = """
local prefix, topic, count = ARGV[1], ARGV[2], tonumber(ARGV[3])
local generation = redis.call('GET', prefix .. 'generation')
if not generation then return false end
local found = {}
for partition = 0, count - 1 do
  found[#found + 1] = redis.call('GET', prefix .. generation .. ':checkpoint:' .. topic .. ':'
    .. partition) or '0'
end
return found
"""

POSITION_POLL_SECONDS = 0.025
"""How often a read that waits for a position looks at the checkpoints again."""


class NotLiveError(RuntimeError):
    """Redis holds no live generation: it lost its data and a rebuild is under way (or no
    aggregator ever ran). Answers wait for the rebuild rather than show wrong numbers."""

    def __init__(self, building: bool) -> None:
        super().__init__("rebuilding" if building else "no_generation")
        self.building = building


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


@dataclass(frozen=True, slots=True)
class Read:
    fields: dict[str, str]
    as_of: datetime


def _as_of(values: list[Any]) -> datetime:
    """The newest time at which every partition had applied all the log held."""
    smallest = min((int(_text(value)) for value in values), default=0)
    return datetime.fromtimestamp(smallest / 1000, tz=UTC)


@dataclass(slots=True)
class AnalyticsReads:
    redis: Redis
    prefix: str
    _read: Any = field(default=None)
    _checkpoints: Any = field(default=None)
    _summary: Any = field(default=None)

    def __post_init__(self) -> None:
        self._read = self.redis.register_script(READ)
        self._summary = self.redis.register_script(SUMMARY)
        self._checkpoints = self.redis.register_script(CHECKPOINTS)

    async def read(self, suffix: str) -> Read:
        """The hash `suffix` of the live generation, and the answers' `as_of`."""
        answer = await self._read(args=[self.prefix, suffix])
        if answer[0] is None:
            raise NotLiveError(building=answer[1] is not None)
        flat = [_text(item) for item in answer[1]]
        fields = dict(zip(flat[0::2], flat[1::2], strict=True))
        return Read(fields, _as_of(answer[2]))

    async def summary(
        self, user_id: str, since: date | None, until: date | None
    ) -> tuple[Summary, datetime]:
        """The user's summary over `[since, until]` (either open), added up in Redis."""
        answer = await self._summary(args=[
            self.prefix, user_id, "" if since is None else since.isoformat(),
            "" if until is None else until.isoformat(),
        ])  # fmt: skip
        if answer[0] is None:
            raise NotLiveError(building=answer[1] is not None)
        numbers = answer[1]
        count = int(_text(numbers[0]))
        credit = int(_text(numbers[1])) * AMOUNT_SPLIT + int(_text(numbers[2]))
        debit = int(_text(numbers[3])) * AMOUNT_SPLIT + int(_text(numbers[4]))
        best = None
        if count > 0:
            best = (date.fromisoformat(_text(numbers[5])), int(_text(numbers[6])))
        average = Fraction(credit + debit, count) if count else Fraction(0)
        return Summary(count, credit, debit, average, best), _as_of(answer[2])

    async def counters(self, suffix: str) -> tuple[dict[str, int], datetime]:
        read = await self.read(suffix)
        return {name: int(value) for name, value in read.fields.items()}, read.as_of

    async def checkpoints(self, topic: str, partitions: int) -> dict[int, int]:
        answer = await self._checkpoints(args=[self.prefix, topic, partitions])
        if answer is None:
            raise NotLiveError(building=False)
        return {partition: int(value) for partition, value in enumerate(answer)}

    async def wait_for(
        self, topic: str, partitions: int, wanted: Mapping[int, int], timeout_seconds: float
    ) -> bool:
        """Whether every wanted partition's checkpoint passed its offset within the time."""
        deadline = time.monotonic() + timeout_seconds
        while True:
            known = await self.checkpoints(topic, partitions)
            if all(known.get(partition, 0) > offset for partition, offset in wanted.items()):
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(POSITION_POLL_SECONDS)


def day_buckets(fields: Mapping[str, str]) -> dict[date, Bucket]:
    """A user hash's day buckets (`<day>:count`, `<day>:credit`, `<day>:debit`); its month
    buckets are left out."""
    measures: dict[date, dict[str, int]] = {}
    for name, value in fields.items():
        day, _, measure = name.partition(":")
        if len(day) != len("YYYY-MM-DD"):
            continue  # a month bucket
        measures.setdefault(date.fromisoformat(day), {})[measure] = int(value)
    return {
        day: Bucket(values.get("count", 0), values.get("credit", 0), values.get("debit", 0))
        for day, values in measures.items()
    }
