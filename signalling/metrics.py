"""Prometheus metrics of one node, in a registry of its own (no process-wide globals)."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from rooms import Role, RoomKind, RoomStatus, Store


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.http_requests = Counter(
            "fairwire_http_requests",
            "HTTP requests handled, by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.http_latency = Histogram(
            "fairwire_http_request_seconds",
            "HTTP request handling time",
            ["route"],
            registry=self.registry,
        )
        self.rooms = Gauge(
            "fairwire_rooms", "Rooms by kind and status", ["kind", "status"], registry=self.registry
        )
        self.participants = Gauge(
            "fairwire_participants", "Participants by role", ["role"], registry=self.registry
        )
        self.socket_connections = Gauge(
            "fairwire_socket_connections",
            "socket.io connections open on this node",
            registry=self.registry,
        )
        self.socket_events = Counter(
            "fairwire_socket_events",
            "socket.io events handled, by event and outcome",
            ["event", "outcome"],
            registry=self.registry,
        )

        self.live_activity = Counter(
            "fairwire_live_activity",
            "What happens in livestreams on this node: questions asked and answered, chat "
            "messages, viewer watch time in seconds (counted when a viewer leaves)",
            ["what"],
            registry=self.registry,
        )

        self.translation_failures = Counter(
            "fairwire_translation_failures",
            "Translations a provider did not deliver, by provider and why (the original was "
            "delivered anyway; the next provider or a later retry may have translated it)",
            ["provider", "kind"],
            registry=self.registry,
        )

        self.media = Gauge(
            "fairwire_media",
            "This node's media plane: rooms, publishers, subscribers, publications, downtracks, "
            "packets_oversized (datagrams over the MTU dropped on receipt)",
            ["what"],
            registry=self.registry,
        )
        self.media_packets_received = Gauge(
            "fairwire_media_packets_received",
            "RTP packets received from publishers of the tracks published now",
            registry=self.registry,
        )
        self.media_send_failures = Gauge(
            "fairwire_media_send_failures",
            "Forwarded packets a subscriber's transport refused (closed, or too long), over the "
            "tracks published now",
            registry=self.registry,
        )
        self.loop_lag = Histogram(
            "fairwire_event_loop_lag_seconds",
            "How much later than asked the event loop ran a timer (probed every 20 ms)",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=self.registry,
        )
        self.loop_worst_lag = Gauge(
            "fairwire_event_loop_worst_lag_seconds",
            "The worst event-loop lag since the previous scrape",
            registry=self.registry,
        )
        self.recorder = Gauge(
            "fairwire_recorder",
            "This node's recorder: recording (lives being recorded), disk_full (of those, "
            "stopped because the disk filled up: alert on > 0), replays_finished, and since "
            "the node started frames_written, frames_dropped (the writer fell behind), "
            "frames_rejected, write_errors, recorder_errors, segments, bytes",
            ["what"],
            registry=self.registry,
        )
        self.live_hls = Gauge(
            "fairwire_live_hls",
            "This node's live HLS: streams (on air now), started, and of the streams still "
            "held segments, frames_written, frames_rejected (not H.264 / Opus), "
            "frames_dropped (the writer fell behind), write_errors",
            ["what"],
            registry=self.registry,
        )
        self.published_tracks = Gauge(
            "fairwire_published_tracks",
            "Tracks published on this node, by kind, codec and (H.264) profile",
            ["kind", "codec", "profile"],
            registry=self.registry,
        )

    async def refresh(
        self, store: Store, media: Mapping[str, int] | None = None,
        formats: Mapping[tuple[str, str, str], int] | None = None,
        worst_loop_lag: float | None = None,
        recorder: Mapping[str, int] | None = None,
        live_hls: Mapping[str, int] | None = None,
    ) -> None:
        """Recompute the state gauges (at scrape time, not per change or per packet)."""
        for what, value in (recorder or {}).items():
            self.recorder.labels(what).set(value)
        for what, value in (live_hls or {}).items():
            self.live_hls.labels(what).set(value)
        if worst_loop_lag is not None:
            self.loop_worst_lag.set(worst_loop_lag)
        if media is not None:
            for what, value in media.items():
                if what == "packets_received":
                    self.media_packets_received.set(value)
                elif what == "send_failures":
                    self.media_send_failures.set(value)
                else:
                    self.media.labels(what).set(value)
        if formats is not None:
            self.published_tracks.clear()  # formats no longer published drop out
            for (kind, codec, profile), count in formats.items():
                self.published_tracks.labels(kind, codec, profile).set(count)
        rooms = await store.list_rooms()
        room_counts = Tally((room.kind, room.status) for room in rooms)
        for kind in RoomKind:
            for status in RoomStatus:
                self.rooms.labels(kind.value, status.value).set(room_counts[(kind, status)])
        role_counts: Tally[Role] = Tally()
        for room in rooms:
            if room.status != RoomStatus.ENDED:
                for participant in await store.list_participants(room.id):
                    role_counts[participant.role] += 1
        for role in Role:
            self.participants.labels(role.value).set(role_counts[role])

    def render(self) -> bytes:
        return generate_latest(self.registry)
