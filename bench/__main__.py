"""Run every benchmark on real processes and print the table (also bench/results/latest.md)."""

import asyncio
import os
import platform
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from bench import analytics, ceilings, gateway, ingest, latency, replay, wallet
from bench.report import Row, render, write
from ledgerbus.stack import prepare, start_stack
from services.ledger.projections.ledger_view import ENTRIES
from shared.infra.provision import provision

PREFIX = "bench."
COPY_SAMPLE_ROWS = 200_000


async def copy_ceiling(dsn: str) -> float:
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(
            f"SELECT {', '.join(ENTRIES.columns)} FROM ledger.entries LIMIT $1", COPY_SAMPLE_ROWS
        )
    finally:
        await connection.close()
    return await ceilings.raw_copy_rate(
        dsn, "ledger.entries", ENTRIES.columns, [tuple(row) for row in rows]
    )


async def main(state: Path) -> str:
    provisioned = await asyncio.to_thread(provision, os.environ, state, kafka_port=None, clean=True)
    environment = {**provisioned.infrastructure.environment(), "LEDGERBUS_TOPIC_PREFIX": PREFIX}
    log = (state / "stack.log").open("w")
    stack = None
    try:
        await prepare(environment)
        stack = await start_stack(environment, sink=log)
        dsn, bootstrap = environment["DATABASE_URL"], environment["KAFKA_BOOTSTRAP_SERVERS"]
        single = await latency.measure(stack.gateway_url)
        rows: list[Row] = []
        if _chosen("ledger"):
            rows += await _ingest_rows(dsn, bootstrap)
            rows.append(await _gateway_row(stack.gateway_url))
            rows.append(await _replay_row(dsn, bootstrap))
        if _chosen("wallet"):
            rows += await _wallet_rows(dsn, bootstrap)
            rows.append(await _login_row(stack.gateway_url))
        if _chosen("analytics"):
            rows += await _analytics_rows(stack.gateway_url, environment)
    finally:
        if stack is not None:
            await stack.stop()
        await asyncio.to_thread(provisioned.stop)
        log.close()
    header = (
        f"# make bench, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n\n{os.cpu_count()} cores,"
        f" Python {platform.python_version()}, {', '.join(provisioned.describe()[:3])}"
    )
    footer = (
        f"- one command at a time through the gateway ({latency.SAMPLES} samples): write answered"
        f" p50 {single.write_p50_milliseconds:.1f} ms, p99 {single.write_p99_milliseconds:.1f} ms;"
        f" then read with min_position p50 {single.read_p50_milliseconds:.1f} ms,"
        f" p99 {single.read_p99_milliseconds:.1f} ms"
    )
    return render(rows, header) + footer + "\n"


def _chosen(section: str) -> bool:
    """BENCH_ONLY=analytics (or a comma list) runs some sections; unset runs them all."""
    only = os.environ.get("BENCH_ONLY", "")
    return not only or section in only.split(",")


async def _ingest_rows(dsn: str, bootstrap: str) -> list[Row]:
    await asyncio.sleep(0)
    result = await ingest.run(bootstrap, dsn, f"{PREFIX}ledger.commands")
    consume, _ = await ceilings.raw_consume_rate(bootstrap, f"{PREFIX}ledger.commands")
    copy = await copy_ceiling(dsn)
    smaller, name = min((consume, "raw aiokafka consume"), (copy, "raw asyncpg COPY"))
    detail = (
        f"{result.commands:,} commands through ledger-processor and ledger-projector; ceilings:"
        f" raw consume {consume:,.0f}/s, raw COPY {copy:,.0f} rows/s. Lag at a steady"
        f" {result.lag_rate:,.0f} commands/s: p50 {result.lag_p50_milliseconds:.0f} ms,"
        f" p99 {result.lag_p99_milliseconds:.0f} ms (producer to committed read-model row)."
    )
    return [
        Row(
            "ingest (commands to read-model rows)",
            result.commands_per_second,
            "/s",
            name,
            smaller,
            0.25,
            detail,
        )
    ]


async def _gateway_row(gateway_url: str) -> Row:
    bare_process, bare_url = await gateway.bare_endpoint()
    try:
        bare = await gateway.measure(f"{bare_url}/ledger/owner-1", {})
    finally:
        bare_process.terminate()
        await bare_process.wait()
    real = await gateway.measure(
        f"{gateway_url}/ledger/ingest-1", {"X-Api-Key": "dev-healthai-key"}
    )
    detail = (
        f"wrk -t{gateway.WRK_THREADS} -c{gateway.WRK_CONNECTIONS} -d{gateway.WRK_SECONDS}s;"
        f" p99 {real.p99_milliseconds:.1f} ms against the bare endpoint's"
        f" {bare.p99_milliseconds:.1f} ms"
    )
    return Row(
        "gateway GET /ledger/{owner_id}",
        real.requests_per_second,
        "req/s",
        "bare Starlette",
        bare.requests_per_second,
        0.5,
        detail,
    )


async def _replay_row(dsn: str, bootstrap: str) -> Row:
    total = await replay.add_events(bootstrap, dsn, f"{PREFIX}ledger.events")
    result = await replay.rebuild(bootstrap, dsn, PREFIX)
    rate = result.events_applied / result.seconds
    consume, events = await ceilings.raw_consume_rate(bootstrap, f"{PREFIX}ledger.events")
    copy = await copy_ceiling(dsn)
    smaller, name = min((consume, "raw aiokafka consume"), (copy, "raw asyncpg COPY"))
    detail = (
        f"{result.events_applied:,} events ({events:,} records, {total:,} entries) rebuilt"
        f" and swapped in {result.seconds:.1f} s; ceilings: raw consume {consume:,.0f}/s,"
        f" raw COPY {copy:,.0f} rows/s"
    )
    return Row("replay (projections rebuild ledger)", rate, "events/s", name, smaller, 0.5, detail)


async def _wallet_rows(dsn: str, bootstrap: str) -> list[Row]:
    topic = f"{PREFIX}wallet.commands"
    users = wallet.wallet_ids(wallet.WALLETS)
    opened = await wallet.open_wallets(bootstrap, dsn, topic, users)
    rows = []
    for figure, hot, count in (
        (
            f"wallet transfers, uniform over {wallet.WALLETS:,} wallets",
            None,
            wallet.UNIFORM_TRANSFERS,
        ),
        ("wallet transfers, all from one hot wallet", users[0], wallet.HOT_TRANSFERS),
    ):
        pairs = wallet.transfer_pairs(users, count, hot, seed=6)
        result = await wallet.transfers(bootstrap, dsn, topic, pairs)
        ceiling = await wallet.conditional_update_ceiling(dsn, users, pairs)
        detail = (
            f"{result.count:,} transfer_money commands sent to the log, timed until each is"
            f" final (three hops each); ceiling: the debit and credit UPDATEs in one asyncpg"
            f" transaction per transfer over {wallet.CEILING_CONNECTIONS} connections."
            f" The {wallet.WALLETS:,} wallets opened at {opened.per_second:,.0f}/s."
        )
        rows.append(
            Row(figure, result.per_second, "transfers/s", "asyncpg conditional UPDATE",
                ceiling.per_second, 0.15, detail)
        )  # fmt: skip
    return rows


async def _login_row(gateway_url: str) -> Row:
    result = await wallet.logins(gateway_url)
    ceiling = await wallet.argon2_ceiling()
    detail = (
        f"{result.count} POST /auth/token, {wallet.LOGIN_CONCURRENCY} at a time; ceiling: as"
        f" many argon2id verifications on the gateway's parameters and thread count"
    )
    return Row("PIN logins", result.per_second, "logins/s", "raw argon2id verify",
               ceiling.per_second, 0.5, detail)  # fmt: skip


async def _analytics_rows(gateway_url: str, environment: dict[str, str]) -> list[Row]:
    reads = await analytics.summary_reads(gateway_url, environment)
    read_detail = (
        f"a user with {analytics.SUMMARY_DAYS} days of transactions; wrk -t{gateway.WRK_THREADS}"
        f" -c{gateway.WRK_CONNECTIONS} -d{gateway.WRK_SECONDS}s:"
        f" p99 {reads.real.p99_milliseconds:.1f} ms"
        f" (bare {reads.bare.p99_milliseconds:.1f} ms); at half load ({reads.paced_rate:,.0f} req/s"
        f" paced, reached {reads.paced.requests_per_second:,.0f}) p99"
        f" {reads.paced.p99_milliseconds:.1f} ms (goal under 10 ms)"
    )
    rate, events, seconds = await analytics.aggregate_rebuild(environment)
    raw, raw_events = await analytics.raw_pipelined_rate(environment)
    update_detail = (
        f"`ledgerbus analytics rebuild`: {events:,} events from offset 0 of the three topics to"
        f" the switch in {seconds:.1f} s; ceiling: the same {raw_events:,} events' keys written"
        f" with pipelined HSET/HINCRBY, {analytics.RAW_PIPELINE_COMMANDS:,} commands a round trip"
    )
    return [
        Row("analytics GET /analytics/users/{id}/summary", reads.real.requests_per_second,
            "req/s", "bare Starlette + the same Redis call", reads.bare.requests_per_second, 0.7,
            read_detail),
        Row("analytics aggregate updates", rate, "events/s", "raw pipelined Redis writes", raw,
            None, update_detail),
    ]  # fmt: skip


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="ledgerbus-bench-") as directory:
        text = asyncio.run(main(Path(directory)))
    print(text)
    print(f"written to {write(text)}", file=sys.stderr)
