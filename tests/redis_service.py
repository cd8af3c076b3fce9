"""A real redis-server for the tests: one per session on a free loopback port, flushed per test.

Import the fixtures in conftest.py. Nothing is persisted (no RDB, no AOF) and the server only
listens on 127.0.0.1.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest
import redis
from ports import free_port

REDIS_SERVER = "/usr/bin/redis-server"
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0



def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not (os.path.isfile(REDIS_SERVER) and os.access(REDIS_SERVER, os.X_OK)):
        pytest.fail("redis-server is not installed: apt-get install redis-server", pytrace=False)
    workdir = tmp_path_factory.mktemp("redis")
    port = free_port()
    log = (workdir / "redis.log").open("wb")
    process = subprocess.Popen(
        [
            REDIS_SERVER,
            "--save", "",
            "--appendonly", "no",
            "--bind", "127.0.0.1",
            "--port", str(port),
            "--dir", str(workdir),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not _answers_ping(port):
            if process.poll() is not None:
                pytest.fail(
                    f"redis-server exited with {process.returncode}: see {workdir}/redis.log",
                    pytrace=False,
                )
            if time.monotonic() > deadline:
                pytest.fail(f"redis-server did not answer PING within {START_TIMEOUT:g} s")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        _stop(process)
        log.close()


@pytest.fixture
def redis_store_url(redis_url: str) -> Iterator[str]:
    """The session's Redis, emptied so that each test starts from nothing."""
    with redis.Redis.from_url(redis_url) as client:
        client.flushdb()
    yield redis_url
