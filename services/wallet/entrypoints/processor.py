"""Process entry: `ledgerbus run wallet-processor`."""

from services.wallet.bootstrap import build_processor
from services.wallet.settings import PROCESSOR_NAME
from shared.worker import run_worker


def main() -> int:
    return run_worker(PROCESSOR_NAME, build_processor)
