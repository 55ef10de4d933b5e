"""Process entry: `ledgerbus run tracking-projector`."""

from services.tracking.bootstrap import build_projector
from services.tracking.settings import PROJECTOR_NAME
from shared.worker import run_worker


def main() -> int:
    return run_worker(PROJECTOR_NAME, build_projector)
