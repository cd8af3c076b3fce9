"""Typed keys of the aiohttp application: the one place a component finds another."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from config import Settings
from rooms import Store
from signalling.auth import TokenIssuer
from signalling.credentials import SessionCredentials
from signalling.loop_monitor import LoopMonitor
from signalling.metrics import Metrics
from signalling.ratelimit import RateLimiter

if TYPE_CHECKING:
    from sfu.sessions import Sfu
    from signalling.appointments import Appointments, AppointmentScheduler
    from signalling.invitations import Invitations
    from signalling.live import Live
    from signalling.live_hls import LiveHls
    from signalling.media import MediaSignalling
    from signalling.moderation import Moderation
    from signalling.realtime import Realtime
    from signalling.recordings import Recordings
    from signalling.speakers import ActiveSpeakers
    from signalling.translations import MessageTranslations

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
TOKENS = web.AppKey("tokens", TokenIssuer)
METRICS = web.AppKey("metrics", Metrics)
RATE_LIMITER = web.AppKey("rate_limiter", RateLimiter)
# Guest links for public rooms, per client address.
GUEST_LIMITER = web.AppKey("guest_limiter", RateLimiter)
CREDENTIALS = web.AppKey("credentials", SessionCredentials)
LOOP_MONITOR = web.AppKey("loop_monitor", LoopMonitor)
REALTIME: web.AppKey[Realtime] = web.AppKey("realtime")
SFU: web.AppKey[Sfu] = web.AppKey("sfu")
MEDIA: web.AppKey[MediaSignalling] = web.AppKey("media")
LIVE: web.AppKey[Live] = web.AppKey("live")
RECORDINGS: web.AppKey[Recordings] = web.AppKey("recordings")
LIVE_HLS: web.AppKey[LiveHls] = web.AppKey("live_hls")
MODERATION: web.AppKey[Moderation] = web.AppKey("moderation")
INVITATIONS: web.AppKey[Invitations] = web.AppKey("invitations")
APPOINTMENTS: web.AppKey[Appointments] = web.AppKey("appointments")
APPOINTMENT_SCHEDULER: web.AppKey[AppointmentScheduler] = web.AppKey("appointment_scheduler")
SPEAKERS: web.AppKey[ActiveSpeakers] = web.AppKey("speakers")
MESSAGE_TRANSLATIONS: web.AppKey[MessageTranslations] = web.AppKey("message_translations")
