"""Process entry: `ledgerbus run tracking-processor`."""

from services.tracking.bootstrap import build_processor
from services.tracking.settings import PROCESSOR_NAME
from shared.worker import run_worker


def main() -> int:
    return run_worker(PROCESSOR_NAME, build_processor)
