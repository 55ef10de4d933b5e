"""Prometheus metrics. Defining them touches no network; each process exposes its registry."""

from prometheus_client import Counter, Gauge, Histogram

RECORDS_PROCESSED = Counter(
    "ledgerbus_records_processed_total",
    "Records a partition owner applied in a committed transaction.",
    ["consumer", "topic"],
)
BATCHES_COMMITTED = Counter(
    "ledgerbus_batches_committed_total", "Batch transactions committed.", ["consumer"]
)
BATCH_SECONDS = Histogram(
    "ledgerbus_batch_seconds",
    "Time from a batch's arrival to its commit (and publication of its messages).",
    ["consumer"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
PROCESSING_FAILURES = Counter(
    "ledgerbus_processing_failures_total",
    "Batches rolled back and retried.",
    ["consumer", "retryable"],
)
FENCED = Counter(
    "ledgerbus_fenced_total",
    "Batches refused because another owner claimed the partition.",
    ["consumer"],
)
PARTITION_HALTS = Counter(
    "ledgerbus_partition_halts_total",
    "Times a partition halted rather than step over a record.",
    ["consumer", "topic"],
)
PARTITIONS_HALTED = Gauge(
    "ledgerbus_partitions_halted", "Partitions this process holds that are halted.", ["consumer"]
)
DEADLINES_FIRED = Counter(
    "ledgerbus_deadlines_fired_total", "Due-time commands published.", ["consumer"]
)
COMMANDS_FORWARDED = Counter(
    "ledgerbus_commands_forwarded_total",
    "Commands re-published to the partition that owns their key.",
    ["consumer"],
)
DEAD_LETTERS = Counter(
    "ledgerbus_dead_letters_total", "Records sent to a dead-letter topic.", ["consumer", "code"]
)
OUTBOX_PUBLISHED = Counter(
    "ledgerbus_outbox_published_total", "Messages published from the outbox.", ["consumer"]
)
HTTP_REQUESTS = Counter(
    "ledgerbus_http_requests_total", "HTTP requests answered.", ["method", "route", "status"]
)
HTTP_SECONDS = Histogram(
    "ledgerbus_http_request_seconds",
    "HTTP request latency.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
COMMAND_OUTCOME_SECONDS = Histogram(
    "ledgerbus_command_outcome_seconds",
    "Time the gateway waited for a processor's decision.",
    ["service"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
PROJECTION_LAG = Gauge(
    "ledgerbus_projection_lag_records",
    "Records in the log not yet applied by a consumer, summed over partitions.",
    ["consumer"],
)
