-- Platform tables every service schema carries; `{schema}` is replaced by the service's schema.

-- Where each consumer stands in each partition. PostgreSQL, not Kafka, is the source of truth for
-- offsets: a batch's rows and its checkpoint commit together. `epoch` rises each time a consumer
-- claims the partition and fences a stale owner; `generation` rises when a read model is rebuilt
-- and swapped in, which tells the live projector to re-read where it stands.
CREATE TABLE IF NOT EXISTS {schema}.checkpoints (
    consumer text NOT NULL,
    topic text NOT NULL,
    partition integer NOT NULL CHECK (partition >= 0),
    next_offset bigint NOT NULL DEFAULT 0 CHECK (next_offset >= 0),
    epoch bigint NOT NULL DEFAULT 0,
    generation bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, topic, partition)
);

-- Messages decided in a committed transaction and not yet acknowledged by the broker. The
-- partition owner publishes them right after commit; a new owner publishes what a crashed one left.
CREATE TABLE IF NOT EXISTS {schema}.outbox (
    id bigserial PRIMARY KEY,
    consumer text NOT NULL,
    source_topic text NOT NULL,
    source_partition integer NOT NULL,
    topic text NOT NULL,
    key bytea,
    value bytea NOT NULL,
    headers jsonb NOT NULL DEFAULT '[]'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS outbox_by_source
    ON {schema}.outbox (consumer, source_topic, source_partition, id);
