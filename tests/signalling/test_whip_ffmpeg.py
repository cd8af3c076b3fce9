"""Interoperability: FFmpeg's own WHIP client publishes, an aiortc WHEP player watches.

FFmpeg is the one bundled with PyAV (libavformat's ``whip`` muxer), the same code as the
``ffmpeg -f whip`` command line. Its GnuTLS build makes a P-224 DTLS certificate by default,
which current OpenSSL (and browsers' BoringSSL) refuse; a P-256 certificate passed with
``cert_file``/``key_file`` is what README.md tells operators to use, and what this test does.
"""

from __future__ import annotations

import asyncio
import datetime
import threading
import time
from pathlib import Path

import aiohttp
import av
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from server_process import FairwireServer

FRAMES = 240  # 8 s at 30 fps
WIDTH, HEIGHT = 640, 360


def p256_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed ECDSA P-256 certificate (RFC 8827 §6.5) for FFmpeg's DTLS."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ffmpeg-whip")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "whip.crt", directory / "whip.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return cert_path, key_path


def publish_with_ffmpeg(url: str, token: str, cert: Path, key: Path, errors: list[BaseException]
                        ) -> None:
    """H.264 constrained baseline + Opus, paced in real time, as an encoder would send."""
    try:
        output = av.open(url, mode="w", format="whip", options={
            "authorization": token, "cert_file": str(cert), "key_file": str(key)})
        video = output.add_stream("libx264", rate=30, options={
            "profile": "baseline", "tune": "zerolatency", "preset": "ultrafast", "g": "30",
            "bf": "0"})
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        audio = output.add_stream("libopus", rate=48000)
        audio.layout = "stereo"
        started = time.monotonic()
        for index in range(FRAMES):
            frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
            for plane in frame.planes:
                plane.update(bytes([(index * 5) % 256]) * plane.buffer_size)
            frame.pts = index
            for packet in video.encode(frame):
                output.mux(packet)
            for half in range(2):
                sound = av.AudioFrame(format="s16", layout="stereo", samples=960)
                for plane in sound.planes:
                    plane.update(bytes(960 * 4))
                sound.sample_rate = 48000
                sound.pts = (index * 2 + half) * 960
                for packet in audio.encode(sound):
                    output.mux(packet)
            time.sleep(max(0.0, started + (index + 1) / 30 - time.monotonic()))
        output.close()
    except BaseException as exc:  # reported by the test, not lost in the thread
        errors.append(exc)


async def test_ffmpeg_publishes_over_whip_and_a_whep_player_decodes_it(
    fairwire_server: FairwireServer, tmp_path: Path
) -> None:
    server = fairwire_server
    await server.create_room(id="press-line", name="Press line", kind="livestream",
                             status="live")
    encoder_token = await server.token("press-line", "line-encoder", "exhibitor",
                                       name="Line encoder")
    viewer_token = await server.token("press-line", "viewer", "visitor", name="Viewer")
    cert, key = p256_certificate(tmp_path)
    errors: list[BaseException] = []
    encoder = threading.Thread(
        target=publish_with_ffmpeg,
        args=(f"{server.url}/whip/press-line", encoder_token, cert, key, errors),
        daemon=True,
    )
    encoder.start()

    player = RTCPeerConnection()
    frames: list[tuple[int, int]] = []
    tasks: list[asyncio.Task[None]] = []

    def on_track(track: MediaStreamTrack) -> None:
        async def consume() -> None:
            while True:
                try:
                    frame = await track.recv()
                except MediaStreamError:
                    return
                if track.kind == "video":
                    frames.append((frame.width, frame.height))  # type: ignore[union-attr]

        tasks.append(asyncio.ensure_future(consume()))

    player.on("track", on_track)
    player.addTransceiver("video", direction="recvonly")
    player.addTransceiver("audio", direction="recvonly")
    await player.setLocalDescription(await player.createOffer())
    try:
        async with aiohttp.ClientSession() as http:
            answer = None
            async with asyncio.timeout(15):
                while answer is None:
                    async with http.post(
                        f"{server.url}/whep/press-line", data=player.localDescription.sdp,
                        headers={"Content-Type": "application/sdp",
                                 "Authorization": f"Bearer {viewer_token}"},
                    ) as response:
                        if response.status == 201:
                            answer = await response.text()
                            assert "H264/90000" in answer
                        else:
                            assert response.status == 409, await response.text()
                            await asyncio.sleep(0.2)  # FFmpeg is still connecting
            await player.setRemoteDescription(RTCSessionDescription(answer, "answer"))
            async with asyncio.timeout(15):
                while len(frames) < 30:
                    await asyncio.sleep(0.05)
        assert set(frames) == {(WIDTH, HEIGHT)}
    finally:
        for task in tasks:
            task.cancel()
        await player.close()
        await asyncio.to_thread(encoder.join, 30)
    assert not errors, errors
    assert not encoder.is_alive()


@pytest.fixture(autouse=True)
def _quiet_ffmpeg() -> None:
    av.logging.set_level(av.logging.ERROR)
