"""The aggregates recomputed from the log in memory, for the audit: an implementation of what the
batch script does (ADR 0017), written apart from it in Python over the domain's increments, so
that the audit compares two computations rather than one with itself.

Each Redis hash is a dict of field to text, named by its key under the generation (`user:<id>`,
`app:<app>`, `tracking:<id>`, `records`, `streams`); the months index `months:<id>` (a sorted
set) is a dict of month to score. Fields left at zero by increments that cancelled out carry
no information and are dropped on both sides (`normalized`).
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

from services.analytics.adapters.redis_aggregates import AggregateEvent, encode
from services.analytics.domain.summary import Contribution, increments

DATA_KEY_PREFIXES = ("user:", "months:", "app:", "tracking:")
DATA_KEYS = ("records", "streams")


def is_data_key(suffix: str) -> bool:
    """Whether a key under the generation holds aggregates (not ownership or progress)."""
    return suffix in DATA_KEYS or suffix.startswith(DATA_KEY_PREFIXES)


def normalized(suffix: str, fields: Mapping[str, str]) -> dict[str, str]:
    """A hash as compared: counters at zero dropped (HINCRBY by 0 leaves such fields)."""
    if suffix in DATA_KEYS:
        return dict(fields)
    return {name: value for name, value in fields.items() if value != "0"}


@dataclass(slots=True)
class ExpectedAggregates:
    hashes: dict[str, dict[str, int | str]] = field(default_factory=dict)
    contributions: dict[str, Contribution] = field(default_factory=dict)
    """Each recorded transaction's current contribution (what `records` holds, typed)."""
    events_applied: int = 0
    repeats_skipped: int = 0

    def _add(self, suffix: str, name: str, amount: int) -> None:
        hash_ = self.hashes.setdefault(suffix, {})
        current = hash_.get(name, 0)
        assert isinstance(current, int), f"{suffix} {name} is a counter"
        hash_[name] = current + amount

    def apply(self, event: AggregateEvent) -> None:
        streams = self.hashes.setdefault("streams", {})
        last = int(streams.get(event.stream, 0))
        if event.sequence <= last:
            self.repeats_skipped += 1
            return
        streams[event.stream] = event.sequence
        self.events_applied += 1
        if event.kind == "counters":
            for suffix, name, amount in event.counters:
                self._add(suffix, name, amount)
            return
        previous = None
        records = self.hashes.setdefault("records", {})
        if event.kind == "record":
            previous = self.contributions.pop(event.key, None)
            records.pop(event.key, None)
            if event.contribution is not None:
                records[event.key] = encode(event.contribution)
                self.contributions[event.key] = event.contribution
        touched = []
        for change in increments(previous, event.contribution):
            suffix = f"user:{change.user_id}"
            day = change.day.isoformat()
            for period in (day, day[:7]):
                self._add(suffix, f"{period}:count", change.count)
                self._add(suffix, f"{period}:credit", change.credit)
                self._add(suffix, f"{period}:debit", change.debit)
            touched.append((str(change.user_id), day))
        for user, day in touched:
            self._settle(user, day)

    def _settle(self, user: str, day: str) -> None:
        """What the script does after a change to a day: empty buckets lose their fields, the
        months index lists months with transactions, a month's busiest day is found again."""
        fields, month = self.hashes.setdefault(f"user:{user}", {}), day[:7]
        if fields.get(f"{day}:count", 0) == 0:
            for measure in ("count", "credit", "debit"):
                fields.pop(f"{day}:{measure}", None)
        months = self.hashes.setdefault(f"months:{user}", {})
        if fields.get(f"{month}:count", 0) == 0:
            for measure in ("count", "credit", "debit", "best"):
                fields.pop(f"{month}:{measure}", None)
            months.pop(month, None)
            return
        months[month] = month.replace("-", "").lstrip("0") or "0"
        days = [f"{month}-{number:02d}" for number in range(1, 32)]
        counts = [(int(fields.get(f"{name}:count", 0)), name) for name in days]
        busiest = max(counts, key=lambda item: (item[0], -days.index(item[1])))
        fields[f"{month}:best"] = f"{busiest[0]}|{busiest[1]}"

    def text_of(self, suffix: str) -> dict[str, str]:
        """One data hash as Redis would hand it back, normalized (empty when there is none)."""
        fields = self.hashes.get(suffix, {})
        return normalized(suffix, {name: str(value) for name, value in fields.items()})

    def data_keys(self) -> set[str]:
        return {suffix for suffix in self.hashes if is_data_key(suffix)}
