"""One access-log line per request, without query strings: links carry tokens in ``?token=``.

``GET /room/booth 200 12.3ms 127.0.0.1`` — method, path, status, time taken, client address.
"""

from __future__ import annotations

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse


class AccessLogger(AbstractAccessLogger):
    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        self.logger.info("%s %s %d %.1fms %s", request.method, request.path, response.status,
                         time * 1000, request.remote or "-")
