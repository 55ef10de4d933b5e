"""Wiring for the wallet's processes. Nothing connects until a builder is awaited."""

from typing import Any

from services.wallet.adapters.decision_state import WalletState
from services.wallet.adapters.registration_repair import RegistrationRepair
from services.wallet.handlers.credit_transfer import credit_transfer
from services.wallet.handlers.expire_transfer import expire_transfer
from services.wallet.handlers.open_wallet import open_wallet
from services.wallet.handlers.poison import on_poison
from services.wallet.handlers.recorded_transactions import recorded_transactions
from services.wallet.handlers.settle_transfer import settle_transfer
from services.wallet.handlers.top_up import top_up
from services.wallet.handlers.transfer_money import TransferMoneyHandler
from services.wallet.projections.wallet_view import WALLET_PROJECTIONS
from services.wallet.settings import (
    COMMANDS_TOPIC,
    EVENTS_TOPIC,
    PROCESSOR_NAME,
    PROJECTOR_NAME,
    SCHEMA,
    WalletSettings,
)
from shared.contracts.wallet import (
    WALLET_COMMANDS,
    WALLET_SOURCE,
    AmendTransaction,
    CancelCredit,
    CreditTransfer,
    ExpireTransfer,
    OpenWallet,
    RecordTransaction,
    SettleTransfer,
    TopUpWallet,
    TransferMoney,
    VoidTransaction,
)
from shared.engine.processor import Processor, ProcessorSpec, TopicInput
from shared.engine.projector import Projector
from shared.engine.workers import build_owner_worker
from shared.settings import PlatformSettings
from shared.worker import StopSignal, Worker


def wallet_of(command: Any) -> str:
    """The wallet a command belongs to: the partition that must decide it."""
    if isinstance(command, TransferMoney | ExpireTransfer | SettleTransfer):
        return str(command.from_user_id)
    if isinstance(command, CreditTransfer | CancelCredit):
        return str(command.to_user_id)
    assert isinstance(
        command, OpenWallet | TopUpWallet | RecordTransaction | AmendTransaction | VoidTransaction
    ), type(command)
    return str(command.user_id)


def _user_of(data: Any) -> str | None:
    """Who may read the stored answer of a refused command: the user it names, if any."""
    for name in ("from_user_id", "user_id"):
        value = data.get(name)
        if isinstance(value, str):
            return value
    return None


def wallet_processor(settings: WalletSettings) -> ProcessorSpec[WalletState]:
    """wallet-processor: decides wallet commands, each on the partition of its wallet."""
    return ProcessorSpec(
        name=PROCESSOR_NAME,
        schema=SCHEMA,
        source=WALLET_SOURCE,
        inputs=(TopicInput(COMMANDS_TOPIC, WALLET_COMMANDS, aggregate_key=wallet_of),),
        handlers={
            OpenWallet: open_wallet,
            TopUpWallet: top_up,
            TransferMoney: TransferMoneyHandler(settings.wallet_transfer_deadline_seconds),
            CreditTransfer: credit_transfer,
            CancelCredit: credit_transfer,
            ExpireTransfer: expire_transfer,
            SettleTransfer: settle_transfer,
            RecordTransaction: recorded_transactions,
            AmendTransaction: recorded_transactions,
            VoidTransaction: recorded_transactions,
        },
        new_state=WalletState,
        scope_of=_user_of,
        on_poison=on_poison,
    )


async def build_processor(settings: PlatformSettings, stop: StopSignal) -> Worker:
    wallet_settings = WalletSettings()
    processor = Processor(wallet_processor(wallet_settings), settings.topic)
    worker = await build_owner_worker(
        settings, stop, name=PROCESSOR_NAME, schema=SCHEMA, topics=processor.topics,
        handler=processor, sweeps_deadlines=True,
        batch_max_records=wallet_settings.wallet_batch_max_records,
        description="Decides wallet commands: openings, top-ups, transfer legs, records.",
    )  # fmt: skip
    repair = RegistrationRepair(
        worker.pool, worker.producer, settings.topic(COMMANDS_TOPIC),
        wallet_settings.wallet_registration_repair_seconds,
    )  # fmt: skip
    worker.extra_start.append(repair.start)
    worker.extra_stop.insert(0, repair.stop)
    return worker


async def build_projector(settings: PlatformSettings, stop: StopSignal) -> Worker:
    """wallet-projector: folds `wallet.events` into balances, movements and transfers."""
    wallet_settings = WalletSettings()
    return await build_owner_worker(
        settings, stop, name=PROJECTOR_NAME, schema=SCHEMA,
        topics=[settings.topic(EVENTS_TOPIC)], handler=Projector(WALLET_PROJECTIONS),
        sweeps_deadlines=False, batch_max_records=wallet_settings.wallet_batch_max_records,
        description="Builds the wallet read models.",
    )  # fmt: skip
