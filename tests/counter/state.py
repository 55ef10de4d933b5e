"""The counter processor's decision state for one batch: counters, moves and credit legs."""

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime

import asyncpg


@dataclass(frozen=True, slots=True)
class Counter:
    counter: str
    balance: int
    sequence: int


@dataclass(frozen=True, slots=True)
class MoveRow:
    move_id: str
    source: str
    target: str
    amount: int
    status: str


class CounterState:
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection
        self.counters: dict[str, Counter] = {}
        self.moves: dict[str, MoveRow] = {}
        self.credits: dict[str, tuple[str, str]] = {}
        self._dirty: set[str] = set()

    async def load(self, counters: Iterable[str], moves: Iterable[str]) -> None:
        wanted = sorted(set(counters) - set(self.counters))
        for row in await self._connection.fetch(
            "SELECT counter, balance, sequence FROM counter.counters WHERE counter = ANY($1)",
            wanted,
        ):
            self.counters[row["counter"]] = Counter(*row.values())
        ids = sorted(set(moves) - set(self.moves) - set(self.credits))
        for row in await self._connection.fetch(
            "SELECT move_id, source, target, amount, status FROM counter.moves"
            " WHERE move_id = ANY($1)",
            ids,
        ):
            self.moves[row["move_id"]] = MoveRow(*row.values())
        for row in await self._connection.fetch(
            "SELECT move_id, target, status FROM counter.credits WHERE move_id = ANY($1)", ids
        ):
            self.credits[row["move_id"]] = (row["target"], row["status"])

    def counter(self, name: str) -> Counter:
        return self.counters.get(name) or Counter(name, 0, 0)

    def change(self, name: str, by: int) -> Counter:
        """Move a counter's balance (or only its sequence) and return it afterwards."""
        before = self.counter(name)
        after = replace(before, balance=before.balance + by, sequence=before.sequence + 1)
        assert after.balance >= 0, "a counter never goes below zero"
        self.counters[name] = after
        self._dirty.add(f"counter:{name}")
        return after

    def set_move(self, move: MoveRow) -> None:
        self.moves[move.move_id] = move
        self._dirty.add(f"move:{move.move_id}")

    def set_credit(self, move_id: str, target: str, status: str) -> None:
        self.credits[move_id] = (target, status)
        self._dirty.add(f"credit:{move_id}")

    async def save(self, connection: asyncpg.Connection, now: datetime) -> None:
        counters = [c for n, c in self.counters.items() if f"counter:{n}" in self._dirty]
        moves = [m for i, m in self.moves.items() if f"move:{i}" in self._dirty]
        credits = [(i, *c) for i, c in self.credits.items() if f"credit:{i}" in self._dirty]
        await connection.executemany(
            "INSERT INTO counter.counters VALUES ($1, $2, $3) ON CONFLICT (counter) DO UPDATE"
            " SET balance = EXCLUDED.balance, sequence = EXCLUDED.sequence",
            [(c.counter, c.balance, c.sequence) for c in counters],
        )
        await connection.executemany(
            "INSERT INTO counter.moves VALUES ($1, $2, $3, $4, $5) ON CONFLICT (move_id)"
            " DO UPDATE SET status = EXCLUDED.status",
            [(m.move_id, m.source, m.target, m.amount, m.status) for m in moves],
        )
        await connection.executemany(
            "INSERT INTO counter.credits VALUES ($1, $2, $3) ON CONFLICT (move_id)"
            " DO UPDATE SET status = EXCLUDED.status",
            credits,
        )
