"""The aiohttp application factory: one node's HTTP, socket.io and media endpoints."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

from aiohttp import web
from redis.asyncio import Redis

from config import Settings
from rooms import MemoryStore, Store
from sfu.sessions import MediaSettings, Sfu
from signalling import api, live_hls, pages, recordings, whip
from signalling.appointments import Appointments, AppointmentScheduler
from signalling.appointments import routes as appointment_routes
from signalling.auth import TokenIssuer
from signalling.credentials import SessionCredentials
from signalling.errors import ApiError, Handler, error_middleware
from signalling.invitations import Invitations
from signalling.keys import (
    APPOINTMENT_SCHEDULER,
    APPOINTMENTS,
    CREDENTIALS,
    GUEST_LIMITER,
    INVITATIONS,
    LIVE,
    LOOP_MONITOR,
    MEDIA,
    MESSAGE_TRANSLATIONS,
    METRICS,
    MODERATION,
    RATE_LIMITER,
    REALTIME,
    SETTINGS,
    SFU,
    SPEAKERS,
    STORE,
    TOKENS,
)
from signalling.live import Live
from signalling.live import routes as live_routes
from signalling.loop_monitor import LoopMonitor
from signalling.media import MediaSignalling
from signalling.messages import DirectMessages
from signalling.metrics import Metrics
from signalling.moderation import Moderation
from signalling.program import ProgramSwitch
from signalling.ratelimit import RateLimiter
from signalling.realtime import Realtime
from signalling.speakers import ActiveSpeakers
from signalling.stage import Stage
from signalling.tasks import cancel_and_wait
from signalling.translations import MessageTranslations, translation_service
from translate.service import RedisTranslationCache

log = logging.getLogger(__name__)


def open_store(settings: Settings) -> Store:
    max_events, max_age = settings.event_log_max_events, float(settings.event_log_max_age)
    if settings.redis_url is None:
        return MemoryStore(max_events, max_age)
    from rooms.redis_store import RedisStore

    return RedisStore(settings.redis_url, max_events=max_events, max_age=max_age)


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        route = request.match_info.route.resource
        template = route.canonical if route is not None else "unmatched"
        metrics = request.app[METRICS]
        metrics.http_requests.labels(template, request.method, str(status)).inc()
        metrics.http_latency.labels(template).observe(time.perf_counter() - started)


@web.middleware
async def rate_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Writes are limited per client address; reads and health checks are not."""
    if request.method in ("POST", "PATCH", "PUT", "DELETE"):
        limiter = request.app[RATE_LIMITER]
        key = request.remote or "unknown"
        if not limiter.allow(key, time.monotonic()):
            retry = max(1, round(limiter.retry_after(key)))
            raise ApiError(429, "too many requests", headers={"Retry-After": str(retry)})
    return await handler(request)


def create_app(settings: Settings) -> web.Application:
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        middlewares=[metrics_middleware, error_middleware, rate_limit_middleware],
    )
    store = open_store(settings)
    metrics = Metrics()
    tokens = TokenIssuer(settings.jwt_secret, settings.token_max_ttl, settings.clock_skew)
    credentials = SessionCredentials(tokens, store, settings.session_ttl)
    app[SETTINGS] = settings
    app[STORE] = store
    app[TOKENS] = tokens
    app[CREDENTIALS] = credentials
    app[METRICS] = metrics
    per_minute = settings.rate_limit_per_minute
    app[RATE_LIMITER] = RateLimiter(per_minute, burst=max(10.0, per_minute / 6))
    guests = settings.guest_tokens_per_minute
    app[GUEST_LIMITER] = RateLimiter(guests, burst=max(1.0, min(5.0, guests)))
    app[LOOP_MONITOR] = LoopMonitor(metrics.loop_lag.observe)
    realtime = Realtime(settings, store, credentials, metrics)
    app[REALTIME] = realtime
    credentials.watch(realtime)
    realtime.sio.attach(app)
    sfu = Sfu(MediaSettings(ice_servers=settings.ice_servers, media_host=settings.media_host,
                            media_port=settings.media_port))
    media = MediaSignalling(realtime, store, sfu)
    Stage(realtime, store, media.stop_publishing)
    ProgramSwitch(realtime, store, sfu)
    translations = app[MESSAGE_TRANSLATIONS] = MessageTranslations(
        realtime, store, translation_service(settings, metrics))
    app[LIVE] = Live(realtime, store, metrics, translations)
    app[MODERATION] = Moderation(realtime, store, sfu, media, tokens)
    DirectMessages(realtime, store)
    app[INVITATIONS] = Invitations(realtime, store, tokens, app[MODERATION])
    appointments = app[APPOINTMENTS] = Appointments(store, realtime)
    app[APPOINTMENT_SCHEDULER] = AppointmentScheduler(store, tokens, appointments)
    app[SPEAKERS] = ActiveSpeakers(realtime, sfu)
    sfu.events = media
    app[SFU] = sfu
    app[MEDIA] = media

    app.add_routes(api.routes)
    app.add_routes(live_routes)
    app.add_routes(appointment_routes)
    app.add_routes(pages.routes)
    pages.add_static(app)
    whip.setup(app)
    app.cleanup_ctx.append(_store_lifecycle)
    app.cleanup_ctx.append(_loop_monitor_lifecycle)
    app.cleanup_ctx.append(_moderation_lifecycle)
    app.cleanup_ctx.append(_appointments_lifecycle)
    app.cleanup_ctx.append(_speakers_lifecycle)
    app.cleanup_ctx.append(_translations_lifecycle)
    # After the store's: recordings finish (and finalise) before the store and SFU close.
    recordings.setup(app, sfu)
    live_hls.setup(app, sfu)
    return app


async def _translations_lifecycle(app: web.Application) -> AsyncIterator[None]:
    translations = app[MESSAGE_TRANSLATIONS]
    settings = app[SETTINGS]
    redis = None
    if settings.redis_url is not None:
        # Translations are shared by every node (a cache: its outage costs provider calls).
        redis = Redis.from_url(settings.redis_url, socket_timeout=2.0)
        translations.service.use_cache(RedisTranslationCache(redis))
    await translations.service.start()
    yield
    await translations.close()
    await translations.service.close()
    if redis is not None:
        await redis.aclose()


async def _moderation_lifecycle(app: web.Application) -> AsyncIterator[None]:
    app[MODERATION].start()
    yield
    await app[INVITATIONS].close()
    await app[MODERATION].close()


async def _appointments_lifecycle(app: web.Application) -> AsyncIterator[None]:
    app[APPOINTMENT_SCHEDULER].start()
    yield
    await app[APPOINTMENT_SCHEDULER].close()
async def _speakers_lifecycle(app: web.Application) -> AsyncIterator[None]:
    app[SPEAKERS].start()
    yield
    await app[SPEAKERS].close()


async def _loop_monitor_lifecycle(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.ensure_future(app[LOOP_MONITOR].run())
    yield
    await cancel_and_wait(task)


async def _store_lifecycle(app: web.Application) -> AsyncIterator[None]:
    store = app[STORE]
    settings = app[SETTINGS]
    # A node that restarts under the same id forgets the participants it held before.
    realtime = app[REALTIME]
    stale = await store.remove_node_participants(settings.node_id)
    if stale:
        log.info("forgot %d participants of a previous run of %s", len(stale), settings.node_id)
        await realtime.forget_participants(stale)
    realtime.start()
    app[CREDENTIALS].start()
    await app[SFU].start()
    yield
    await app[CREDENTIALS].close()
    await app[MEDIA].close()
    await realtime.close()
    await realtime.forget_participants(await store.remove_node_participants(settings.node_id))
    await store.close()
