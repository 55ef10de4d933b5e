"""Process entry: `ledgerbus run ledger-processor`."""

from services.ledger.bootstrap import build_processor
from services.ledger.settings import PROCESSOR_NAME
from shared.worker import run_worker


def main() -> int:
    return run_worker(PROCESSOR_NAME, build_processor)
