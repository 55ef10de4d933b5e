-- The tracking schema (ADR 0022). Decision state belongs to tracking-processor (the partition
-- owner of tracking.commands, and of tracking.events for the daily reward); read models to
-- tracking-projector (built from tracking.events only).

-- Decision state: each user's stream, for the sequence of the next entry.
CREATE TABLE tracking.streams (
    user_id uuid PRIMARY KEY,
    sequence bigint NOT NULL CHECK (sequence >= 1)
);

-- Decision state of the daily-reward policy: the days already rewarded, per user. The nonce
-- sent to the ledger guards the reward even without this table; it saves the repeats.
CREATE TABLE tracking.rewarded_days (
    user_id uuid NOT NULL,
    day date NOT NULL,
    rewarded_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, day)
);

-- Read model: one row per user with their count and last sequence.
CREATE TABLE tracking.users (
    user_id uuid PRIMARY KEY,
    entry_count bigint NOT NULL,
    sequence bigint NOT NULL,
    last_entry_at timestamptz NOT NULL,
    position text NOT NULL
);

-- Read model: every entry. A year document is a query over it, filters apply to entries.
CREATE TABLE tracking.entries (
    id uuid PRIMARY KEY,
    user_id uuid NOT NULL,
    type text NOT NULL,
    date timestamptz NOT NULL,
    year integer NOT NULL,
    meta_data text NOT NULL,
    created_on timestamptz NOT NULL,
    sequence bigint NOT NULL,
    event_id text NOT NULL,
    position text NOT NULL
);
CREATE INDEX entries_by_user_date ON tracking.entries (user_id, date DESC, id DESC);
CREATE INDEX entries_by_user_year ON tracking.entries (user_id, year, date, id);
