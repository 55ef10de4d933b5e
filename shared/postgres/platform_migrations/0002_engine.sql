-- The engine's tables in every service schema; `{schema}` is replaced by the service's schema.

-- Whether a partition moves and whether it is halted: `advanced_at` is stamped by every
-- committed batch; `halted_reason` is set when the owner stops a partition rather than step
-- over a record, and cleared when a retry succeeds.
ALTER TABLE {schema}.checkpoints
    ADD COLUMN advanced_at timestamptz,
    ADD COLUMN halted_reason text,
    ADD COLUMN halted_at timestamptz;

-- Who holds a partition and whether it is alive: the owner stamps `heartbeat_at` every second
-- while it holds the partition, so readiness and the audit tell an owned partition from an
-- orphaned one. A table of its own, because a batch keeps its checkpoint row locked for the
-- whole transaction and a heartbeat must never wait behind it; a heartbeat of an older epoch
-- never overwrites a newer owner's.
CREATE TABLE {schema}.partition_owners (
    consumer text NOT NULL,
    topic text NOT NULL,
    partition integer NOT NULL,
    epoch bigint NOT NULL,
    owner text NOT NULL,
    heartbeat_at timestamptz NOT NULL,
    PRIMARY KEY (consumer, topic, partition)
);

-- An outbox row knows its message id, and which stored replies wait for its position.
ALTER TABLE {schema}.outbox
    ADD COLUMN message_id text,
    ADD COLUMN reply_keys jsonb;

-- Every message a processor handled, by CloudEvents identity (source + id), with the reply it
-- gave when it is a command. A redelivered message finds its row and is not handled again; the
-- gateway and `GET /<service>/commands/{id}` read the reply. A reply that names the position
-- of an event waits (`reply_awaits_position`) until that event is published.
CREATE TABLE {schema}.inbox (
    consumer text NOT NULL,
    source text NOT NULL,
    message_id text NOT NULL,
    message_type text NOT NULL,
    handled_at timestamptz NOT NULL,
    reply_status smallint,
    reply_body text,
    reply_scope text,
    reply_position text,
    reply_awaits_position boolean NOT NULL DEFAULT false,
    notify boolean NOT NULL DEFAULT false,
    replied_at timestamptz,
    PRIMARY KEY (consumer, source, message_id)
);
CREATE INDEX inbox_by_message_id ON {schema}.inbox (consumer, message_id);

-- Due-time commands: written by a handler in its transaction, published by the owner of the
-- partition that scheduled them once they fall due (a saga leg's deadline, for example).
CREATE TABLE {schema}.deadlines (
    consumer text NOT NULL,
    name text NOT NULL,
    source_topic text NOT NULL,
    source_partition integer NOT NULL,
    due_at timestamptz NOT NULL,
    topic text NOT NULL,
    key bytea,
    value bytea NOT NULL,
    headers jsonb NOT NULL DEFAULT '[]'::jsonb,
    message_id text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, name)
);
CREATE INDEX deadlines_by_partition
    ON {schema}.deadlines (consumer, source_topic, source_partition, due_at);

-- The events a projector applied, by stream and sequence: a repeat of an event (same id) is
-- recognised and skipped, and a different event reusing a sequence halts the projector.
CREATE TABLE {schema}.applied_events (
    stream text NOT NULL,
    sequence bigint NOT NULL CHECK (sequence >= 1),
    event_id text NOT NULL,
    PRIMARY KEY (stream, sequence)
);
