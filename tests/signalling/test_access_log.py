"""The access log: one line per request, and never the token a link carries."""

import logging
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from config import load_config
from signalling.access_log import AccessLogger
from signalling.app import create_app

ServerFactory = Callable[..., Awaitable[TestServer]]


async def test_one_line_per_request_without_the_query_string(
    aiohttp_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(load_config(environ={"FAIRWIRE_API_KEY": "k",
                                          "FAIRWIRE_DATA_DIR": "/tmp/fw"}))
    server = await aiohttp_server(app, access_log=logging.getLogger("fairwire.access"),
                                  access_log_class=AccessLogger)
    caplog.set_level(logging.INFO, logger="fairwire.access")
    async with aiohttp.ClientSession() as http:
        async with http.get(server.make_url("/room/booth?token=eyJsecret.part.sig")) as reply:
            assert reply.status == 200
        async with http.get(server.make_url("/api/rooms/missing")) as reply:
            assert reply.status == 404
    lines = [r.getMessage() for r in caplog.records if r.name == "fairwire.access"]
    assert len(lines) == 2, lines
    assert lines[0].startswith("GET /room/booth 200 ") and "secret" not in lines[0]
    assert lines[1].startswith("GET /api/rooms/missing 404 ")
