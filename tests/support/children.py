"""Child processes for supervisor tests: a Python snippet run as its own process."""

import os
import sys
import textwrap
from pathlib import Path

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]


def python_child(code: str) -> list[str]:
    """Return the argv that runs ``code`` in an unbuffered Python child."""
    return [sys.executable, "-u", "-c", textwrap.dedent(code)]


def child_environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPOSITORY_ROOT)}
