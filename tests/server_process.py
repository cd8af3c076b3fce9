"""The real Fairwire server as a subprocess, for end-to-end tests.

``fairwire_server`` (module-scoped) runs ``python -m signalling.cli serve`` on a free loopback
port with a random API key and JWT secret and a temporary data directory, waits for
``GET /healthz`` and stops it (SIGTERM, then SIGKILL after 5 s) when the module's tests are done.
``fairwire_server_factory`` starts servers with extra environment variables
(``start(FAIRWIRE_ICE_SERVERS="stun:...")``), all stopped at the end of the module.

The fixtures are synchronous (no event loop of their own), so tests in any loop scope can use
them; the helpers ``create_room`` and ``token`` are coroutines that open their own aiohttp
session in the caller's loop.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from ports import free_port

REPO = Path(__file__).resolve().parent.parent
START_TIMEOUT = 20.0
STOP_TIMEOUT = 5.0



@dataclass
class FairwireServer:
    url: str
    api_key: str
    jwt_secret: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    @property
    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        async with (
            aiohttp.ClientSession() as session,
            session.post(self.url + path, json=body, headers=self._auth) as response,
        ):
            data: dict[str, Any] = await response.json()
            if response.status >= 300:
                raise AssertionError(f"POST {path} -> {response.status}: {data}")
            return data

    async def create_room(self, **fields: Any) -> dict[str, Any]:
        """``POST /api/rooms`` with ``fields``; returns the room."""
        fields.setdefault("name", "Test room")
        fields.setdefault("kind", "meeting")
        return await self._post("/api/rooms", fields)

    async def set_status(self, room: str, status: str) -> dict[str, Any]:
        async with (
            aiohttp.ClientSession() as session,
            session.patch(
                f"{self.url}/api/rooms/{room}", json={"status": status}, headers=self._auth
            ) as response,
        ):
            data: dict[str, Any] = await response.json()
            if response.status >= 300:
                raise AssertionError(f"PATCH room {room} -> {response.status}: {data}")
            return data

    async def token(
        self, room: str, identity: str, role: str, name: str | None = None, **extra: Any
    ) -> str:
        """``POST /api/tokens``; returns the JWT."""
        body: dict[str, Any] = {"room": room, "identity": identity, "role": role}
        if name is not None:
            body["name"] = name
        body.update(extra)
        data = await self._post("/api/tokens", body)
        token: str = data["token"]
        return token

    def room_url(self, room: str, token: str, lang: str | None = None) -> str:
        query = f"?token={token}" + (f"&lang={lang}" if lang else "")
        return f"{self.url}/room/{room}{query}"


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=1) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def start_server(workdir: Path, extra_env: dict[str, str] | None = None) -> FairwireServer:
    port = free_port()
    api_key = secrets.token_urlsafe(24)
    jwt_secret = secrets.token_urlsafe(32)
    data_dir = workdir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(
        {
            "FAIRWIRE_HOST": "127.0.0.1",
            "FAIRWIRE_PORT": str(port),
            "FAIRWIRE_API_KEY": api_key,
            "FAIRWIRE_JWT_SECRET": jwt_secret,
            "FAIRWIRE_DATA_DIR": str(data_dir),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra_env or {})
    log_path = workdir / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "signalling.cli", "serve"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = FairwireServer(
        url=f"http://127.0.0.1:{port}",
        api_key=api_key,
        jwt_secret=jwt_secret,
        data_dir=data_dir,
        process=process,
        log_path=log_path,
        env=extra_env or {},
    )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"fairwire server exited with {process.returncode}:\n{server.log()}", pytrace=False
            )
        if _healthy(server.url):
            return server
        time.sleep(0.1)
    stop_server(server)
    pytest.fail(
        f"fairwire server not healthy after {START_TIMEOUT} s:\n{server.log()}", pytrace=False
    )


def stop_server(server: FairwireServer) -> None:
    process = server.process
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def fairwire_server_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., FairwireServer]]:
    """``start(**extra_env)`` -> a running server; every one is stopped after the module."""
    started: list[FairwireServer] = []

    def start(**extra_env: str) -> FairwireServer:
        server = start_server(tmp_path_factory.mktemp("fairwire"), extra_env)
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            stop_server(server)


@pytest.fixture(scope="module")
def fairwire_server(
    fairwire_server_factory: Callable[..., FairwireServer],
) -> FairwireServer:
    return fairwire_server_factory()
