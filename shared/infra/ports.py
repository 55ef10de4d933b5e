"""Helpers for choosing loopback ports and waiting until a server listens on one."""

from __future__ import annotations

import socket
import time

LOOPBACK_HOST = "127.0.0.1"
PORT_CONNECT_ATTEMPT_TIMEOUT_SECONDS = 0.5
PORT_POLL_INTERVAL_SECONDS = 0.05


def free_port() -> int:
    """Return a TCP port on the loopback interface that nothing listens on right now.

    The kernel picks the port, so it never collides with a listener that exists at the
    moment of the call. Another process may still take it before the caller binds it,
    which is why the embedded servers report a clear error when their port is taken.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK_HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def port_is_free(port: int, host: str = LOOPBACK_HOST) -> bool:
    """Return whether a server could bind ``host:port`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # The servers we start set SO_REUSEADDR themselves, so connections of an earlier
        # run that linger in TIME_WAIT must not make the port look busy to us either.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
        return True


def port_accepts_connections(host: str, port: int) -> bool:
    """Return whether a TCP connection to ``host:port`` succeeds right now."""
    try:
        with socket.create_connection((host, port), timeout=PORT_CONNECT_ATTEMPT_TIMEOUT_SECONDS):
            return True
    except OSError:
        return False


def wait_for_port(host: str, port: int, timeout_seconds: float) -> None:
    """Block until ``host:port`` accepts TCP connections.

    Raises:
        TimeoutError: nothing accepted a connection before the deadline.
    """
    deadline = time.monotonic() + timeout_seconds
    while not port_accepts_connections(host, port):
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"Nothing accepted TCP connections on {host}:{port} "
                f"within {timeout_seconds:.1f} seconds."
            )
        time.sleep(PORT_POLL_INTERVAL_SECONDS)
