"""Process entry: `ledgerbus run ledger-projector`."""

from services.ledger.bootstrap import build_projector
from services.ledger.settings import PROJECTOR_NAME
from shared.worker import run_worker


def main() -> int:
    return run_worker(PROJECTOR_NAME, build_projector)
