"""Livestreams recorded on the node, and their replays over HTTP: an aiortc publisher goes
live over WHIP for a few seconds, the live ends, and the replay is listed, described, served
with byte ranges behind signed URLs, and plays back with PyAV for as long as the live lasted."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import av
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack

from config import load_config
from recorder.replay import FINAL, ReplayInfo
from recorder.storage import LocalStorage
from rooms import Role, RoomKind, RoomStatus
from rooms.model import Room
from signalling.app import create_app
from signalling.cli import main
from signalling.files import parse_range
from signalling.keys import RECORDINGS, SFU, STORE, TOKENS
from signalling.recordings import META, RecordingMeta, parse_age, prune

API_KEY = "k" * 24
OPERATOR = {"Authorization": f"Bearer {API_KEY}"}
LIVE_SECONDS = 6.0


def make_app(data_dir: Path) -> web.Application:
    return create_app(load_config(environ={"FAIRWIRE_API_KEY": API_KEY,
                                           "FAIRWIRE_DATA_DIR": str(data_dir)}))


@pytest.fixture
async def pcs() -> AsyncIterator[list[RTCPeerConnection]]:
    made: list[RTCPeerConnection] = []
    yield made
    for pc in made:
        await pc.close()


def bearer(client: TestClient[Any, Any], room: str, identity: str, role: Role) -> dict[str, str]:
    token = client.app[TOKENS].issue_link(room=room, identity=identity, name=identity,
                                          role=role).token
    return {"Authorization": f"Bearer {token}"}


async def record_a_live(client: TestClient[Any, Any], pcs: list[RTCPeerConnection]
                        ) -> dict[str, Any]:
    """The owner publishes over WHIP for LIVE_SECONDS; the operator ends the live; the
    replay, as the API lists it."""
    store = client.app[STORE]
    await store.create_room(Room(id="pumps", name="Ningbo Pumps · QJ-200", category="machinery",
                                 kind=RoomKind.LIVESTREAM, owner="ningbo",
                                 status=RoomStatus.LIVE, record=True))
    pc = RTCPeerConnection()
    pcs.append(pc)
    pc.addTransceiver(VideoStreamTrack(), direction="sendonly")
    pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    response = await client.post("/whip/pumps", data=pc.localDescription.sdp.encode(), headers={
        "Content-Type": "application/sdp"} | bearer(client, "pumps", "ningbo", Role.EXHIBITOR))
    assert response.status == 201, await response.text()
    await pc.setRemoteDescription(RTCSessionDescription(await response.text(), "answer"))
    recordings = client.app[RECORDINGS]
    async with asyncio.timeout(10):
        while ("pumps", "") not in recordings.live:
            await asyncio.sleep(0.05)
    await asyncio.sleep(LIVE_SECONDS)
    ended = await client.patch("/api/rooms/pumps", json={"status": "ended"}, headers=OPERATOR)
    assert ended.status == 200, await ended.text()
    async with asyncio.timeout(20):
        while True:
            listed = await (await client.get("/api/replays", headers=OPERATOR)).json()
            if listed["replays"]:
                replay: dict[str, Any] = listed["replays"][0]
                return replay
            await asyncio.sleep(0.1)


async def test_a_live_becomes_a_replay_that_plays_seeks_and_is_served_in_ranges(
    aiohttp_client: Any, tmp_path: Path, pcs: list[RTCPeerConnection]
) -> None:
    client = await aiohttp_client(make_app(tmp_path))
    replay = await record_a_live(client, pcs)
    assert replay["room"] == "pumps" and replay["title"] == "Ningbo Pumps · QJ-200"
    assert replay["category"] == "machinery" and replay["owner"] == "ningbo"
    assert {t["kind"]: t["codec"] for t in replay["tracks"]} == {"video": "vp8",
                                                                 "audio": "opus"}
    # As long as the live was recorded (it starts at the first keyframe, within a second).
    assert LIVE_SECONDS - 1.5 <= replay["duration"] <= LIVE_SECONDS + 1.0, replay
    assert replay["end"] > replay["start"] and replay["playback_url"].endswith("replay.webm")
    assert replay["hls_url"] is None  # HLS is for H.264 (MP4) replays
    assert replay["thumbnail_url"] is not None

    # The whole file, then a range of it: 206 with exactly those bytes.
    whole = await client.get(replay["playback_url"])
    assert whole.status == 200 and whole.headers["Accept-Ranges"] == "bytes"
    assert whole.headers["Content-Type"] == "video/webm"
    body = await whole.read()
    assert len(body) == replay["size"]
    part = await client.get(replay["playback_url"], headers={"Range": "bytes=100-1099"})
    assert part.status == 206
    assert part.headers["Content-Range"] == f"bytes 100-1099/{len(body)}"
    assert await part.read() == body[100:1100]
    tail = await client.get(replay["playback_url"], headers={"Range": "bytes=-500"})
    assert tail.status == 206 and await tail.read() == body[-500:]
    beyond = await client.get(replay["playback_url"],
                              headers={"Range": f"bytes={len(body)}-"})
    assert beyond.status == 416 and beyond.headers["Content-Range"] == f"bytes */{len(body)}"

    # It plays and seeks: PyAV reads both streams.
    with av.open(io.BytesIO(body)) as container:
        assert container.duration is not None
        assert abs(container.duration / 1e6 - replay["duration"]) < 0.5
        assert container.streams.video and container.streams.audio
        # The recorder asked for a keyframe per segment (~4 s): a seek to 5 s lands on the
        # one after the first, not at the start.
        container.seek(5_000_000)
        frame = next(container.decode(video=0))
        assert frame.time is not None and 1.0 <= frame.time <= 5.0, frame.time
    thumbnail = await client.get(replay["thumbnail_url"])
    assert thumbnail.status == 200 and (await thumbnail.read())[:2] == b"\xff\xd8"  # JPEG

    detail = await client.get(f"/api/replays/{replay['id']}", headers=bearer(
        client, "pumps", "buyer", Role.BUYER))
    assert detail.status == 200
    assert (await detail.json())["duration"] == replay["duration"]


async def test_replays_need_a_grant_and_an_intact_unexpired_signature(
    aiohttp_client: Any, tmp_path: Path, pcs: list[RTCPeerConnection]
) -> None:
    client = await aiohttp_client(make_app(tmp_path))
    replay = await record_a_live(client, pcs)
    assert (await client.get("/api/replays")).status == 401
    assert (await client.get(f"/api/replays/{replay['id']}")).status == 401
    # A token of another room neither lists it nor learns that it exists.
    elsewhere = bearer(client, "other-booth", "buyer", Role.BUYER)
    listed = await (await client.get("/api/replays", headers=elsewhere)).json()
    assert listed == {"replays": [], "next_cursor": None}
    hidden = await client.get(f"/api/replays/{replay['id']}", headers=elsewhere)
    assert hidden.status == 404 and (await hidden.json())["error"]["code"] == "replay_not_found"
    filtered = await (await client.get("/api/replays?category=textiles",
                                       headers=OPERATOR)).json()
    assert filtered["replays"] == []
    bad = await client.get("/api/replays?sort=size", headers=OPERATOR)
    assert bad.status == 400

    url: str = replay["playback_url"]
    prefix, signature, name = url.rsplit("/", 2)
    expires, digest = signature.split(".")
    tampered = f"{prefix}/{expires}.{'0' if digest[0] != '0' else '1'}{digest[1:]}/{name}"
    refused = await client.get(tampered)
    assert refused.status == 403
    assert (await refused.json())["error"]["code"] == "invalid_signature"
    longer = f"{prefix}/{int(expires) + 3600}.{digest}/{name}"  # the expiry is signed too
    assert (await client.get(longer)).status == 403
    recordings = client.app[RECORDINGS]
    past = int(time.time()) - 10
    stale = f"{prefix}/{past}.{recordings.signer.sign(replay['id'], past)}/{name}"
    expired = await client.get(stale)
    assert expired.status == 403 and (await expired.json())["error"]["code"] == (
        "signature_expired")
    # A valid signature opens only the replay's own files.
    assert (await client.get(f"{prefix}/{signature}/recording.json")).status == 404
    assert (await client.get(f"{prefix}/{signature}/../other/replay.webm")).status in (403, 404)


def test_byte_ranges_as_rfc_9110_reads_them() -> None:
    assert parse_range(None, 1000) is None
    assert parse_range("bytes=0-99", 1000) == (0, 99)
    assert parse_range("bytes=900-", 1000) == (900, 999)
    assert parse_range("bytes=900-5000", 1000) == (900, 999)
    assert parse_range("bytes=-100", 1000) == (900, 999)
    assert parse_range("bytes=-5000", 1000) == (0, 999)
    assert parse_range("bytes=0-1,5-9", 1000) is None  # several: the whole file
    assert parse_range("items=0-9", 1000) is None
    for unsatisfiable in ("bytes=1000-", "bytes=5-2", "bytes=abc-", "bytes=-0"):
        with pytest.raises(ValueError):
            parse_range(unsatisfiable, 1000)


async def test_a_full_disk_stops_the_recording_with_an_alert_never_the_live(
    aiohttp_client: Any, tmp_path: Path, pcs: list[RTCPeerConnection],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(LocalStorage, "free_bytes", lambda self: 1024)  # a full disk
    client = await aiohttp_client(make_app(tmp_path))
    store = client.app[STORE]
    await store.create_room(Room(id="pumps", name="Pumps", kind=RoomKind.LIVESTREAM,
                                 owner="ningbo", status=RoomStatus.LIVE, record=True))
    pc = RTCPeerConnection()
    pcs.append(pc)
    pc.addTransceiver(VideoStreamTrack(), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    response = await client.post("/whip/pumps", data=pc.localDescription.sdp.encode(), headers={
        "Content-Type": "application/sdp"} | bearer(client, "pumps", "ningbo", Role.EXHIBITOR))
    assert response.status == 201
    await pc.setRemoteDescription(RTCSessionDescription(await response.text(), "answer"))
    async with asyncio.timeout(15):
        while True:
            metrics = await (await client.get("/metrics")).text()
            if 'fairwire_recorder{what="disk_full"} 1.0' in metrics:
                break
            await asyncio.sleep(0.2)
    assert 'fairwire_recorder{what="recording"} 1.0' in metrics
    # The live goes on: packets keep arriving and being forwarded.
    before = client.app[SFU].stats()["packets_received"]
    await asyncio.sleep(1.0)
    assert client.app[SFU].stats()["packets_received"] > before + 10


async def test_old_replays_are_pruned_and_recent_ones_kept(
    aiohttp_client: Any, tmp_path: Path, pcs: list[RTCPeerConnection]
) -> None:
    client = await aiohttp_client(make_app(tmp_path))
    replay = await record_a_live(client, pcs)
    metrics = await (await client.get("/metrics")).text()
    assert 'fairwire_recorder{what="replays_finished"} 1.0' in metrics
    assert 'fairwire_recorder{what="frames_dropped"} 0.0' in metrics
    written = next(line for line in metrics.splitlines()
                   if line.startswith('fairwire_recorder{what="frames_written"}'))
    assert float(written.split()[-1]) > 100, written
    storage = client.app[RECORDINGS].storage
    assert prune(storage, parse_age("1d"), time.time()) == []
    assert prune(storage, parse_age("1h"), time.time() + 2 * 3600) == [replay["id"]]
    listed = await (await client.get("/api/replays", headers=OPERATOR)).json()
    assert listed["replays"] == []
    assert parse_age("30d") == 30 * 86400 and parse_age("90m") == 5400
    with pytest.raises(ValueError):
        parse_age("a month")


def test_the_prune_command_deletes_by_age(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    storage = LocalStorage.in_data_dir(tmp_path)
    meta = RecordingMeta("booth.old", "booth", "Booth", "", None, started_at=1000.0,
                         ended_at=1060.0)
    storage.write_bytes(meta.id, META, meta.to_json().encode())
    info = ReplayInfo(meta.id, 60.0, (), 10, ("replay.webm",), "replay.webm")
    storage.write_bytes(meta.id, FINAL, info.to_json().encode())
    environ = {"FAIRWIRE_DATA_DIR": str(tmp_path)}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in environ.items():
            patch.setenv(name, value)
        assert main(["replays", "prune", "--older-than", "30d"]) == 0
        assert "1 replays older than 30d deleted" in capsys.readouterr().out
        assert storage.list_recordings() == []
        assert main(["replays", "prune", "--older-than", "soon"]) == 2


async def _publish(client: TestClient[Any, Any], pcs: list[RTCPeerConnection], room: str,
                   identity: str, role: Role) -> None:
    pc = RTCPeerConnection()
    pcs.append(pc)
    pc.addTransceiver(VideoStreamTrack(), direction="sendonly")
    pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    response = await client.post(f"/whip/{room}", data=pc.localDescription.sdp.encode(),
                                 headers={"Content-Type": "application/sdp"}
                                 | bearer(client, room, identity, role))
    assert response.status == 201, await response.text()
    await pc.setRemoteDescription(RTCSessionDescription(await response.text(), "answer"))


async def test_a_meeting_is_recorded_per_participant_only_while_its_record_flag_is_on(
    aiohttp_client: Any, tmp_path: Path, pcs: list[RTCPeerConnection]
) -> None:
    client = await aiohttp_client(make_app(tmp_path))
    store = client.app[STORE]
    await store.create_room(Room(id="deal", name="Valve price talk", kind=RoomKind.MEETING,
                                 owner="valve-co", record=False))
    await _publish(client, pcs, "deal", "valve-co", Role.EXHIBITOR)
    await _publish(client, pcs, "deal", "buyer-li", Role.BUYER)
    recordings = client.app[RECORDINGS]
    await asyncio.sleep(2.5)
    assert not recordings.live  # the flag is off: nobody is recorded

    started = await client.patch("/api/rooms/deal", json={"record": True},
                                 headers=bearer(client, "deal", "host-1", Role.HOST))
    assert started.status == 200, await started.text()
    async with asyncio.timeout(10):
        while len(recordings.live) < 2:
            await asyncio.sleep(0.05)
    assert set(recordings.live) == {("deal", "valve-co"), ("deal", "buyer-li")}
    await asyncio.sleep(4.0)
    stopped = await client.patch("/api/rooms/deal", json={"record": False}, headers=OPERATOR)
    assert stopped.status == 200
    async with asyncio.timeout(20):
        while True:
            listed = (await (await client.get("/api/replays?room=deal",
                                              headers=OPERATOR)).json())["replays"]
            if len(listed) == 2:
                break
            await asyncio.sleep(0.1)
    assert not recordings.live
    assert {r["participant"] for r in listed} == {"valve-co", "buyer-li"}
    for replay in listed:
        assert replay["kind"] == "meeting" and replay["title"] == "Valve price talk"
        assert 2.5 <= replay["duration"] <= 5.5, replay
        body = await (await client.get(replay["playback_url"])).read()
        with av.open(io.BytesIO(body)) as container:
            assert container.streams.video and container.streams.audio
            assert sum(1 for _ in container.decode(video=0)) > 30
    # A meeting's replays are its participants': a token of another room sees none.
    other = await (await client.get("/api/replays?room=deal", headers=bearer(
        client, "pumps", "buyer", Role.BUYER))).json()
    assert other["replays"] == []
