-- Decision state of the counter processor: each row belongs to one counter's partition.
CREATE TABLE counter.counters (
    counter text PRIMARY KEY,
    balance bigint NOT NULL CHECK (balance >= 0),
    sequence bigint NOT NULL
);
-- Moves, kept by the source's partition.
CREATE TABLE counter.moves (
    move_id text PRIMARY KEY,
    source text NOT NULL,
    target text NOT NULL,
    amount bigint NOT NULL,
    status text NOT NULL CHECK (status IN ('pending', 'cancelling', 'settled'))
);
-- Credit legs, kept by the target's partition: the serialisation point of "applied or cancelled".
CREATE TABLE counter.credits (
    move_id text PRIMARY KEY,
    target text NOT NULL,
    status text NOT NULL CHECK (status IN ('applied', 'refused', 'cancelled'))
);
-- Read models, folded from counter.events.
CREATE TABLE counter.balances (
    counter text PRIMARY KEY,
    balance bigint NOT NULL,
    sequence bigint NOT NULL,
    position text NOT NULL
);
CREATE TABLE counter.move_statuses (
    move_id text PRIMARY KEY,
    source text NOT NULL,
    amount bigint NOT NULL,
    status text NOT NULL
);
