-- The wallet schema (ADR 0021). Identity belongs to the gateway; decision state to
-- wallet-processor (the partition owner of wallet.commands); read models to wallet-projector
-- (built from wallet.events only). Every decision-state and read-model row belongs to one
-- wallet's partition, so members owning different partitions never write the same row.

-- Identity: who may log in. Credentials are state, not events: no PIN hash enters the log.
CREATE TABLE wallet.users (
    user_id uuid PRIMARY KEY,
    email text NOT NULL,
    email_key text NOT NULL,
    name_sealed text NOT NULL,
    email_sealed text NOT NULL,
    pin_hash text NOT NULL,
    created_at timestamptz NOT NULL,
    open_command_id text NOT NULL
);
-- The constraint that decides `email_taken`, whatever the read models say.
CREATE UNIQUE INDEX users_by_email ON wallet.users (email_key);

-- Each user's sealing key (AES-256-GCM). Deleting a row shreds that user's personal data in
-- the log; nothing else references it.
CREATE TABLE wallet.user_keys (
    user_id uuid PRIMARY KEY,
    key bytea NOT NULL CHECK (length(key) = 32),
    created_at timestamptz NOT NULL
);

-- Login attempts since the last success: counted before the PIN is checked.
CREATE TABLE wallet.login_attempts (
    user_id uuid PRIMARY KEY,
    attempts integer NOT NULL CHECK (attempts >= 0),
    last_attempt_at timestamptz NOT NULL,
    locked_until timestamptz,
    locks integer NOT NULL CHECK (locks >= 0)
);

-- Decision state: each wallet's balance and the last sequence of its stream.
CREATE TABLE wallet.wallets (
    user_id uuid PRIMARY KEY,
    balance bigint NOT NULL CHECK (balance >= 0),
    sequence bigint NOT NULL CHECK (sequence >= 1),
    opened_at timestamptz NOT NULL
);

-- Decision state on the sender's partition: each transfer, its request and where it stands.
CREATE TABLE wallet.transfers (
    transfer_id uuid PRIMARY KEY,
    from_user_id uuid NOT NULL,
    to_user_id uuid NOT NULL,
    amount bigint NOT NULL CHECK (amount > 0),
    request_hash text NOT NULL,
    status text NOT NULL
        CHECK (status IN ('rejected', 'pending', 'cancelling', 'completed', 'refunded')),
    origin_source text NOT NULL,
    origin_id text NOT NULL,
    created_at timestamptz NOT NULL,
    settled_at timestamptz
);

-- Decision state on the recipient's partition: the credit leg's one outcome.
CREATE TABLE wallet.credits (
    transfer_id uuid PRIMARY KEY,
    to_user_id uuid NOT NULL,
    status text NOT NULL CHECK (status IN ('applied', 'refused', 'cancelled'))
);

-- Decision state: top-ups by id, so a second command for one top-up changes nothing.
CREATE TABLE wallet.topups (
    topup_id uuid PRIMARY KEY,
    user_id uuid NOT NULL,
    amount bigint NOT NULL CHECK (amount > 0)
);

-- Decision state: recorded (outside) transactions, their version and whether voided.
CREATE TABLE wallet.recorded (
    transaction_id uuid PRIMARY KEY,
    user_id uuid NOT NULL,
    amount bigint NOT NULL CHECK (amount > 0),
    transaction_type text NOT NULL CHECK (transaction_type IN ('credit', 'debit')),
    transaction_date timestamptz NOT NULL,
    full_name_sealed text,
    version integer NOT NULL CHECK (version >= 1),
    voided boolean NOT NULL
);

-- Read model: balances. `issued` is what the system account moved into the wallet (opening
-- balance, top-ups); the system account's balance is minus their sum.
CREATE TABLE wallet.balances (
    user_id uuid PRIMARY KEY,
    balance bigint NOT NULL,
    issued bigint NOT NULL,
    sequence bigint NOT NULL,
    updated_at timestamptz NOT NULL,
    position text NOT NULL
);

-- Read model: every movement of money in or out of a wallet, newest first by sequence.
CREATE TABLE wallet.movements (
    movement_id uuid PRIMARY KEY,
    user_id uuid NOT NULL,
    sequence bigint NOT NULL,
    kind text NOT NULL CHECK (kind IN ('opening', 'topup', 'transfer', 'refund')),
    direction text NOT NULL CHECK (direction IN ('credit', 'debit')),
    amount bigint NOT NULL,
    balance bigint NOT NULL,
    transfer_id uuid,
    counterparty_user_id uuid,
    created_at timestamptz NOT NULL,
    event_id text NOT NULL,
    position text NOT NULL
);
CREATE UNIQUE INDEX movements_by_user ON wallet.movements (user_id, sequence DESC);
CREATE INDEX movements_by_user_time ON wallet.movements (user_id, created_at DESC);

-- Read model: each transfer as its sender's partition sees it.
CREATE TABLE wallet.transfer_debits (
    transfer_id uuid PRIMARY KEY,
    from_user_id uuid NOT NULL,
    to_user_id uuid NOT NULL,
    amount bigint NOT NULL,
    status text NOT NULL CHECK (status IN ('rejected', 'pending', 'completed', 'refunded')),
    code text,
    debited bigint NOT NULL,
    refunded bigint NOT NULL,
    note_sealed text,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    position text NOT NULL
);

-- Read model: each transfer's credit leg as its recipient's partition decided it.
CREATE TABLE wallet.transfer_credits (
    transfer_id uuid PRIMARY KEY,
    to_user_id uuid NOT NULL,
    status text NOT NULL CHECK (status IN ('credited', 'refused')),
    reason text,
    credited bigint NOT NULL,
    decided_at timestamptz NOT NULL,
    position text NOT NULL
);

-- Read model: recorded transactions as they stand now (their history is the log).
CREATE TABLE wallet.recorded_transactions (
    transaction_id uuid PRIMARY KEY,
    user_id uuid NOT NULL,
    amount bigint NOT NULL,
    transaction_type text NOT NULL,
    transaction_date timestamptz NOT NULL,
    full_name_sealed text,
    status text NOT NULL CHECK (status IN ('active', 'voided')),
    version integer NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    position text NOT NULL
);
CREATE INDEX recorded_by_user ON wallet.recorded_transactions (user_id, transaction_date DESC);
