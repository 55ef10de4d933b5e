"""The failure policy's arithmetic: bounded backoff, and what isolates or halts."""

from shared.engine.checkpoints import Claim
from shared.engine.failures import (
    ATTEMPTS_BEFORE_HALT,
    ATTEMPTS_BEFORE_ISOLATION,
    RETRY_BACKOFF_MAX_SECONDS,
    FailurePolicy,
    OwnedPartition,
    backoff_seconds,
)
from tests.support.records import consumer_record


def test_backoff_grows_then_stays_bounded_however_long_an_outage_lasts() -> None:
    assert backoff_seconds(1) < backoff_seconds(2) < backoff_seconds(5)
    assert backoff_seconds(1_100) == RETRY_BACKOFF_MAX_SECONDS  # once an OverflowError
    assert backoff_seconds(10**9) == RETRY_BACKOFF_MAX_SECONDS


def test_a_batch_is_isolated_before_one_record_alone_halts() -> None:
    owned = OwnedPartition(Claim(0, 1, 0))
    batch = [consumer_record("t", 0, offset, b"k", b"v") for offset in range(5)]
    owned.failures = ATTEMPTS_BEFORE_ISOLATION
    assert not FailurePolicy._isolate_or_halt(owned, batch)
    assert (owned.isolate_through_offset, owned.failures) == (4, 0)
    owned.failures = ATTEMPTS_BEFORE_HALT - 1
    assert not FailurePolicy._isolate_or_halt(owned, batch[:1])
    owned.failures = ATTEMPTS_BEFORE_HALT
    assert FailurePolicy._isolate_or_halt(owned, batch[:1])
