-- The ledger schema. Decision state belongs to ledger-processor (the partition owner of
-- ledger.commands); read models belong to ledger-projector (built from ledger.events only).

-- Decision state: one row per (app, owner) with the balance and the stream's last sequence.
CREATE TABLE ledger.accounts (
    app text NOT NULL,
    owner_id text NOT NULL,
    balance bigint NOT NULL CHECK (balance >= 0),
    sequence bigint NOT NULL CHECK (sequence >= 0),
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (app, owner_id)
);

-- Decision state: the one outcome of each nonce within its app, kept forever. The event's
-- partition and offset are filled in once the broker has acknowledged it.
CREATE TABLE ledger.decisions (
    app text NOT NULL,
    nonce text NOT NULL,
    owner_id text NOT NULL,
    operation text NOT NULL,
    amount bigint NOT NULL,
    status text NOT NULL CHECK (status IN ('recorded', 'rejected')),
    code text,
    detail text,
    entry_id uuid NOT NULL,
    event_id text NOT NULL,
    balance bigint NOT NULL CHECK (balance >= 0),
    sequence bigint NOT NULL CHECK (sequence >= 1),
    decided_at timestamptz NOT NULL,
    command_id text NOT NULL,
    event_partition integer,
    event_offset bigint,
    PRIMARY KEY (app, nonce)
);

-- Decision state: what each command (by CloudEvent id) was answered, so a waiting client, a
-- poll or a redelivered command all see the same answer.
CREATE TABLE ledger.command_outcomes (
    command_id text PRIMARY KEY,
    app text NOT NULL,
    nonce text NOT NULL,
    owner_id text NOT NULL,
    operation text NOT NULL,
    status smallint NOT NULL,
    code text,
    detail text,
    decided_at timestamptz NOT NULL
);

-- Read model: balances, folded from ledger.events.
CREATE TABLE ledger.balances (
    app text NOT NULL,
    owner_id text NOT NULL,
    balance bigint NOT NULL,
    last_updated timestamptz NOT NULL,
    sequence bigint NOT NULL,
    position text NOT NULL,
    PRIMARY KEY (app, owner_id)
);

-- Read model: recorded entries, newest first per owner by sequence.
CREATE TABLE ledger.entries (
    id uuid PRIMARY KEY,
    app text NOT NULL,
    owner_id text NOT NULL,
    operation text NOT NULL,
    amount bigint NOT NULL,
    nonce text NOT NULL,
    created_on timestamptz NOT NULL,
    balance bigint NOT NULL,
    sequence bigint NOT NULL,
    event_id text NOT NULL,
    position text NOT NULL
);
CREATE INDEX entries_by_owner ON ledger.entries (app, owner_id, sequence DESC);
