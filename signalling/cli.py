"""``fairwire`` command line: ``fairwire serve [--config FILE]``, ``fairwire replays prune
--older-than 30d [--config FILE]``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

import uvloop
from aiohttp import web

from config import DEFAULT_API_KEY, ConfigError, Settings, load_config

# Libraries whose INFO lines (an ICE check per candidate pair, say) drown a node's own.
CHATTY_LOGGERS = ("aioice", "aiortc", "engineio", "socketio")


def _banner(settings: Settings) -> str:
    if settings.all_interfaces:
        where = f"every interface, port {settings.port}"
    elif settings.host in ("127.0.0.1", "::1", "localhost"):
        where = f"{settings.host} port {settings.port} (this machine only: FAIRWIRE_HOST=0.0.0.0)"
    else:
        where = f"{settings.host} port {settings.port}"
    lines = [
        f"Fairwire node {settings.node_id} ({settings.mode} mode)",
        f"  open      {settings.listen_url}/",
        f"  console   {settings.listen_url}/console   (sign in with the API key)",
        f"  address   {where}",
        f"  state     {'in memory' if settings.in_memory else settings.redis_url}",
        f"  data dir  {settings.data_dir.resolve()}",
        f"  API key   {settings.api_key}"
        + ("   (development default: set FAIRWIRE_API_KEY)" if settings.api_key == DEFAULT_API_KEY
           else ""),
    ]
    return "\n".join(lines)


def serve(settings: Settings) -> None:
    from signalling.access_log import AccessLogger
    from signalling.app import create_app
    from signalling.gc_pauses import GcPauses

    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if settings.log_level != "DEBUG":
        for name in CHATTY_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    print(_banner(settings), flush=True)

    async def main() -> None:
        pauses = GcPauses()
        app = create_app(settings)
        runner = web.AppRunner(app, access_log=logging.getLogger("fairwire.access"),
                               access_log_class=AccessLogger)
        await runner.setup()
        site = web.TCPSite(runner, settings.host, settings.port, shutdown_timeout=5)
        await site.start()
        print(f"listening on {settings.listen_url}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()
            pauses.close()

    uvloop.run(main())


def prune_replays(settings: Settings, older_than: str) -> int:
    import time

    from recorder.storage import LocalStorage
    from signalling.recordings import parse_age, prune

    try:
        age = parse_age(older_than)
    except ValueError as exc:
        print(f"fairwire: --older-than: {exc}", file=sys.stderr)
        return 2
    deleted = prune(LocalStorage.in_data_dir(settings.data_dir), age, time.time())
    for replay_id in deleted:
        print(f"deleted {replay_id}")
    print(f"{len(deleted)} replays older than {older_than} deleted")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fairwire", description="Fairwire media server")
    sub = parser.add_subparsers(dest="command", required=True)
    serve_parser = sub.add_parser("serve", help="run a node")
    serve_parser.add_argument("--config", help="TOML settings file (or FAIRWIRE_CONFIG)")
    replays_parser = sub.add_parser("replays", help="manage the replays in the data directory")
    replays_sub = replays_parser.add_subparsers(dest="action", required=True)
    prune_parser = replays_sub.add_parser("prune", help="delete replays older than an age")
    prune_parser.add_argument("--older-than", required=True, metavar="AGE",
                              help="e.g. 30d, 12h: replays whose live ended longer ago go")
    prune_parser.add_argument("--config", help="TOML settings file (or FAIRWIRE_CONFIG)")
    args = parser.parse_args(argv)
    try:
        settings = load_config(args.config)
    except ConfigError as exc:
        print(f"fairwire: configuration error: {exc}", file=sys.stderr)
        return 2
    if args.command == "replays":
        return prune_replays(settings, args.older_than)
    if args.command == "serve":
        try:
            serve(settings)
        except OSError as exc:
            print(f"fairwire: cannot listen on {settings.host}:{settings.port}: {exc}",
                  file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
