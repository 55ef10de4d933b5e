"""A gateway-side cache of read-model answers, valid only while their partition stands still.

Each entry remembers the projection checkpoint of its partition at the moment it was read, in
the same query as the row. The entry is served only while the gateway knows of no later commit
on that partition (the projector announces every commit with NOTIFY, see `CheckpointWatcher`)
and while the LISTEN connection is up; otherwise the read goes to PostgreSQL. A cached answer is
therefore never older than what PostgreSQL would return at the newest position the gateway knows.
"""

from collections import OrderedDict
from collections.abc import Hashable, Mapping
from dataclasses import dataclass

READ_CACHE_ENTRIES_MAX = 100_000


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    partition: int
    checkpoint: int
    listening: tuple[int, int]
    """What the entry was read under (see `CheckpointWatcher.listening`); any change voids it."""
    body: bytes


class ReadCache:
    def __init__(self, max_entries: int = READ_CACHE_ENTRIES_MAX) -> None:
        self._entries: OrderedDict[Hashable, CachedAnswer] = OrderedDict()
        self._max_entries = max_entries

    def get(
        self, key: Hashable, known: Mapping[int, int], listening: tuple[int, int] | None
    ) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None or listening is None:
            return None
        stale = known.get(entry.partition, entry.checkpoint) > entry.checkpoint
        if stale or entry.listening != listening:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry.body

    def put(self, key: Hashable, answer: CachedAnswer) -> None:
        self._entries[key] = answer
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
