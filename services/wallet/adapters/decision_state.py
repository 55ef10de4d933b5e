"""The wallet processor's decision state for one batch: loaded by the handlers, saved once.

Every row belongs to one wallet's partition (a wallet, a sender's transfer, a recipient's
credit leg, a top-up, a recorded transaction), so the partition's owner is its only writer.
Loads and saves are one statement per table per batch.
"""

from collections.abc import Iterable, Sequence
from datetime import datetime
from uuid import UUID

import asyncpg

from services.wallet.domain.model import CreditStatus, Origin, Transfer, TransferStatus, Wallet
from services.wallet.domain.recorded import Recorded


class WalletState:
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection
        self.wallets: dict[UUID, Wallet | None] = {}
        self.transfers: dict[UUID, Transfer | None] = {}
        self.credits: dict[UUID, CreditStatus | None] = {}
        self.credit_recipients: dict[UUID, UUID] = {}
        self.topups: dict[UUID, tuple[UUID, int] | None] = {}
        self.recorded: dict[UUID, Recorded | None] = {}
        self._dirty_wallets: set[UUID] = set()
        self._dirty_transfers: set[UUID] = set()
        self._dirty_credits: set[UUID] = set()
        self._dirty_topups: set[UUID] = set()
        self._dirty_recorded: set[UUID] = set()

    # Loading -------------------------------------------------------------------------------

    async def load_wallets(self, user_ids: Iterable[UUID]) -> None:
        wanted = sorted(set(user_ids) - self.wallets.keys())
        if not wanted:
            return
        rows = await self._connection.fetch(
            "SELECT user_id, balance, sequence, opened_at FROM wallet.wallets"
            " WHERE user_id = ANY($1::uuid[])",
            wanted,
        )
        self.wallets.update(dict.fromkeys(wanted))
        for row in rows:
            self.wallets[row["user_id"]] = Wallet(*row.values())

    async def load_transfers(self, transfer_ids: Iterable[UUID]) -> None:
        wanted = sorted(set(transfer_ids) - self.transfers.keys())
        if not wanted:
            return
        rows = await self._connection.fetch(
            "SELECT transfer_id, from_user_id, to_user_id, amount, request_hash, status,"
            " origin_source, origin_id, created_at, settled_at FROM wallet.transfers"
            " WHERE transfer_id = ANY($1::uuid[])",
            wanted,
        )
        self.transfers.update(dict.fromkeys(wanted))
        for row in rows:
            self.transfers[row["transfer_id"]] = Transfer(
                row["transfer_id"], row["from_user_id"], row["to_user_id"], row["amount"],
                row["request_hash"], TransferStatus(row["status"]),
                Origin(row["origin_source"], row["origin_id"]), row["created_at"],
                row["settled_at"],
            )  # fmt: skip

    async def load_credits(self, transfer_ids: Iterable[UUID]) -> None:
        wanted = sorted(set(transfer_ids) - self.credits.keys())
        if not wanted:
            return
        rows = await self._connection.fetch(
            "SELECT transfer_id, status FROM wallet.credits WHERE transfer_id = ANY($1::uuid[])",
            wanted,
        )
        self.credits.update(dict.fromkeys(wanted))
        for row in rows:
            self.credits[row["transfer_id"]] = CreditStatus(row["status"])

    async def load_topups(self, topup_ids: Iterable[UUID]) -> None:
        wanted = sorted(set(topup_ids) - self.topups.keys())
        if not wanted:
            return
        rows = await self._connection.fetch(
            "SELECT topup_id, user_id, amount FROM wallet.topups WHERE topup_id = ANY($1::uuid[])",
            wanted,
        )
        self.topups.update(dict.fromkeys(wanted))
        for row in rows:
            self.topups[row["topup_id"]] = (row["user_id"], row["amount"])

    async def load_recorded(self, transaction_ids: Iterable[UUID]) -> None:
        wanted = sorted(set(transaction_ids) - self.recorded.keys())
        if not wanted:
            return
        rows = await self._connection.fetch(
            "SELECT transaction_id, user_id, amount, transaction_type, transaction_date,"
            " full_name_sealed, version, voided FROM wallet.recorded"
            " WHERE transaction_id = ANY($1::uuid[])",
            wanted,
        )
        self.recorded.update(dict.fromkeys(wanted))
        for row in rows:
            self.recorded[row["transaction_id"]] = Recorded(*row.values())

    # Changing ------------------------------------------------------------------------------

    def wallet(self, user_id: UUID) -> Wallet | None:
        assert user_id in self.wallets, "wallets are loaded before they are decided on"
        return self.wallets[user_id]

    def set_wallet(self, wallet: Wallet) -> None:
        self.wallets[wallet.user_id] = wallet
        self._dirty_wallets.add(wallet.user_id)

    def set_transfer(self, transfer: Transfer) -> None:
        self.transfers[transfer.transfer_id] = transfer
        self._dirty_transfers.add(transfer.transfer_id)

    def set_credit(self, transfer_id: UUID, to_user_id: UUID, status: CreditStatus) -> None:
        self.credits[transfer_id] = status
        self.credit_recipients[transfer_id] = to_user_id
        self._dirty_credits.add(transfer_id)

    def set_topup(self, topup_id: UUID, user_id: UUID, amount: int) -> None:
        self.topups[topup_id] = (user_id, amount)
        self._dirty_topups.add(topup_id)

    def set_recorded(self, record: Recorded) -> None:
        self.recorded[record.transaction_id] = record
        self._dirty_recorded.add(record.transaction_id)

    # Saving --------------------------------------------------------------------------------

    async def save(self, connection: asyncpg.Connection, now: datetime) -> None:
        await self._save_wallets(connection)
        await self._save_transfers(connection)
        await self._save_credits(connection)
        await self._save_topups(connection)
        await self._save_recorded(connection)

    async def _save_wallets(self, connection: asyncpg.Connection) -> None:
        rows = [self.wallets[user_id] for user_id in sorted(self._dirty_wallets)]
        if not rows:
            return
        await connection.execute(
            "INSERT INTO wallet.wallets (user_id, balance, sequence, opened_at)"
            " SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::timestamptz[])"
            " ON CONFLICT (user_id) DO UPDATE SET balance = EXCLUDED.balance,"
            " sequence = EXCLUDED.sequence",
            *_columns([(w.user_id, w.balance, w.sequence, w.opened_at) for w in rows if w], 4),
        )

    async def _save_transfers(self, connection: asyncpg.Connection) -> None:
        rows = [self.transfers[key] for key in sorted(self._dirty_transfers)]
        values = [
            (t.transfer_id, t.from_user_id, t.to_user_id, t.amount, t.request_hash,
             t.status.value, t.origin.source, t.origin.message_id, t.created_at, t.settled_at)
            for t in rows if t is not None
        ]  # fmt: skip
        if not values:
            return
        await connection.execute(
            "INSERT INTO wallet.transfers (transfer_id, from_user_id, to_user_id, amount,"
            " request_hash, status, origin_source, origin_id, created_at, settled_at)"
            " SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::bigint[], $5::text[],"
            " $6::text[], $7::text[], $8::text[], $9::timestamptz[], $10::timestamptz[])"
            " ON CONFLICT (transfer_id) DO UPDATE SET status = EXCLUDED.status,"
            " settled_at = EXCLUDED.settled_at",
            *_columns(values, 10),
        )

    async def _save_credits(self, connection: asyncpg.Connection) -> None:
        values = [
            (key, self.credit_recipients[key], status.value)
            for key in sorted(self._dirty_credits)
            if (status := self.credits[key]) is not None
        ]
        if not values:
            return
        # A leg is decided once: a second decision for one transfer is a bug, not an update.
        await connection.execute(
            "INSERT INTO wallet.credits (transfer_id, to_user_id, status)"
            " SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[])",
            *_columns(values, 3),
        )

    async def _save_topups(self, connection: asyncpg.Connection) -> None:
        values = [
            (key, *found)
            for key in sorted(self._dirty_topups)
            if (found := self.topups[key]) is not None
        ]
        if not values:
            return
        await connection.execute(
            "INSERT INTO wallet.topups (topup_id, user_id, amount)"
            " SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::bigint[])",
            *_columns(values, 3),
        )

    async def _save_recorded(self, connection: asyncpg.Connection) -> None:
        rows = [self.recorded[key] for key in sorted(self._dirty_recorded)]
        values = [
            (r.transaction_id, r.user_id, r.amount, r.transaction_type, r.transaction_date,
             r.full_name_sealed, r.version, r.voided)
            for r in rows if r is not None
        ]  # fmt: skip
        if not values:
            return
        await connection.execute(
            "INSERT INTO wallet.recorded (transaction_id, user_id, amount, transaction_type,"
            " transaction_date, full_name_sealed, version, voided)"
            " SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::text[],"
            " $5::timestamptz[], $6::text[], $7::integer[], $8::boolean[])"
            " ON CONFLICT (transaction_id) DO UPDATE SET amount = EXCLUDED.amount,"
            " transaction_type = EXCLUDED.transaction_type,"
            " transaction_date = EXCLUDED.transaction_date,"
            " full_name_sealed = EXCLUDED.full_name_sealed, version = EXCLUDED.version,"
            " voided = EXCLUDED.voided",
            *_columns(values, 8),
        )


def _columns(rows: Sequence[tuple[object, ...]], width: int) -> list[list[object]]:
    """Rows to the column arrays `unnest` takes."""
    return [list(column) for column in zip(*rows, strict=True)] if rows else [[]] * width
