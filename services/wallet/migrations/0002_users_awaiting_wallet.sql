-- The registration repair looked at every user on every round (an anti-join with the wallets),
-- so its cost grew with the user count. A user is now marked once their wallet is seen open,
-- and the repair reads only the unmarked ones, through a partial index.
ALTER TABLE wallet.users ADD COLUMN wallet_seen_open boolean NOT NULL DEFAULT false;
CREATE INDEX users_awaiting_wallet ON wallet.users (created_at) WHERE NOT wallet_seen_open;
