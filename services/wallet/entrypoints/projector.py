"""Process entry: `ledgerbus run wallet-projector`."""

from services.wallet.bootstrap import build_projector
from services.wallet.settings import PROJECTOR_NAME
from shared.worker import run_worker


def main() -> int:
    return run_worker(PROJECTOR_NAME, build_projector)
