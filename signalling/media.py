"""Media negotiation over socket.io, and the bridge from SFU events to room presence.

Events (client -> server, each answered through the acknowledgement; see docs/socketio.md):

- ``publish`` ``{type: "offer", sdp, sources?: [..]}`` -> ``{type: "answer", sdp}``;
  ``publish-update`` (same body, while publishing) renegotiates that connection
- ``unpublish`` ``{}`` -> ``{}``
- ``set-muted`` ``{kind: "audio" | "video", muted}`` -> ``{}``: the publisher turned its camera
  or microphone off (or on again); its tracks of that kind say ``muted`` to everyone
- ``subscribe`` ``{identities?, tracks?, kinds?}`` or ``{program: true, kinds?}`` (the room's
  program: see :mod:`signalling.program`) -> ``{type: "offer", sdp}`` (or
  ``{waiting: true}``); the client answers with ``subscribe-answer`` ``{type: "answer", sdp}``
- ``update-subscription`` ``{identities?, tracks?, kinds?}`` -> ``{}``, then a
  ``subscriber-offer`` with the new set of tracks
- ``ice-candidate`` ``{target: "publisher" | "subscriber", candidate: RTCIceCandidateInit}``
- ``restart-ice`` ``{target: "publisher", type: "offer", sdp}`` -> ``{type: "answer", sdp}``, or
  ``{target: "subscriber"}`` -> ``{type: "offer", sdp}`` (a new connection replaces the old one;
  subscribers keep a continuous stream across a publisher's restart)

Server -> client: ``subscriber-offer`` ``{type: "offer", sdp}`` when the room's tracks change,
``track-published`` ``{identity, track}``, ``track-unpublished`` ``{identity, track_id}``.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from rooms import Grant, Participant, RoomStatus, Store, Track, ValidationError
from rooms.access import may_go_live
from sfu.sessions import Publication, Publisher, SdpError, Selection, Sfu, Subscriber
from signalling.errors import ApiError
from signalling.realtime import Connection, Realtime, socket_room

log = logging.getLogger(__name__)

MAX_SDP_BYTES = 32 * 1024  # a browser offer with audio, video and screen is under 16 KiB
TRACK_SOURCES = frozenset({"camera", "microphone", "screen", "screen-audio", "encoder"})


def _sdp_from(data: Any, expected_type: str) -> str:
    if not isinstance(data, dict):
        raise ValidationError("sdp", "send an object {type, sdp}")
    if data.get("type") != expected_type:
        raise ValidationError("type", f"must be {expected_type!r}")
    sdp = data.get("sdp")
    if not isinstance(sdp, str) or not sdp.strip():
        raise ValidationError("sdp", "must be a non-empty string")
    if len(sdp.encode()) > MAX_SDP_BYTES:
        raise ValidationError("sdp", f"larger than {MAX_SDP_BYTES} bytes")
    return sdp


def _sources_from(data: dict[str, Any]) -> list[str] | None:
    sources = data.get("sources")
    if sources is None:
        return None
    if not isinstance(sources, list) or not all(s in TRACK_SOURCES for s in sources):
        raise ValidationError("sources", f"a list of {', '.join(sorted(TRACK_SOURCES))}")
    return sources


def _selection_from(data: Any) -> Selection:
    """``{identities?, tracks?, kinds?}``: lists narrowing what a subscriber receives; or
    ``{program: true, kinds?}``: the room's program (one video, one audio that follow its
    switches) instead of the publications."""
    if data is None:
        return Selection()
    if not isinstance(data, dict):
        raise ValidationError("subscribe", "send an object {identities?, tracks?, kinds?} "
                              "or {program: true, kinds?}")
    unknown = set(data) - {"identities", "tracks", "kinds", "program"}
    if unknown:
        raise ValidationError(sorted(unknown)[0], "unknown field")
    program = data.get("program", False)
    if not isinstance(program, bool):
        raise ValidationError("program", "true for the room's program, false or absent for "
                              "its publications")
    if program and (data.get("identities") is not None or data.get("tracks") is not None):
        raise ValidationError("program", "the program is one video and one audio track: "
                              "narrow it with kinds only")
    picked: dict[str, frozenset[str] | None] = {}
    for field, attribute in (("identities", "identities"), ("tracks", "track_ids"),
                             ("kinds", "kinds")):
        values = data.get(field)
        if values is None:
            picked[attribute] = None
            continue
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise ValidationError(field, "a list of strings, or null for all")
        picked[attribute] = frozenset(values)
    kinds = picked["kinds"]
    if kinds is not None and not kinds <= {"audio", "video"}:
        raise ValidationError("kinds", "audio and/or video")
    return Selection(**picked, program=program)


def track_of(publication: Publication) -> Track:
    return Track(id=publication.id, kind=publication.kind, codec=publication.codec,
                 profile=publication.profile, source=publication.source,
                 muted=publication.muted)


class MediaSignalling:
    """Wires socket.io connections to SFU publishers and subscribers of their room."""

    def __init__(self, realtime: Realtime, store: Store, sfu: Sfu) -> None:
        self.realtime = realtime
        self.store = store
        self.sfu = sfu
        realtime.on("publish", self._publish, grant=Grant.PUBLISH, joined=True)
        realtime.on("publish-update", self._publish_update, grant=Grant.PUBLISH, joined=True)
        realtime.on("unpublish", self._unpublish, grant=Grant.PUBLISH, joined=True)
        realtime.on("set-muted", self._set_muted, grant=Grant.PUBLISH, joined=True)
        realtime.on("subscribe", self._subscribe, grant=Grant.SUBSCRIBE, joined=True)
        realtime.on("subscribe-answer", self._subscribe_answer, grant=Grant.SUBSCRIBE,
                    joined=True)
        realtime.on("update-subscription", self._update_subscription, grant=Grant.SUBSCRIBE,
                    joined=True)
        realtime.on("unsubscribe", self._unsubscribe, joined=True)
        realtime.on("ice-candidate", self._ice_candidate, joined=True)
        realtime.on("restart-ice", self._restart_ice, joined=True)
        realtime.on_disconnect(self.close_connection_media)
        # Set by the meeting's moderation: raises when a moderator's mute forbids unmuting.
        self.unmute_refusal: Callable[[str, str, str], Awaitable[None]] | None = None
        self._published_hooks: list[Callable[[Publication], Awaitable[None]]] = []

    def on_published(self, hook: Callable[[Publication], Awaitable[None]]) -> None:
        """Run ``hook`` for every new publication, before anyone is told of it."""
        self._published_hooks.append(hook)

    # -- SFU events (MediaEvents) ----------------------------------------------------------------

    async def track_published(self, publication: Publication) -> None:
        for hook in self._published_hooks:
            await hook(publication)
        await self.update_tracks(publication.room.id, publication.identity)
        await self.realtime.sio.emit(
            "track-published",
            {"identity": publication.identity, "track": track_of(publication).to_dict()},
            room=socket_room(publication.room.id),
        )

    async def track_unpublished(self, publication: Publication) -> None:
        await self.update_tracks(publication.room.id, publication.identity)
        await self.realtime.sio.emit(
            "track-unpublished",
            {"identity": publication.identity, "track_id": publication.id},
            room=socket_room(publication.room.id),
        )

    async def update_tracks(self, room_id: str, identity: str) -> None:
        participant = await self.store.get_participant(room_id, identity)
        if participant is None:
            return
        room = self.sfu.rooms.get(room_id)
        publications = room.publications if room else []
        tracks = tuple(track_of(p) for p in publications if p.identity == identity)
        if tracks != participant.tracks:
            participant = dataclasses.replace(participant, tracks=tracks)
            await self.realtime.update_participant(room_id, participant)
        await self._follow_publishing(room_id, participant, bool(publications))

    async def _follow_publishing(self, room_id: str, participant: Participant,
                                 publishing: bool) -> None:
        """The room's record says whether anyone publishes; the owner (or a host) publishing
        in a scheduled room starts its live."""
        room = await self.store.get_room(room_id)
        if room is None:
            return
        now = time.time()
        updated = room.with_publishing(publishing, now)
        if (participant.tracks and room.status == RoomStatus.SCHEDULED
                and may_go_live(room, participant.role, participant.identity)):
            updated = updated.with_status(RoomStatus.LIVE, now)
            log.info("live %s: %s went live", room_id, participant.identity)
        if updated != room:
            await self.store.save_room(updated)
            await self.realtime.room_changed(updated)

    # -- socket.io events ------------------------------------------------------------------------

    async def _publish(self, connection: Connection, data: Any) -> dict[str, Any]:
        offer = _sdp_from(data, "offer")
        sources = _sources_from(data)
        previous: Publisher | None = connection.data.get("publisher")
        if previous is not None:
            raise ApiError(409, "already publishing: unpublish first, or restart-ice",
                           "already_publishing")
        return await self._start_publisher(connection, offer, sources, replacing=None)

    async def _start_publisher(self, connection: Connection, offer: str,
                               sources: list[str] | None, replacing: Publisher | None
                               ) -> dict[str, Any]:
        claims = connection.claims
        room = self.sfu.room(claims.room)

        async def closed(publisher: Publisher) -> None:
            if connection.data.get("publisher") is publisher:
                del connection.data["publisher"]

        publisher = room.publisher(claims.identity, on_closed=closed)
        try:
            answer = await publisher.answer(offer, sources, replacing=replacing)
        except SdpError as exc:
            await publisher.close()
            if replacing is not None:
                await replacing.close()
            raise ApiError(400, str(exc), "invalid_sdp") from None
        connection.data["publisher"] = publisher
        return {"type": "answer", "sdp": answer}

    async def _publish_update(self, connection: Connection, data: Any) -> dict[str, Any]:
        """A new offer on the publishing connection: tracks added (a screen share) or no
        longer sent are published or unpublished; the others flow on untouched."""
        offer = _sdp_from(data, "offer")
        sources = _sources_from(data)
        publisher: Publisher | None = connection.data.get("publisher")
        if publisher is None:
            raise ApiError(409, "publish first", "not_publishing")
        try:
            answer = await publisher.answer(offer, sources)
        except SdpError as exc:
            raise ApiError(400, str(exc), "invalid_sdp") from None
        return {"type": "answer", "sdp": answer}

    async def _unpublish(self, connection: Connection, data: Any) -> dict[str, Any]:
        await self.stop_publishing(connection)
        return {}

    async def stop_publishing(self, connection: Connection) -> None:
        publisher: Publisher | None = connection.data.pop("publisher", None)
        if publisher is not None:
            await publisher.close()

    async def _set_muted(self, connection: Connection, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict) or set(data) != {"kind", "muted"}:
            raise ValidationError("set-muted", "send {kind: audio | video, muted: bool}")
        kind, muted = data["kind"], data["muted"]
        if kind not in ("audio", "video"):
            raise ValidationError("kind", "audio or video")
        if not isinstance(muted, bool):
            raise ValidationError("muted", "true or false")
        publisher: Publisher | None = connection.data.get("publisher")
        if publisher is None:
            raise ApiError(409, "publish first", "not_publishing")
        claims = connection.claims
        if not muted and self.unmute_refusal is not None:
            await self.unmute_refusal(claims.room, claims.identity, kind)
        changed = False
        for publication in publisher.publications.values():
            if publication.kind == kind:
                changed |= publication.muted != muted
                publication.muted = muted
        if changed:
            await self.update_tracks(claims.room, claims.identity)
        return {}

    async def _subscribe(self, connection: Connection, data: Any,
                         selection: Selection | None = None) -> dict[str, Any]:
        selection = selection or _selection_from(data)
        previous: Subscriber | None = connection.data.pop("subscriber", None)
        if previous is not None:
            await previous.close()
        claims = connection.claims
        room = self.sfu.room(claims.room)
        sid = connection.sid

        async def renegotiate(subscriber: Subscriber) -> None:
            if connection.data.get("subscriber") is not subscriber:
                return
            offer = await subscriber.create_offer()
            if offer is not None:
                await self.realtime.sio.emit("subscriber-offer", {"type": "offer", "sdp": offer},
                                             to=sid)

        async def closed(subscriber: Subscriber) -> None:
            if connection.data.get("subscriber") is subscriber:
                del connection.data["subscriber"]

        subscriber = room.subscriber(claims.identity, selection=selection,
                                     on_negotiation_needed=renegotiate, on_closed=closed)
        connection.data["subscriber"] = subscriber
        offer = await subscriber.create_offer()
        if offer is None:
            # Nothing is published yet: a "subscriber-offer" event follows when it is.
            return {"waiting": True}
        return {"type": "offer", "sdp": offer}

    async def _update_subscription(self, connection: Connection, data: Any
                                   ) -> dict[str, Any]:
        selection = _selection_from(data)
        subscriber: Subscriber | None = connection.data.get("subscriber")
        if subscriber is None:
            raise ApiError(409, "subscribe first", "not_subscribed")
        subscriber.select(selection)  # a "subscriber-offer" follows when tracks change
        return {}

    async def _subscribe_answer(self, connection: Connection, data: Any) -> dict[str, Any]:
        answer = _sdp_from(data, "answer")
        subscriber: Subscriber | None = connection.data.get("subscriber")
        if subscriber is None:
            raise ApiError(409, "subscribe first", "not_subscribed")
        try:
            await subscriber.apply_answer(answer)
        except SdpError as exc:
            raise ApiError(400, str(exc), "invalid_sdp") from None
        return {}

    async def _ice_candidate(self, connection: Connection, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict) or data.get("target") not in ("publisher", "subscriber"):
            raise ValidationError("target", "publisher or subscriber")
        peer = connection.data.get(data["target"])
        if peer is None:
            raise ApiError(409, f"no {data['target']} connection", "no_connection")
        try:
            await peer.add_ice_candidate(data.get("candidate"))
        except (ValueError, TypeError, KeyError, AssertionError) as exc:
            # aiortc asserts on malformed candidate lines
            raise ValidationError("candidate", str(exc) or "malformed candidate") from None
        return {}

    async def _restart_ice(self, connection: Connection, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise ValidationError("target", "publisher or subscriber")
        target = data.get("target")
        if target == "publisher":
            if not connection.can(Grant.PUBLISH):
                raise ApiError(403, "token lacks the 'publish' grant", "missing_grant")
            offer = _sdp_from(data, "offer")
            previous: Publisher | None = connection.data.pop("publisher", None)
            if previous is not None:
                # The old connection stops at once; its tracks move to the new one, so
                # subscribers keep one continuous stream and need no renegotiation.
                await previous.close(keep_publications=True)
            return await self._start_publisher(connection, offer, _sources_from(data),
                                               replacing=previous)
        if target == "subscriber":
            if not connection.can(Grant.SUBSCRIBE):
                raise ApiError(403, "token lacks the 'subscribe' grant", "missing_grant")
            current: Subscriber | None = connection.data.get("subscriber")
            # The new connection receives what the old one did.
            return await self._subscribe(connection, {},
                                         current.selection if current is not None else None)
        raise ValidationError("target", "publisher or subscriber")

    async def _unsubscribe(self, connection: Connection, data: Any) -> dict[str, Any]:
        """The page watches another way (live HLS): its receiving connection is closed."""
        subscriber: Subscriber | None = connection.data.pop("subscriber", None)
        if subscriber is not None:
            await subscriber.close()
        return {}

    async def close_connection_media(self, connection: Connection) -> None:
        publisher: Publisher | None = connection.data.pop("publisher", None)
        subscriber: Subscriber | None = connection.data.pop("subscriber", None)
        if subscriber is not None:
            await subscriber.close()
        if publisher is not None:
            await publisher.close()
        self.sfu.forget_if_empty(connection.claims.room)

    async def close(self) -> None:
        await self.sfu.close()
