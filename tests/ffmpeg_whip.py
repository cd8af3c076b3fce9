"""FFmpeg's own WHIP client (PyAV's bundled libavformat ``whip`` muxer) as a field encoder.

It is the same code as ``ffmpeg -f whip``. Its GnuTLS build makes a P-224 DTLS certificate by
default, which current OpenSSL (and browsers' BoringSSL) refuse; a P-256 certificate passed
with ``cert_file``/``key_file`` is what README.md tells operators to use, and what this does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import av
from certificates import self_signed
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

WIDTH, HEIGHT, FPS = 640, 360, 30

# x264 as encoders run it. Constrained Baseline is what browsers send; High with CABAC and
# 8x8 transforms ("veryfast") is what OBS, field and hardware encoders send by default.
X264_BASELINE = {"profile": "baseline", "tune": "zerolatency", "preset": "ultrafast",
                 "g": "30", "bf": "0"}
X264_HIGH = {"profile": "high", "tune": "zerolatency", "preset": "veryfast", "g": "30",
             "bf": "0"}


AUDIO_RATE, OPUS_FRAME = 48000, 960


def gradient(index: int) -> av.VideoFrame:
    """A moving gradient: real motion, so that the encoder makes real P-frames."""
    frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
    for number, plane in enumerate(frame.planes):
        row = bytes((x + index * 4 + number * 40) % 256 for x in range(plane.line_size))
        plane.update(row * (plane.buffer_size // plane.line_size))
    return frame


def silence(start: int, samples: int) -> bytes:
    return bytes(samples * 4)


def p256_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed ECDSA P-256 certificate (RFC 8827 §6.5) for FFmpeg's DTLS."""
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = self_signed(key, "ffmpeg-whip")
    cert_path, key_path = directory / "whip.crt", directory / "whip.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return cert_path, key_path


@dataclass
class FfmpegEncoder:
    """Publishes H.264 + Opus over WHIP from a thread, paced in real time."""

    url: str
    token: str
    directory: Path
    x264: dict[str, str] = field(default_factory=lambda: dict(X264_BASELINE))
    seconds: float = 8.0
    # What is sent: the picture of frame `index`, and `samples` of stereo s16 sound from
    # sample `start` (48 kHz). Defaults: a moving gradient and silence.
    picture: Callable[[int], av.VideoFrame] = field(default_factory=lambda: gradient)
    sound: Callable[[int, int], bytes] = field(default_factory=lambda: silence)
    errors: list[BaseException] = field(default_factory=list)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def join(self, timeout: float = 30) -> None:
        assert self._thread is not None
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "FFmpeg did not finish"
        assert not self.errors, self.errors

    def _run(self) -> None:
        try:
            cert, key = p256_certificate(self.directory)
            output = av.open(self.url, mode="w", format="whip", options={
                "authorization": self.token, "cert_file": str(cert), "key_file": str(key)})
            video = output.add_stream("libx264", rate=FPS, options=self.x264)
            video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
            audio = output.add_stream("libopus", rate=48000)
            audio.layout = "stereo"
            started = time.monotonic()
            sent = 0  # audio samples
            for index in range(int(self.seconds * FPS)):
                frame = self.picture(index)
                frame.pts = index
                for packet in video.encode(frame):
                    output.mux(packet)
                # Sound up to the end of this frame, in 20 ms Opus frames, on the same clock.
                while sent < (index + 1) * AUDIO_RATE // FPS:
                    sound = av.AudioFrame(format="s16", layout="stereo", samples=OPUS_FRAME)
                    sound.planes[0].update(self.sound(sent, OPUS_FRAME))
                    sound.sample_rate = AUDIO_RATE
                    sound.pts = sent
                    for packet in audio.encode(sound):
                        output.mux(packet)
                    sent += OPUS_FRAME
                time.sleep(max(0.0, started + (index + 1) / FPS - time.monotonic()))
            output.close()
        except BaseException as exc:  # reported by the test, not lost in the thread
            self.errors.append(exc)
