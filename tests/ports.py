"""Free loopback ports for the servers tests start (never a fixed port someone else may hold)."""

import socket


def free_port() -> int:
    """A loopback port nothing listens on right now (the kernel picks it for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
