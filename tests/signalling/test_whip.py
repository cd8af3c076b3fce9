"""WHIP (RFC 9725) and WHEP against a real server, with aiortc peers in the same process."""

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, VideoStreamTrack
from av import AudioFrame, VideoFrame

from config import load_config
from rooms import Grant, Role, RoomKind, RoomStatus
from rooms.model import Room
from signalling.app import create_app
from signalling.auth import TokenIssuer
from signalling.keys import SFU, STORE, TOKENS
from signalling.whip import WHIP_SESSIONS, etag_matches, parse_sdpfrag

ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]
SDP = {"Content-Type": "application/sdp"}
TRICKLE = "application/trickle-ice-sdpfrag"


def make_app(**env: str) -> web.Application:
    environ = {"FAIRWIRE_API_KEY": "k", "FAIRWIRE_DATA_DIR": "/tmp/fairwire-test"} | env
    return create_app(load_config(environ=environ))


async def with_rooms(app: web.Application) -> web.Application:
    await app[STORE].create_room(Room(id="booth", name="Booth", kind=RoomKind.LIVESTREAM))
    await app[STORE].create_room(Room(id="hall", name="Hall", kind=RoomKind.LIVESTREAM))
    await app[STORE].create_room(Room(id="closed", name="Closed", kind=RoomKind.LIVESTREAM,
                                      status=RoomStatus.ENDED))
    return app


@pytest.fixture
async def client(aiohttp_client: ClientFactory) -> TestClient[Any, Any]:
    return await aiohttp_client(await with_rooms(make_app()))


@pytest.fixture
async def pcs() -> AsyncIterator[list[RTCPeerConnection]]:
    made: list[RTCPeerConnection] = []
    yield made
    for pc in made:
        await pc.close()


def token(client: TestClient[Any, Any], identity: str, role: Role = Role.EXHIBITOR,
          room: str = "booth", **options: Any) -> dict[str, str]:
    value = client.app[TOKENS].issue_link(room=room, identity=identity, name=identity, role=role,
                                     **options).token
    return {"Authorization": f"Bearer {value}"}


def assert_error(body: Any, code: str | None = None) -> None:
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code


def stats(client: TestClient[Any, Any]) -> dict[str, int]:
    result: dict[str, int] = client.app[SFU].stats()
    return result


async def sender_offer(pcs: list[RTCPeerConnection]) -> RTCPeerConnection:
    pc = RTCPeerConnection()
    pcs.append(pc)
    pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
    pc.addTransceiver(VideoStreamTrack(), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    return pc


async def publish(client: TestClient[Any, Any], pcs: list[RTCPeerConnection],
                  auth: dict[str, str]) -> tuple[RTCPeerConnection, Any]:
    pc = await sender_offer(pcs)
    response = await client.post("/whip/booth", data=pc.localDescription.sdp.encode(),
                                 headers=SDP | auth)
    assert response.status == 201, await response.text()
    await pc.setRemoteDescription(RTCSessionDescription(await response.text(), "answer"))
    return pc, response


async def play(client: TestClient[Any, Any], pcs: list[RTCPeerConnection],
               auth: dict[str, str], query: str = ""
               ) -> tuple[RTCPeerConnection, Any, dict[str, MediaStreamTrack]]:
    pc = RTCPeerConnection()
    pcs.append(pc)
    tracks: dict[str, MediaStreamTrack] = {}
    pc.on("track", lambda track: tracks.setdefault(track.kind, track))
    pc.addTransceiver("audio", direction="recvonly")
    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    response = await client.post(f"/whep/booth{query}", data=pc.localDescription.sdp.encode(),
                                 headers=SDP | auth)
    if response.status == 201:
        await pc.setRemoteDescription(RTCSessionDescription(await response.text(), "answer"))
    return pc, response, tracks


async def eventually(check: Callable[[], bool], seconds: float = 10) -> None:
    for _ in range(int(seconds / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


def assert_created(response: Any, kind: str) -> str:
    assert response.status == 201
    assert response.content_type == "application/sdp"
    location = response.headers["Location"]
    assert re.fullmatch(rf"/{kind}/booth/[A-Za-z0-9_-]{{24}}", location), location
    assert re.fullmatch(r'"[0-9a-f]{16}"', response.headers["ETag"])
    assert response.headers["Accept-Patch"] == TRICKLE
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Location" in response.headers["Access-Control-Expose-Headers"]
    return str(location)


async def test_whip_to_whep_forwards_decodable_video_and_delete_frees_everything(
    client: TestClient[Any, Any], pcs: list[RTCPeerConnection]
) -> None:
    owner = token(client, "factory-cam")
    _, response = await publish(client, pcs, owner)
    location = assert_created(response, "whip")
    assert "a=recvonly" in await response.text()
    assert stats(client)["publishers"] == 1 and stats(client)["publications"] == 2

    async def participant() -> Any:
        return await client.app[STORE].get_participant("booth", "factory-cam")

    present = await participant()
    assert present is not None and present.session_id == f"whip:{location.rsplit('/', 1)[1]}"
    assert {t.kind for t in present.tracks} == {"audio", "video"}

    _, whep, tracks = await play(client, pcs, token(client, "buyer-1", Role.VISITOR),
                                 "?publisher=factory-cam")
    assert whep.status == 201, await whep.text()
    assert_created(whep, "whep")
    assert "a=msid:factory-cam " in await whep.text()
    assert set(tracks) == {"audio", "video"}
    video = tracks["video"]
    for _ in range(5):
        frame = await asyncio.wait_for(video.recv(), 15)
        assert isinstance(frame, VideoFrame)  # decoded by the player: real frames flowed
        assert (frame.width, frame.height) == (640, 480)
    assert stats(client)["downtracks"] == 2

    # Only the owner (or a moderator) may end the session.
    intruder = await client.delete(location, headers=token(client, "someone-else", Role.BUYER))
    assert intruder.status == 403
    assert_error(await intruder.json(), "not_session_owner")

    deleted = await client.delete(location, headers=owner)
    assert deleted.status == 200
    assert stats(client)["publishers"] == 0 and stats(client)["publications"] == 0
    assert await participant() is None

    async def drained() -> None:
        while True:
            await video.recv()

    with pytest.raises(MediaStreamError):
        await asyncio.wait_for(drained(), 10)
    # The WHEP session ended with its only publisher: nothing left on the node.
    await eventually(lambda: stats(client)["subscribers"] == 0)
    assert len(client.app[WHIP_SESSIONS]) == 0
    assert client.app[SFU].rooms == {}

    again = await client.delete(location, headers=owner)
    assert again.status == 404
    assert_error(await again.json(), "session_not_found")


async def test_bad_requests_are_refused_with_json_and_leave_nothing_behind(
    client: TestClient[Any, Any], pcs: list[RTCPeerConnection]
) -> None:
    pc = await sender_offer(pcs)
    offer = pc.localDescription.sdp.encode()
    exhibitor = token(client, "exhibitor-1")
    forged = TokenIssuer("another-secret-of-at-least-32-bytes!!", 3600).issue_link(
        room="booth", identity="exhibitor-1", name="x", role=Role.EXHIBITOR).token
    expired = token(client, "exhibitor-1", ttl=60, now=time.time() - 7200)
    cases: list[tuple[str, bytes, dict[str, str], int, str]] = [
        ("/whip/booth", b"v=0\r\nthis is not sdp\r\n", SDP | exhibitor, 400, "invalid_sdp"),
        ("/whip/booth", b"hello", SDP | exhibitor, 400, "invalid_sdp"),
        ("/whip/booth", b"", SDP | exhibitor, 400, "invalid_sdp"),
        ("/whip/booth", offer, SDP, 401, "missing_credentials"),
        ("/whip/booth", offer, SDP | {"Authorization": f"Bearer {forged}"}, 401,
         "invalid_token"),
        ("/whip/booth", offer, SDP | expired, 401, "token_expired"),
        ("/whip/booth", offer, SDP | token(client, "visitor-1", Role.VISITOR), 403,
         "missing_grant"),
        ("/whip/booth", offer, SDP | token(client, "exhibitor-1", room="hall"), 403,
         "wrong_room"),
        ("/whip/nowhere", offer, SDP | token(client, "exhibitor-1", room="nowhere"), 404,
         "room_not_found"),
        ("/whip/closed", offer, SDP | token(client, "exhibitor-1", room="closed"), 409,
         "room_ended"),
        ("/whip/booth", offer, {"Content-Type": "application/json"} | exhibitor, 415,
         "unsupported_media_type"),
        ("/whip/booth", b"v=0\r\n" + b"a=x\r\n" * 20000, SDP | exhibitor, 413,
         "payload_too_large"),
        ("/whep/booth", offer, SDP | token(client, "exhibitor-1", grants=[Grant.PUBLISH]), 403,
         "missing_grant"),
    ]
    for path, body, headers, status, code in cases:
        response = await client.post(path, data=body, headers=headers)
        assert response.status == status, (path, headers, await response.text())
        assert response.content_type == "application/json"
        assert_error(await response.json(), code)
        if status == 401:
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert stats(client)["publishers"] == 0 and stats(client)["subscribers"] == 0
    assert len(client.app[WHIP_SESSIONS]) == 0
    assert await client.app[STORE].list_participants("booth") == []


async def test_trickle_patch_and_its_preconditions(
    client: TestClient[Any, Any], pcs: list[RTCPeerConnection]
) -> None:
    owner = token(client, "cam")
    pc, response = await publish(client, pcs, owner)
    location, etag = response.headers["Location"], response.headers["ETag"]
    local = pc.localDescription.sdp
    ufrag = re.search(r"a=ice-ufrag:(\S+)", local)
    pwd = re.search(r"a=ice-pwd:(\S+)", local)
    assert ufrag and pwd
    fragment = (f"a=ice-ufrag:{ufrag.group(1)}\r\na=ice-pwd:{pwd.group(1)}\r\n"
                "m=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n"
                "a=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\r\n"
                "a=candidate:2 1 tcp 1518280447 192.0.2.1 9 typ host tcptype active\r\n")

    async def patch(body: str, **headers: str) -> Any:
        return await client.patch(location, data=body.encode(),
                                  headers={"Content-Type": TRICKLE} | owner | headers)

    ok = await patch(fragment, **{"If-Match": etag})
    assert ok.status == 204 and "ETag" not in ok.headers
    done = await patch(fragment + "a=end-of-candidates\r\n", **{"If-Match": "*"})
    assert done.status == 204
    assert (await patch(fragment)).status == 428
    stale = await patch(fragment, **{"If-Match": '"0000000000000000"'})
    assert stale.status == 412
    assert_error(await stale.json(), "precondition_failed")
    restart = await patch("a=ice-ufrag:newU\r\na=ice-pwd:newpasswordnewpasswordnew\r\n",
                          **{"If-Match": "*"})
    assert restart.status == 422
    assert_error(await restart.json(), "ice_restart_unsupported")
    broken = await patch("a=candidate:nonsense\r\n", **{"If-Match": etag})
    assert broken.status == 400
    wrong_type = await client.patch(location, data=fragment.encode(),
                                    headers={"Content-Type": "application/sdp", "If-Match": etag}
                                    | owner)
    assert wrong_type.status == 415
    foreign = await client.patch(location, data=fragment.encode(),
                                 headers={"Content-Type": TRICKLE, "If-Match": etag}
                                 | token(client, "host", Role.HOST))
    assert foreign.status == 403
    # The session survived every refused PATCH (RFC 9725 §4.3.3).
    assert stats(client)["publishers"] == 1
    not_allowed = await client.put(location, headers=owner)
    assert not_allowed.status == 405 and "PATCH" in not_allowed.headers["Allow"]
    assert_error(await not_allowed.json(), "method_not_allowed")
    assert (await client.get(location)).status == 204
    # A moderator may end someone else's session.
    assert (await client.delete(location, headers=token(client, "host", Role.HOST))).status == 200


def without_candidates(sdp: str) -> str:
    """The offer as an encoder that does not gather first writes it (RFC 9725 §4.3.1): no
    candidates, ``c=IN IP4 0.0.0.0`` and port 9; its address is learnt from its ICE checks."""
    lines = [line for line in sdp.splitlines()
             if not line.startswith(("a=candidate:", "a=end-of-candidates"))]
    lines = [re.sub(r"^c=IN IP4 \S+", "c=IN IP4 0.0.0.0", line) for line in lines]
    lines = [re.sub(r"^(m=\w+) \d+ ", r"\1 9 ", line) for line in lines]
    return "\r\n".join(lines) + "\r\n"


def candidates_fragment(sdp: str) -> str:
    """RFC 8840 trickle fragment with the candidates of ``sdp``'s first m-section."""
    ufrag = re.search(r"a=ice-ufrag:(\S+)", sdp)
    pwd = re.search(r"a=ice-pwd:(\S+)", sdp)
    mid = re.search(r"a=mid:(\S+)", sdp)
    assert ufrag and pwd and mid
    candidates = [line for line in sdp.splitlines() if line.startswith("a=candidate:")]
    assert candidates
    return (f"a=ice-ufrag:{ufrag.group(1)}\r\na=ice-pwd:{pwd.group(1)}\r\n"
            f"m=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:{mid.group(1)}\r\n"
            + "".join(f"{line}\r\n" for line in candidates) + "a=end-of-candidates\r\n")


@pytest.mark.parametrize("trickle", [False, True], ids=["peer-reflexive", "trickled"])
async def test_an_offer_without_candidates_publishes(
    client: TestClient[Any, Any], pcs: list[RTCPeerConnection], trickle: bool
) -> None:
    owner = token(client, "line-encoder")
    pc = await sender_offer(pcs)
    offer = without_candidates(pc.localDescription.sdp)
    assert "a=candidate" not in offer and "c=IN IP4 0.0.0.0" in offer
    response = await client.post("/whip/booth", data=offer.encode(), headers=SDP | owner)
    assert response.status == 201, await response.text()
    await pc.setRemoteDescription(RTCSessionDescription(await response.text(), "answer"))
    if trickle:
        patched = await client.patch(
            response.headers["Location"],
            data=candidates_fragment(pc.localDescription.sdp).encode(),
            headers={"Content-Type": TRICKLE, "If-Match": response.headers["ETag"]} | owner)
        assert patched.status == 204, await patched.text()
    _, whep, tracks = await play(client, pcs, token(client, "buyer-1", Role.VISITOR))
    assert whep.status == 201, await whep.text()
    frame = await asyncio.wait_for(tracks["video"].recv(), 15)
    assert isinstance(frame, VideoFrame) and (frame.width, frame.height) == (640, 480)


@pytest.mark.parametrize("kind", ["audio", "video"])
async def test_audio_only_and_video_only_encoders_reach_a_viewer(
    client: TestClient[Any, Any], pcs: list[RTCPeerConnection], kind: str
) -> None:
    pc = RTCPeerConnection()
    pcs.append(pc)
    pc.addTransceiver(AudioStreamTrack() if kind == "audio" else VideoStreamTrack(),
                      direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    response = await client.post("/whip/booth", data=pc.localDescription.sdp.encode(),
                                 headers=SDP | token(client, f"{kind}-encoder"))
    assert response.status == 201, await response.text()
    await pc.setRemoteDescription(RTCSessionDescription(await response.text(), "answer"))
    assert stats(client)["publications"] == 1
    _, whep, tracks = await play(client, pcs, token(client, "buyer-1", Role.VISITOR))
    assert whep.status == 201, await whep.text()
    assert set(tracks) == {kind}  # the player's other m-section is inactive
    for _ in range(5):
        frame = await asyncio.wait_for(tracks[kind].recv(), 15)
        assert isinstance(frame, AudioFrame if kind == "audio" else VideoFrame)


async def test_cors_preflight_and_ice_servers_on_options(
    aiohttp_client: ClientFactory,
) -> None:
    client = await aiohttp_client(await with_rooms(make_app(
        FAIRWIRE_ICE_SERVERS="stun:stun.example.net,turn:turn.example.net?transport=udp",
        FAIRWIRE_CORS_ORIGINS="https://booth.example",
    )))
    origin = {"Origin": "https://booth.example"}
    preflight = await client.options("/whip/booth", headers=origin | {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    })
    assert preflight.status == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://booth.example"
    assert "Origin" in preflight.headers["Vary"]
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert preflight.headers["Access-Control-Allow-Headers"] == (
        "Authorization, Content-Type, If-Match")
    for name in ("Location", "ETag", "Link", "Accept-Patch"):
        assert name in preflight.headers["Access-Control-Expose-Headers"]
    assert preflight.headers["Accept-Post"] == "application/sdp"
    assert "Link" not in preflight.headers  # RFC 9725 §4.6: not on CORS preflights

    session_preflight = await client.options("/whep/booth/abc", headers=origin | {
        "Access-Control-Request-Method": "DELETE"})
    assert session_preflight.status == 200
    assert {"PATCH", "DELETE"} <= set(
        session_preflight.headers["Access-Control-Allow-Methods"].split(", "))

    plain = await client.options("/whip/booth")
    assert plain.headers.getall("Link") == [
        '<stun:stun.example.net>; rel="ice-server"',
        '<turn:turn.example.net?transport=udp>; rel="ice-server"',
    ]
    other = await client.post("/whip/booth", data=b"v=0", headers=SDP | {
        "Origin": "https://elsewhere.example"})
    assert other.status == 401 and "Access-Control-Allow-Origin" not in other.headers
    error = await client.post("/whip/booth", data=b"v=0", headers=SDP | origin)
    assert error.status == 401
    assert error.headers["Access-Control-Allow-Origin"] == "https://booth.example"
    assert (await client.get("/whip/booth")).status == 204  # RFC 9725 §4.1


class ShadeTrack(VideoStreamTrack):
    """aiortc's test video in one shade of grey: which source a viewer sees is visible."""

    def __init__(self, luma: int) -> None:
        super().__init__()
        self.luma = luma

    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = VideoFrame(320, 240, "yuv420p")
        for plane, value in zip(frame.planes, (self.luma, 128, 128), strict=True):
            plane.update(bytes([value]) * plane.buffer_size)
        frame.pts, frame.time_base = pts, time_base
        return frame


def luma(frame: VideoFrame) -> int:
    """The mean luma of the picture's middle row (no line padding in it)."""
    plane = frame.planes[0]
    middle = bytes(plane)[plane.line_size * (frame.height // 2):][:frame.width]
    return sum(middle) // len(middle)


async def test_a_whep_player_of_a_livestream_follows_its_program(
    client: TestClient[Any, Any], pcs: list[RTCPeerConnection]
) -> None:
    """A player (OBS, ffplay, a CDN's ingest) watches what the studio puts on air: one video
    and one audio track across program switches, and through a source leaving and another
    taking over; it never needs a new offer."""
    sources = {}
    for identity, shade in (("camera", 40), ("line", 200)):
        pc = RTCPeerConnection()
        pcs.append(pc)
        pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
        pc.addTransceiver(ShadeTrack(shade), direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        response = await client.post("/whip/booth", data=pc.localDescription.sdp.encode(),
                                     headers=SDP | token(client, identity))
        assert response.status == 201, await response.text()
        await pc.setRemoteDescription(RTCSessionDescription(await response.text(), "answer"))
        sources[identity] = response.headers["Location"]
    room = client.app[SFU].rooms["booth"]
    line_video = next(p for p in room.publications if p.identity == "line" and p.kind == "video")
    camera_video = next(p for p in room.publications
                        if p.identity == "camera" and p.kind == "video")
    assert room.program.to_dict()["video"] == camera_video.id  # the first source went on air

    _, whep, tracks = await play(client, pcs, token(client, "buyer-1", Role.VISITOR))
    assert whep.status == 201, await whep.text()
    answer = await whep.text()
    assert answer.count("a=msid:program ") == 2 and "msid:camera" not in answer
    video = tracks["video"]

    async def shade_within(low: int, high: int) -> None:
        for _ in range(200):
            frame = await asyncio.wait_for(video.recv(), 10)
            if low <= luma(frame) <= high:
                return
        raise AssertionError(f"the player never showed a shade in {low}..{high}: {luma(frame)}")

    await shade_within(20, 60)  # the camera
    await room.program.choose(video=line_video.id)
    await shade_within(180, 220)  # the production line, on the same track
    await room.program.choose(video=camera_video.id)
    await shade_within(20, 60)

    # The camera leaves: its video goes silent on the program, the player stays connected;
    # choosing the line puts it back on air for the same player.
    gone = await client.delete(sources["camera"], headers=token(client, "camera"))
    assert gone.status == 200
    assert room.program.to_dict()["video"] is None
    assert stats(client)["subscribers"] == 1
    await room.program.choose(video=line_video.id)
    await shade_within(180, 220)
    assert stats(client)["subscribers"] == 1


async def test_whep_before_anything_is_published(
    client: TestClient[Any, Any], pcs: list[RTCPeerConnection]
) -> None:
    _, response, _ = await play(client, pcs, token(client, "early", Role.VISITOR))
    assert response.status == 409
    assert_error(await response.json(), "no_publication")
    _, response, _ = await play(client, pcs, token(client, "early", Role.VISITOR),
                                "?publisher=nobody")
    assert response.status == 409
    assert stats(client)["subscribers"] == 0 and client.app[SFU].rooms == {}


async def test_a_second_whip_session_of_the_same_identity_replaces_the_first(
    client: TestClient[Any, Any], pcs: list[RTCPeerConnection]
) -> None:
    owner = token(client, "encoder")
    _, first = await publish(client, pcs, owner)
    _, second = await publish(client, pcs, owner)
    assert first.headers["Location"] != second.headers["Location"]
    assert stats(client)["publishers"] == 1 and stats(client)["publications"] == 2
    assert (await client.delete(first.headers["Location"], headers=owner)).status == 404
    present = await client.app[STORE].get_participant("booth", "encoder")
    assert present is not None and len(present.tracks) == 2
    assert present.session_id == "whip:" + second.headers["Location"].rsplit("/", 1)[1]
    assert (await client.delete(second.headers["Location"], headers=owner)).status == 200
    assert await client.app[STORE].get_participant("booth", "encoder") is None


def test_sdpfrag_parsing_and_entity_tags() -> None:
    fragment = parse_sdpfrag(
        "a=ice-ufrag:EsAw\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\nm=audio 9 RTP/AVP 0\n"
        "a=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host\na=mid:0\n"
        "m=video 9 RTP/AVP 0\na=mid:1\n"
        "a=candidate:3471623853 1 udp 2122194687 198.51.100.1 61765 typ host\n"
        "a=end-of-candidates\n")
    assert (fragment.ufrag, fragment.pwd) == ("EsAw", "P2uYro0UCOQ4zxjKXaWCBui1")
    assert [(c.mid, c.mline_index) for c in fragment.candidates] == [("0", 0), ("1", 1)]
    assert fragment.candidates[0].line.startswith("candidate:1387637174 ")
    assert fragment.end_of_candidates
    assert etag_matches('"a", "b"', '"b"') and etag_matches("*", '"b"')
    assert not etag_matches('W/"b"', '"b"')
