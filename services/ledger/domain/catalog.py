"""Operation catalogs: which operations each app may record, and for how much.

Every app's catalog must contain every shared operation with the shared amount; an app whose
catalog lacks one stops the service at start, naming the app and the missing operations.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

OPERATION_NAME_PATTERN = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")
APP_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
OPERATION_AMOUNT_LIMIT = 1_000_000_000
"""No single operation may move more than this many units; a typo cannot mint a fortune."""


class CatalogError(ValueError):
    """The catalog configuration is unusable; the message names the app and the problem."""


@dataclass(frozen=True, slots=True)
class Catalog:
    app: str
    operations: Mapping[str, int]

    def amount_of(self, operation: str) -> int | None:
        return self.operations.get(operation)


@dataclass(frozen=True, slots=True)
class Catalogs:
    shared: Mapping[str, int]
    apps: Mapping[str, Catalog]

    def for_app(self, app: str) -> Catalog | None:
        return self.apps.get(app)


def build_catalogs(shared: Mapping[str, int], apps: Mapping[str, Mapping[str, int]]) -> Catalogs:
    """Check and freeze the configuration; raises CatalogError describing every problem."""
    problems = _check_operations("shared operations", shared)
    if not apps:
        problems.append("no app catalogs are configured")
    catalogs: dict[str, Catalog] = {}
    for app, operations in sorted(apps.items()):
        if APP_NAME_PATTERN.match(app) is None:
            problems.append(f"app name {app!r} must be lowercase letters, digits, '_' or '-'")
        problems.extend(_check_operations(f"app {app!r}", operations))
        missing = sorted(set(shared) - set(operations))
        if missing:
            problems.append(
                f"the catalog of app {app!r} lacks the shared operations: {', '.join(missing)}"
            )
        changed = sorted(
            name for name in set(shared) & set(operations) if operations[name] != shared[name]
        )
        if changed:
            problems.append(
                f"the catalog of app {app!r} changes the amount of shared operations: "
                + ", ".join(
                    f"{name} ({operations[name]} instead of {shared[name]})" for name in changed
                )
            )
        catalogs[app] = Catalog(app, MappingProxyType(dict(operations)))
    if problems:
        raise CatalogError("ledger catalog configuration refused: " + "; ".join(problems))
    return Catalogs(MappingProxyType(dict(shared)), MappingProxyType(catalogs))


def _check_operations(owner: str, operations: Mapping[str, int]) -> list[str]:
    problems = []
    for name, amount in operations.items():
        if OPERATION_NAME_PATTERN.match(name) is None:
            problems.append(f"{owner}: operation name {name!r} must be UPPER_SNAKE_CASE")
        if isinstance(amount, bool) or not isinstance(amount, int):
            problems.append(f"{owner}: the amount of {name} must be an integer, not {amount!r}")
        elif abs(amount) > OPERATION_AMOUNT_LIMIT:
            problems.append(f"{owner}: the amount of {name} exceeds {OPERATION_AMOUNT_LIMIT}")
    return problems
